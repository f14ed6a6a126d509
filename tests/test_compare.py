"""sr.compare: logL, AIC, BIC side by side and REML likelihood-ratio tests between nested fits.

Reference numbers: the test statistics are 2 (logL_big - logL_small) of the fits themselves and
the p-values scipy's chi2 (Self & Liang 1987 for the 50:50 chi2(0):chi2(1) mixture when one
variance is added); the same pairs through sr.lrt must give the same numbers.
"""
import numpy as np
import pytest
from scipy import stats

import sparsereml as sr
from sparsereml.datasets import trial_network
from sparsereml.errors import ModelError

FIXED = "dbh ~ Trial"


@pytest.fixture(scope="module")
def fits(backend):
    df, _ = trial_network(seed=9, trials=6, trees=9000, mothers=90)
    kw = dict(data=df, backend=backend)
    return {
        "df": df,
        "m1": sr.fit(FIXED, "~ Trial:Block + Mother", **kw),
        "m2": sr.fit(FIXED, "~ Trial:Block + Mother + Trial:Mother", **kw),
        "m2b": sr.fit(FIXED, "~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units", **kw),
        "m2c": sr.fit(FIXED, "~ at(Trial):Block + Mother + Trial:Mother", **kw),
        "m2d": sr.fit(FIXED, "~ at(Trial):Block + Mother + Trial:Mother", "~ at(Trial):units", **kw),
        "other_fixed": sr.fit("dbh ~ 1", "~ Trial:Block + Mother + Trial:Mother", **kw),
    }


def test_table_has_one_row_per_model_with_the_fits_own_numbers(fits):
    c = sr.compare(fits["m2"], fits["m2b"], fits["m2c"], names=["m2", "m2b", "m2c"])
    t = c.table
    assert list(t.index) == ["m2", "m2b", "m2c"]
    for name in t.index:
        m = fits[name]
        assert t.loc[name, "logLik"] == m.loglik
        assert t.loc[name, "AIC"] == m.aic and t.loc[name, "BIC"] == m.bic
        assert t.loc[name, "n_params"] == sum(code != "F" for code in m.codes)
    assert list(t.columns) == ["logLik", "n_params", "AIC", "BIC", "vs", "statistic", "df", "p_value", "notes"]


def test_m2b_and_m2c_are_each_tested_against_m2_not_against_each_other(fits):
    t = sr.compare(fits["m2"], fits["m2b"], fits["m2c"], names=["m2", "m2b", "m2c"]).table
    assert np.isnan(t.loc["m2", "statistic"]) and t.loc["m2", "vs"] == ""
    for name in ("m2b", "m2c"):
        ref = sr.lrt(fits["m2"], fits[name])
        assert t.loc[name, "vs"] == "m2"
        assert t.loc[name, "statistic"] == pytest.approx(ref.statistic, rel=1e-12)
        assert t.loc[name, "df"] == ref.df == 5
        assert t.loc[name, "p_value"] == pytest.approx(stats.chi2.sf(ref.statistic, 5), rel=1e-12)
    # m2c is not nested in m2b: alone after m2b it gets no test
    t2 = sr.compare(fits["m2b"], fits["m2c"]).table
    assert np.isnan(t2.loc["model 2", "statistic"]) and "not nested" in t2.loc["model 2", "notes"]


def test_one_added_variance_uses_the_boundary_mixture(fits):
    t = sr.compare(fits["m1"], fits["m2"]).table
    stat = 2 * (fits["m2"].loglik - fits["m1"].loglik)
    assert t.loc["model 2", "df"] == 1 and t.loc["model 2", "statistic"] == pytest.approx(stat)
    assert t.loc["model 2", "p_value"] == pytest.approx(0.5 * stats.chi2.sf(stat, 1))
    assert "chi2(0)" in t.loc["model 2", "notes"]


def test_the_largest_nested_earlier_model_is_the_one_tested(fits):
    names = ["m1", "m2", "m2b", "m2c", "m2d"]
    t = sr.compare(*(fits[n] for n in names), names=names).table
    assert t.loc["m2", "vs"] == "m1" and t.loc["m2b", "vs"] == "m2"
    # m2d splits both m2b's block variance and m2c's residual by trial: both are nested in it
    assert t.loc["m2d", "vs"] in ("m2b", "m2c")
    small = fits[t.loc["m2d", "vs"]]
    assert t.loc["m2d", "df"] == len(fits["m2d"].codes) - len(small.codes)


def test_repr_prints_the_table_aligned(fits):
    text = repr(sr.compare(fits["m1"], fits["m2"], names=["m1", "m2"]))
    lines = text.splitlines()
    assert "logLik" in lines[1] and "p_value" in lines[1]
    assert lines[-1].startswith("m2") and "NaN" not in text and "<NA>" not in text
    assert str(sr.compare(fits["m1"], fits["m2"])) == repr(sr.compare(fits["m1"], fits["m2"]))


def test_fits_that_cannot_be_compared_are_refused_by_name(fits):
    with pytest.raises(ModelError, match=r"m2.*'dbh ~ Trial'.*ols.*'dbh ~ 1'|ols.*m2"):
        sr.compare(fits["m2"], fits["other_fixed"], names=["m2", "ols"])
    sub = fits["df"].iloc[:-50]
    small = sr.fit(FIXED, "~ Trial:Block + Mother", data=sub)
    with pytest.raises(ModelError, match="m1 and fewer do not use the same records"):
        sr.compare(fits["m1"], small, names=["m1", "fewer"])
    other_y = fits["df"].assign(dbh=fits["df"]["dbh"] * 1.1)
    scaled = sr.fit(FIXED, "~ Trial:Block + Mother", data=other_y)
    with pytest.raises(ModelError, match="same records"):
        sr.compare(fits["m1"], scaled)
    with pytest.raises(ModelError, match="at least two"):
        sr.compare(fits["m1"])
    with pytest.raises(ModelError, match="model 2 is a dict"):
        sr.compare(fits["m1"], {"logLik": 1.0})
    with pytest.raises(ModelError, match="one string per model"):
        sr.compare(fits["m1"], fits["m2"], names=["a"])
