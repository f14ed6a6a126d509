"""Wald F tests with Satterthwaite and Kenward-Roger df against lmerTest 3.1 / pbkrtest 0.5
(tests/reference/inference.R -> inference.json): the GLS incremental and conditional contrasts
built there from lme4's vcov, fed to lmerTest::contestMD (Satterthwaite, and Kenward-Roger through
pbkrtest::KRmodcomp, whose F includes KR's scaling)."""
import numpy as np
import pandas as pd
import pytest

import sparsereml as sr

from ..conftest import HERE, reference

REF = reference("inference.json")["models"]
MODELS = {
    "splitplot": ("y ~ a*b", "~ rep + rep:a"),
    "alpha": ("yield ~ rep + gen", "~ rep:block"),
    "multisite": ("yield ~ village*system", "~ village:farm"),
    "regression": ("y ~ x", "~ us(~ 1 + x):g"),
}


def _data(name):
    ref = REF[name]
    df = pd.read_csv(HERE.parent / ref["file"])
    for col in ref["factor_columns"]:
        df[col] = df[col].astype(str)
    return df


@pytest.fixture(scope="module")
def fits():
    return {name: sr.fit(fixed, random, data=_data(name), control=sr.Control(tol=1e-9)) for name, (fixed, random)
            in MODELS.items()}


@pytest.mark.parametrize("name", list(MODELS))
def test_fit_matches_lme4(fits, name):
    assert fits[name].loglik == pytest.approx(REF[name]["logLik_REML"], abs=1e-6)


@pytest.mark.parametrize("ss", ["incremental", "conditional"])
@pytest.mark.parametrize("ddf,key", [("satterthwaite", "Satterthwaite"), ("kr", "KenwardRoger")])
@pytest.mark.parametrize("name", list(MODELS))
def test_wald_matches_lmertest(fits, name, ddf, key, ss):
    m = fits[name]
    table = m.wald(ddf, ss)
    stat = "F.inc" if ss == "incremental" else "F.con"
    for term, ref in REF[name]["tests"][ss].items():
        r = ref[key]
        assert table.loc[term, "Df"] == r["NumDF"]
        assert table.loc[term, stat] == pytest.approx(r["F"], rel=1e-4), term
        assert table.loc[term, "denDF"] == pytest.approx(r["DenDF"], rel=1e-4), term
        assert table.loc[term, "Pr"] == pytest.approx(r["p_value"], rel=1e-3, abs=1e-12), term


@pytest.mark.parametrize("name", list(MODELS))
def test_kr_adjusted_covariance_matches_pbkrtest(fits, name):
    """pbkrtest::vcovAdj (inference.json); for the random regression in the covariance entries of
    us(), which enter V linearly (sparsereml fits their Cholesky factor)."""
    ref = np.array(REF[name]["pbkrtest"]["vcovAdj"])
    ours = fits[name].vcov_fixed("kr").to_numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max())
    np.testing.assert_allclose(fits[name].vcov_fixed().to_numpy(), np.array(REF[name]["vcov"]), rtol=1e-5,
                               atol=1e-8 * np.abs(ref).max())


def test_kr_adjustment_vanishes_on_balanced_data(fits):
    """On a balanced split plot the fixed effects' GLS estimates do not depend on the variance
    ratios, so Kenward-Roger's bias correction of their covariance is zero (Kenward & Roger 1997,
    sec. 4): Phi_A = Phi, and the KR and Satterthwaite tests coincide; on the incomplete-block
    design (alpha) it is not."""
    m = fits["splitplot"]
    np.testing.assert_allclose(m.vcov_fixed("kr").to_numpy(), m.vcov_fixed().to_numpy(), rtol=1e-9, atol=1e-12)
    kr, sat = m.wald("kr"), m.wald("satterthwaite")
    np.testing.assert_allclose(kr["F.inc"], sat["F.inc"], rtol=1e-8)
    a = fits["alpha"]
    assert np.abs(a.vcov_fixed("kr").to_numpy() - a.vcov_fixed().to_numpy()).max() > 1e-4


def test_aliased_terms_are_named_and_tested_on_their_estimable_part():
    df = _data("splitplot").assign(a2=lambda d: d["a"])
    with pytest.warns(sr.AliasWarning):
        m = sr.fit("y ~ a + a2 + b", "~ rep + rep:a", data=df)
    with pytest.warns(sr.AliasWarning, match="aliased columns a2_a2, a2_a3 are left out"):
        t = m.wald("satterthwaite", "conditional")
    assert t.loc["a2", "Df"] == 0 and np.isnan(t.loc["a2", "F.inc"])
    assert t.loc["a", "Df"] == 2 and t.loc["b", "Df"] == 1


def test_tests_and_predictions_of_an_unconverged_fit_warn():
    with pytest.warns(sr.ConvergenceWarning):
        m = sr.fit(*MODELS["alpha"], data=_data("alpha"), control=sr.Control(max_iter=1))
    with pytest.warns(sr.ConvergenceWarning, match="Wald tests of a fit that did not converge"):
        m.wald("none")
    with pytest.warns(sr.ConvergenceWarning, match="predictions from a fit that did not converge"):
        m.predict("rep")
