"""m.confint: Wald and REML profile-likelihood intervals for variance parameters.

Reference numbers:
- john.alpha (tests/refdata/agridat_john.alpha.csv), yield ~ rep + (1|rep:block) + (1|gen): 95%
  REML profile limits of the three variances from tests/reference/confint_profile.R
  (confint_profile.json, "profile_limits"), computed from lme4 1.1-31's REML objective
  (getME(m, "devfun")) minimised by nlminb and solved by uniroot.  lme4's own
  confint(method = "profile") profiles the ML refit (lme4:::devfun2 calls refitML), so its
  limits are not those of a REML profile; the script uses them only to check its method on
  the ML fit (agreement 4.5e-4, lme4's spline interpolation).
- Simulated trial networks (sr.datasets.trial_network): the defining property of the limits, a
  fall of chi2_1(0.95) / 2 in the profile REML logL, checked by refitting at each limit.
- Wald limits: estimate +- scipy's normal quantile times varcomp's std.error.
"""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sparsereml as sr
from sparsereml.confint import profile_loglik
from sparsereml.datasets import trial_network
from sparsereml.errors import ModelError, UnknownName

from .conftest import reference, refdata

HALF_Q = stats.chi2.ppf(0.95, 1) / 2


@pytest.fixture(scope="module")
def john(backend):
    return sr.fit("yield ~ rep", "~ rep:block + gen", data=refdata("agridat_john.alpha.csv"), backend=backend)


@pytest.fixture(scope="module")
def network():
    df, _ = trial_network(seed=9, trials=6, trees=9000, mothers=90)
    return df


def test_profile_limits_match_the_reml_profile_of_lme4s_objective(john):
    ref = reference("confint_profile.json")["john_alpha"]
    ci = john.confint(method="profile")
    for ours, theirs in (("rep:block", "rep:block"), ("gen", "gen"), ("units", "Residual")):
        assert john.varcomp.loc[ours, "component"] == pytest.approx(ref["estimates"][theirs], rel=1e-6)
        lo, hi = ref["profile_limits"][theirs]
        # agree to ~5e-11 (both solve the same equation tightly); 1e-7 leaves room for BLAS rounding
        assert ci.loc[ours, "lower"] == pytest.approx(lo, rel=1e-7)
        assert ci.loc[ours, "upper"] == pytest.approx(hi, rel=1e-7)
    assert (ci["method"] == "profile").all() and (ci["note"] == "").all()


def test_logl_falls_by_half_the_chi2_quantile_at_each_limit(network, backend):
    m = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", data=network, backend=backend)
    ci = m.confint(method="profile")
    assert list(ci.index) == m.labels
    for lab in m.labels:
        row = ci.loc[lab]
        assert row["lower"] < row["estimate"] < row["upper"]
        drop = m.loglik - profile_loglik(m, lab, [row["lower"], row["upper"]])
        np.testing.assert_allclose(drop, HALF_Q, atol=1e-6)
    # the same by hand through the public stages: Mother held at its upper limit, the rest refitted
    j = m.problem.params.index("Mother")
    start = m.theta_working.copy()
    start[j] = ci.loc["Mother", "upper"]
    fixed = np.arange(start.size) == j
    res = sr.ai_reml(m.problem, start, fixed, control=m.control.updated(tol=1e-9, tol_loglik=1e-10))
    assert m.loglik - res.evaluation.loglik == pytest.approx(HALF_Q, abs=1e-6)


def test_at_residual_and_block_variances_profile(network, backend):
    m = sr.fit("dbh ~ Trial", "~ at(Trial):Block + Mother + Trial:Mother", "~ at(Trial):units", data=network,
               backend=backend)
    terms = ["at(Trial, 1):Block", "at(Trial, 3):units"]
    ci = m.confint(terms, method="profile")
    for lab in terms:
        assert ci.loc[lab, "lower"] < ci.loc[lab, "estimate"] < ci.loc[lab, "upper"]
        drop = m.loglik - profile_loglik(m, lab, ci.loc[lab, ["lower", "upper"]].to_numpy(float))
        np.testing.assert_allclose(drop, HALF_Q, atol=1e-6)


def test_a_variance_held_at_zero_has_an_interval_from_the_bound(network, backend):
    # with one residual variance, trial 4's block variance goes to zero (code B) on this network
    m = sr.fit("dbh ~ Trial", "~ at(Trial):Block + Mother + Trial:Mother", data=network, backend=backend)
    assert m.varcomp.loc["at(Trial, 4):Block", "bound"] == "B"
    row = m.confint("at(Trial, 4):Block", method="profile").loc["at(Trial, 4):Block"]
    assert row["lower"] == 0 and "estimate on it" in row["note"] and row["upper"] > 0
    assert m.loglik - profile_loglik(m, "at(Trial, 4):Block", [row["upper"]])[0] == pytest.approx(HALF_Q, abs=1e-6)
    wald = m.confint().loc["at(Trial, 4):Block"]
    assert np.isnan(wald["lower"]) and "held at a bound" in wald["note"]


def test_a_limit_beyond_zero_is_reported_as_the_bound(john):
    ci = john.confint("rep:block", method="profile", level=0.999)
    row = ci.loc["rep:block"]
    assert row["lower"] == 0.0 and "lower limit at the bound 0" in row["note"]
    # 0.999: logL at zero falls by less than chi2_1(0.999) / 2
    assert john.loglik - profile_loglik(john, "rep:block", [1e-12])[0] < stats.chi2.ppf(0.999, 1) / 2


def test_wald_is_estimate_plus_minus_z_se_flagged_not_clipped(john):
    vc = john.varcomp
    for level in (0.95, 0.9):
        z = stats.norm.ppf(0.5 + level / 2)
        ci = john.confint(method="wald", level=level)
        np.testing.assert_allclose(ci["lower"], vc["component"] - z * vc["std.error"], rtol=1e-14)
        np.testing.assert_allclose(ci["upper"], vc["component"] + z * vc["std.error"], rtol=1e-14)
        assert ci.attrs["level"] == level
    ci = john.confint()  # rep:block's Wald interval crosses zero (0.0702 - 1.96 * 0.0373)
    assert ci.loc["rep:block", "lower"] < 0 and "crosses the bound 0" in ci.loc["rep:block", "note"]
    assert ci.loc["gen", "note"] == ""
    assert list(ci.columns) == ["estimate", "lower", "upper", "method", "note"]


def test_profiling_leaves_the_model_as_it_was(network, backend):
    kw = dict(data=network, backend=backend)
    m = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother", **kw)
    untouched = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother", **kw)
    m.confint("Mother", method="profile")  # refits move the factor; PEVs are formed after
    pd.testing.assert_frame_equal(m.varcomp, untouched.varcomp)
    pd.testing.assert_frame_equal(m.fixed, untouched.fixed, rtol=1e-10)
    pd.testing.assert_frame_equal(m.blups("Mother"), untouched.blups("Mother"), rtol=1e-10)
    assert m.loglik == untouched.loglik


def test_what_cannot_be_profiled_or_asked_is_refused(john, network, backend):
    with pytest.raises(ModelError, match="method must be"):
        john.confint(method="bootstrap")
    with pytest.raises(ModelError, match="level must be"):
        john.confint(level=95)
    with pytest.raises(UnknownName, match="'Block'"):
        john.confint("Block")
    small = network[network["Trial"].isin(network["Trial"].cat.categories[:2])].copy()
    small["Trial"] = small["Trial"].cat.remove_unused_categories()
    mu = sr.fit("dbh ~ Trial", "~ Trial:Block + us(Trial):Mother", data=small, backend=backend)
    with pytest.raises(ModelError, match=r"Cholesky factor.*us\(Trial\):Mother!2:1"):
        mu.confint(method="profile")
    assert mu.confint(method="wald").loc["us(Trial):Mother!2:1", "method"] == "wald"
    ci = mu.confint(["Trial:Block", "units"], method="profile")  # its plain variances still profile
    assert (ci["lower"] < ci["estimate"]).all() and (ci["estimate"] < ci["upper"]).all()
