"""Likelihood-ratio tests between nested REML fits (Self & Liang 1987: one variance tested at
zero is a 50:50 mixture of chi2(0) and chi2(1))."""
import pytest
from scipy import stats

import sparsereml as sr
from sparsereml.datasets import trial_network
from sparsereml.errors import ModelError


@pytest.fixture(scope="module")
def fits(backend):
    df, _ = trial_network(seed=9, trials=6, trees=9000, mothers=90)
    kw = dict(data=df, backend=backend)
    return {
        "m1": sr.fit("dbh ~ Trial", "~ Trial:Block + Mother", **kw),
        "m2": sr.fit("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", **kw),
        "m2b": sr.fit("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units", **kw),
        "other_fixed": sr.fit("dbh ~ 1", "~ Trial:Block + Mother + Trial:Mother", **kw),
    }


def test_one_variance_at_zero_uses_the_mixture(fits):
    t = sr.lrt(fits["m1"], fits["m2"])
    stat = 2 * (fits["m2"].loglik - fits["m1"].loglik)
    assert t.mixture and t.df == 1 and t.statistic == pytest.approx(stat)
    assert t.p_value == pytest.approx(0.5 * stats.chi2.sf(stat, 1))


def test_heterogeneous_residuals_use_plain_chi2(fits):
    t = sr.lrt(fits["m2"], fits["m2b"])
    assert not t.mixture and t.df == 5
    assert t.p_value == pytest.approx(stats.chi2.sf(t.statistic, 5))


def test_different_fixed_effects_are_refused(fits):
    with pytest.raises(ModelError, match="same fixed effects"):
        sr.lrt(fits["other_fixed"], fits["m2"])
    with pytest.raises(ModelError, match="more variance parameters"):
        sr.lrt(fits["m2b"], fits["m2"])


def test_printed_p_value_is_never_zero():
    """A p-value below double precision's reach prints as compare's table shows it, not as 0."""
    from sparsereml.compare import LRTResult

    assert "p < 2.2e-16 (chi2(30))" in repr(LRTResult(10530.05, 30, 0.0, False))
    assert "p = 0.0123 " in repr(LRTResult(5.0, 1, 0.0123, True))
