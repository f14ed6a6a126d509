"""The HTML report (m.report, sr.report, sparsereml fit --report, sparsereml report DIR): one
self-contained page whose tables hold the model's numbers, the same from a model in memory and
from the files its fit wrote."""
from __future__ import annotations

import base64
import re
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

import sparsereml as sr
from sparsereml.cli import main
from sparsereml.errors import ModelError
from sparsereml.fitresults import FitResults
from sparsereml.report_content import format_value

from .structures.test_residual_mme import field

STAMP = re.compile(r"sparsereml [0-9.]+ &middot; \d{4}-\d\d-\d\d \d\d:\d\d UTC")


@pytest.fixture(scope="module")
def data():
    return sr.datasets.trial_network(seed=5, trials=4, trees=3000, mothers=60)[0]


@pytest.fixture(scope="module")
def fits(data):
    m1 = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother", data=data)
    m2 = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother", "~ at(Trial):units", data=data)
    return m1, m2


def _images(page: str) -> list[Image.Image]:
    return [Image.open(BytesIO(base64.b64decode(d))) for d in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_a_fit_report_is_one_page_with_the_models_numbers(fits):
    m = fits[1]
    page = m.report()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing to fetch: no network needed
    for label, row in m.varcomp.iterrows():
        assert f"<td>{label}</td>" in page and f"<td>{format_value(row['component'])}</td>" in page
    for title in ("Variance components", "Data", "Random effects: Mother", "Residuals", "Iterations",
                  "95% confidence intervals"):
        assert title in page
    images = _images(page)
    # overview, caterpillars of both terms, residuals, trace
    assert len(images) == 5
    for im in images:
        assert np.asarray(im.convert("L"), dtype=float).std() > 5  # not blank
    assert 'class="dataframe sortable"' in page  # the long tables (ranked BLUPs, fixed effects)


def test_report_rebuilt_from_the_files_is_the_same_page(fits, tmp_path):
    m = fits[1]
    pred = m.predict("Trial", sed=False)
    res = FitResults.from_model(m, predictions=[pred], wald=m.wald("none"))
    res.write(tmp_path)
    live = sr.report(res)
    again = sr.report(FitResults.read(tmp_path))
    assert STAMP.sub("", live) == STAMP.sub("", again)
    assert "Predictions of Trial" in live and "Wald tests of the fixed effects" in live
    for v in pred.table["predicted.value"]:
        assert f"<td>{format_value(v)}</td>" in live


def test_comparison_report_tests_the_models_and_shows_each(fits, tmp_path):
    path = sr.report({"m1": fits[0], "m2": fits[1]}, tmp_path / "cmp.html", processes=1)
    page = path.read_text()
    table = sr.compare(*fits, names=["m1", "m2"]).formatted()
    assert f"<td>{table.loc['m2', 'logLik']}</td>" in page and f"<td>{table.loc['m2', 'statistic']}</td>" in page
    assert "<td>&lt;2.2e-16</td>" in page and table.loc["m2", "p_value"] == "<2.2e-16"
    assert page.count("<h2>") == 3 and 'href="#m-m1"' in page and 'id="m-m2"' in page
    assert page.count("Data</h3>") == 1  # the data once, for every model
    # one caterpillar per random term, the models side by side, in the comparison; the models' own
    # sections keep their ranked tables
    comparison = page[page.index('id="comparison"'):page.index('id="m-m1"')]
    for term in ("Trial:Block", "Mother"):
        assert f"BLUPs of {term} with 95% prediction intervals: m1, m2" in comparison
        assert page.count(f"the BLUPs of {term} are drawn beside the other models") == 2
    for what in ("residuals against fitted values", "iteration trace"):
        assert page.count(f"the {what} is drawn beside" if what == "iteration trace" else
                          f"the {what} are drawn beside") == 2
    # overview, two caterpillars, the residuals and the traces of both models
    assert len(_images(comparison)) == len(_images(page)) == 5
    drawn_twice = sr.report({"m1": fits[0], "m2": fits[1]}, processes=2)
    assert STAMP.sub("", drawn_twice) == STAMP.sub("", page)  # forked drawing gives the same pictures


def test_spatial_report_has_maps_and_variograms_and_notes_what_it_cannot_draw():
    m = sr.fit("y ~ trial", random="~ gen", residual="~ at(trial):ar1(row):ar1(col)", data=field())
    page = m.report()
    for g in ("A", "B"):
        assert f"residuals on the field grid, at(trial, {g}):units" in page
        assert f"sample variogram of the residuals, at(trial, {g}):units" in page
    assert "Data</h3>" in page and "no factor" not in page


def test_report_refuses_what_it_cannot_write(fits, data, tmp_path):
    with pytest.raises(ModelError, match="ending in .html"):
        fits[0].report(tmp_path / "r.txt")
    with pytest.raises(ModelError, match="does not exist"):
        fits[0].report(tmp_path / "nowhere" / "r.html")
    with pytest.raises(ModelError, match="got str"):
        sr.report(["m1"])
    with pytest.raises(ModelError, match="same records"):
        sr.report([fits[0], sr.fit("dbh ~ Trial", "~ Mother", data=data.iloc[:-5])])


def test_cli_writes_the_report_and_rebuilds_it(data, tmp_path, capsys):
    csv = tmp_path / "trees.csv"
    data.to_csv(csv, index=False)
    out1, out2 = tmp_path / "m1", tmp_path / "m2"
    base = [str(csv), "--fixed", "dbh ~ Trial", "--random", "~ Trial:Block + Mother", "--factors", "Trial,Block,Mother",
            "--quiet"]
    assert main(["fit", *base, "--out", str(out1), "--report"]) == 0
    assert main(["fit", *base, "--residual", "~ at(Trial):units", "--out", str(out2), "--records"]) == 0
    assert (out1 / "records.csv").exists() and (out2 / "records.csv").exists()  # --report and --records
    first = (out1 / "report.html").read_text()
    assert main(["report", str(out1), "--out", str(tmp_path / "again.html"), "--quiet"]) == 0
    assert STAMP.sub("", (tmp_path / "again.html").read_text()) == STAMP.sub("", first)
    assert main(["report", str(out1), str(out2), "--out", str(tmp_path / "cmp.html")]) == 0
    page = (tmp_path / "cmp.html").read_text()
    assert 'id="m-m1"' in page and 'id="m-m2"' in page and "Models compared" in page
    assert f"wrote {tmp_path / 'cmp.html'}" in capsys.readouterr().out


def test_report_from_files_without_records_says_what_is_missing(data, tmp_path):
    csv = tmp_path / "trees.csv"
    data.to_csv(csv, index=False)
    out = tmp_path / "m"
    assert main(["fit", str(csv), "--fixed", "dbh ~ Trial", "--random", "~ Mother", "--factors", "Trial,Mother",
                 "--quiet", "--out", str(out)]) == 0
    assert not (out / "records.csv").exists()  # only with --records or --report: 15 MB on the demo network
    page = sr.report(FitResults.read(out))
    assert "no records.csv (per record fitted values and residuals): fit again with --records or --report" in page
    assert "BLUPs of Mother" in page  # what the files hold is drawn


def test_cli_report_refusals(data, tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no fit.json" in capsys.readouterr().err
    csv = tmp_path / "trees.csv"
    data.to_csv(csv, index=False)
    assert main(["fit", str(csv), "--fixed", "dbh ~ Trial", "--report"]) == 2
    assert "give --out DIR" in capsys.readouterr().err
    assert main(["report", str(tmp_path), str(tmp_path), "--names", "a"]) == 2
    assert "one per directory" in capsys.readouterr().err


def test_long_tables_are_cut_on_the_page_and_say_so(data):
    from sparsereml import reporting

    m = sr.fit("dbh ~ Trial", "~ Mother", data=data)
    res = FitResults.from_model(m, predictions=[m.predict("Trial:Mother", sed=False)])
    n = len(res.predictions["Trial:Mother"])
    assert n > 100
    rep = reporting.fit_report(res, max_rows=100)
    sec = next(s for s in rep.sections if s.title == "Predictions of Trial:Mother")
    (table,) = [b for b in sec.blocks if hasattr(b, "columns")]
    assert len(table) == 100 and f"the first 100 of {n:,} rows; the result files hold all" in sec.blocks[1:]
    fixed = next(s for s in rep.sections if (s.title or "").startswith("Fixed effects"))
    assert len(fixed.blocks[0]) == len(m.fixed) < 100  # short tables whole


def test_iterations_table_shows_the_logl_changes(fits):
    from sparsereml import reporting

    m = fits[1]
    rep = reporting.fit_report(FitResults.from_model(m))
    (table,) = [b for b in next(s for s in rep.sections if s.title == "Iterations").blocks if hasattr(b, "columns")]
    it = m.iterations
    assert table["logL"].tolist() == [f"{v:.4f}" for v in it["loglik"]]
    assert table["change"].iloc[-1] == f"{it['loglik'].iloc[-1] - it['loglik'].iloc[-2]:+.4g}"


def test_report_figures_leave_room_for_their_labels(data):
    """Margins measured from the labels (long level names, long tick labels) cut none of them;
    a figure they would cut is laid out again by constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sparsereml.report_figures import FigureTask, draw
    from sparsereml.report_layout import drawn_to_the_edge

    long = data.assign(Trial="a rather long trial name " + data["Trial"].astype(str),
                       dbh=data["dbh"] * 1000.0 + 1e7)  # tick labels such as 10250000
    res = FitResults.from_model(sr.fit("dbh ~ Trial", "~ Trial:Block + Mother", "~ at(Trial):units", data=long))
    for kind, args in [("overview", ()), ("caterpillar", ("Trial:Block",)), ("caterpillar", ("Mother",)),
                       ("residuals", ()), ("trace", ())]:
        image = np.asarray(Image.open(BytesIO(draw(FigureTask(0, kind, args, kind), [res]).png)).convert("L"))
        edges = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        assert (edges == 255).all(), kind
    fig = Figure(figsize=(3, 2))
    fig.text(0.99, 0.5, "off the edge")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    assert drawn_to_the_edge(canvas)


def test_drawing_shares_the_figures_and_stops_its_workers_on_an_error(fits):
    """This process and a forked worker both draw (each figure once, the same pictures as drawn
    here alone); an error in the caller's work meanwhile stops the worker."""
    import multiprocessing
    import os

    from sparsereml import report_figures
    from sparsereml.report_figures import Drawing, FigureTask

    results = [FitResults.from_model(m) for m in fits]
    tasks = [FigureTask(k, kind, args, kind) for k in (0, 1) for kind, args in
             [("trace", ()), ("residuals", ()), ("caterpillar", ("Mother",)), ("caterpillar", ("Trial:Block",))]]
    alone = Drawing(tasks, results, processes=1)
    with alone:
        expected = [p.png for p in alone.result()]
    drawers = []
    original = report_figures.draw

    def noted(task, res):
        drawers.append(os.getpid())  # in this process' list only when drawn here
        return original(task, res)

    report_figures.draw = noted
    try:
        with Drawing(tasks, results, processes=2) as drawing:
            got = [p.png for p in drawing.result()]
    finally:
        report_figures.draw = original
    assert got == expected
    assert 0 < len(drawers) < len(tasks)  # some drawn here, the others by the worker
    with pytest.raises(ZeroDivisionError):
        with Drawing(tasks, results, processes=2):
            1 / 0
    assert not multiprocessing.active_children()


def test_drawing_processes_follow_the_idle_cores(monkeypatch):
    """The least of a few samples of other processes' runnable threads (one sample when it is 0)."""
    from sparsereml.linalg import threads
    from sparsereml.report_figures import usable_processes

    monkeypatch.delenv("SPARSEREML_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    for samples, expected, reads in [([0.0, 3.0, 3.0], 4, 1), ([3.0, 1.0, 2.0], 3, 3), ([3.0, 3.0, 2.6], 1, 3)]:
        seen = []

        def sample(samples=samples, seen=seen):
            seen.append(samples[len(seen)])
            return seen[-1]

        monkeypatch.setattr(threads, "runnable_elsewhere", sample)
        assert usable_processes() == expected and len(seen) == reads


def test_measured_layout_keeps_the_titles_look():
    """place_axes fixes the titles' position without resetting their font or colour."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sparsereml.report_layout import place_axes

    fig = Figure(figsize=(6, 3))
    a, b = fig.subplots(1, 2)
    a.set_title("small red", fontsize=7, color="red", fontweight="bold")
    b.set_title("default")
    place_axes(fig, FigureCanvasAgg(fig).get_renderer())
    assert (a.title.get_fontsize(), a.title.get_color(), a.title.get_fontweight()) == (7, "red", "bold")
    assert b.title.get_fontsize() == Figure().add_subplot().title.get_fontsize()
