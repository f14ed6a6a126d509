"""Predictions and generalised heritability against published ASReml results (the project's
reference collection, ../shared/reference/REFERENCE.md, group d):
- agridat john.alpha m3 (Rd L108-134; Piepho & Mohring 2007, Genetics 177:1881, Example 1):
  asreml(yield ~ 1 + rep, random = ~ gen + rep:block): vblup, the mean variance of a difference of
  two gen BLUPs from predict(..., sed = TRUE), 0.05455038, and H2 Cullis = 1 - vblup/(2 sg2) = 0.809;
- agridat stroup.splitplot (Rd L61-84; Stroup 1989 p. 41): asreml(y ~ -1 + a + b + a:b,
  random = ~ rep + a:rep): predictions of a 32.88, 34.12, 25.75 with the broad-inference SE 4.54
  (random terms outside classify ignored, predict.asreml's default)."""
import pytest

import sparsereml as sr

from ..conftest import refdata


def test_john_alpha_vblup_and_cullis_h2(backend):
    df = refdata("agridat_john.alpha.csv")
    m = sr.fit("yield ~ 1 + rep", "~ gen + rep:block", data=df, backend=backend)
    assert m.varcomp.loc["gen", "component"] == pytest.approx(0.142902, rel=1e-5)
    pred = m.predict("gen")
    assert pred.avsed["v.mean"] == pytest.approx(0.05455038, rel=1e-5)
    assert m.heritability_cullis("gen") == pytest.approx(1 - 0.05455038 / (2 * 0.142902), rel=1e-5)
    assert round(m.heritability_cullis("gen"), 3) == 0.809


def test_stroup_splitplot_broad_predictions(backend):
    df = refdata("agridat_stroup.splitplot.csv").astype({"rep": str})
    m = sr.fit("y ~ -1 + a + b + a:b", "~ rep + a:rep", data=df, backend=backend)
    t = m.predict("a").table.set_index("a")
    # published to two decimals (32.875 printed as 32.88)
    assert t["predicted.value"].tolist() == pytest.approx([32.88, 34.12, 25.75], abs=0.0051)
    assert t["std.error"].tolist() == pytest.approx([4.54] * 3, abs=0.005)


def test_stroup_splitplot_narrow_and_intermediate_predictions(backend):
    """The same predictions in the narrower inference spaces (Rd L68-84): with the rep effects
    averaged in (use="rep", asreml's ignore="a:rep") SE 2.24; with rep and a:rep, SE 1.082."""
    df = refdata("agridat_stroup.splitplot.csv").astype({"rep": str})
    m = sr.fit("y ~ -1 + a + b + a:b", "~ rep + a:rep", data=df, backend=backend)
    inter = m.predict("a", use=["rep"]).table
    narrow = m.predict("a", use=["rep", "a:rep"]).table
    assert inter["std.error"].tolist() == pytest.approx([2.24] * 3, abs=0.005)
    assert narrow["std.error"].tolist() == pytest.approx([1.082] * 3, abs=0.0005)
    assert narrow["predicted.value"].tolist() == pytest.approx([32.88, 34.12, 25.75], abs=0.0051)
