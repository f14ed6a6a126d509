"""One report content model: summary() is its text rendering, _repr_html_ (Jupyter) its HTML."""
import re

import pandas as pd

import sparsereml as sr
from sparsereml.report_content import Report, format_value


def test_summary_and_html_render_the_same_content():
    df, _ = sr.datasets.trial_network(seed=5, trials=4, trees=3000, mothers=60)
    m = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother", "~ at(Trial):units", data=df)
    content = m.report_content()
    assert m.summary() == content.to_text()
    titles = [s.title for s in content.sections]
    assert titles[1] == "Variance components" and titles[-1].startswith("Fixed effects")
    page = m._repr_html_()
    assert page.startswith('<div class="sparsereml-report">') and page.count("<table") == 2
    # every variance component appears in the HTML table with the digits the text shows
    for label, value in m.varcomp["component"].items():
        assert f"<td>{label}</td>" in page and f"<td>{format_value(value)}</td>" in page
    assert "REML fit" in page and "&lt;" not in m.summary()


def test_html_escapes_text_and_renders_missing_values_as_na():
    rep = Report()
    rep.add("a <b> & c").line("x < y").table(pd.DataFrame({"v": [1.0, float("nan")]}, index=["p", "q"]))
    page = rep.to_html()
    assert "<h4>a &lt;b&gt; &amp; c</h4>" in page and "<div class=\"line\">x &lt; y</div>" in page
    assert re.search(r"<td>NA</td>", page) and "a <b> & c\nx < y" in rep.to_text()


def test_png_bytes_decode_to_the_pixels_given():
    """png_bytes against an outside decoder (Pillow): opaque images as RGB, others as RGBA."""
    import io

    import numpy as np
    from PIL import Image

    from sparsereml.report_content import png_bytes

    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, size=(37, 53, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[5:20, 7:40, :3] = 255  # a run of one colour, as plots have
    opaque = Image.open(io.BytesIO(png_bytes(rgba)))
    assert opaque.mode == "RGB" and opaque.size == (53, 37)
    np.testing.assert_array_equal(np.asarray(opaque), rgba[..., :3])
    rgba[3, 4, 3] = 17
    clear = Image.open(io.BytesIO(png_bytes(rgba, level=6)))
    assert clear.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(clear), rgba)


def test_p_values_below_double_precision_print_as_such():
    """A p-value column (Wald's Pr, anova's Pr(>F), pairs' p.value) prints 0.0 (chi2.sf's
    underflow) as "<2.2e-16", as R's format.pval, in text and HTML; other columns print 0."""
    from sparsereml.report_content import table_text

    t = pd.DataFrame({"F.inc": [1520.78, 0.5], "Pr": [0.0, 0.48], "other": [0.0, 1.0]}, index=["Trial", "x"])
    rep = Report()
    rep.add("Wald").table(t)
    text, page = rep.to_text(), rep.to_html()
    assert "<2.2e-16" in table_text(t) and "<2.2e-16" in text and "&lt;2.2e-16" in page
    assert "0.48" in text and text.count("<2.2e-16") == 1 and "<td>0</td>" in page
