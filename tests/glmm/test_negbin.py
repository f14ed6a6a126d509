"""Negative binomial GLMMs (glmmTMB's nbinom2, theta estimated by the Laplace likelihood).

References: tests/reference/glmm_negbin.json, made by tests/reference/glmm_negbin.R (glmmTMB
nbinom2 polished to its optimum; SEs from TMB's sdreport): Owls with an offset and a simulated
crossed trial (its truth recorded there); glmm.json's grouseticks_nbinom2 (glmm.R, glmmTMB
polished); and tests/reference/glmm_negbin_more.json (glmm_negbin_more.R, glmmTMB polished): prior
weights, and a correlated random intercept and slope.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import nbinom

import sparsereml as sr
from sparsereml.errors import ConvergenceWarning, ModelError
from sparsereml.glmm.laplace import LaplaceProblem
from tests.conftest import REFERENCE, reference

REF = reference("glmm_negbin.json")
GROUSE = reference("glmm.json")["grouseticks_nbinom2"]
REL, SE_REL = 1e-4, 1e-3  # issue 18: estimates to 1e-4 relative, logLik to 1e-4 abs, SEs to 1e-3

OWLS = pd.read_csv(REFERENCE / "glmm_owls.csv").assign(log_brood=lambda d: np.log(d["BroodSize"]))
SIM = pd.read_csv(REFERENCE / "glmm_negbin_sim.csv")
CASES = {"owls": (OWLS, "NCalls ~ FoodTreatment", "~ Nest", {"offset": "log_brood"}),
         "sim_crossed": (SIM, "count ~ Trial", "~ TrialBlock + Mother", {})}


@pytest.fixture(scope="module")
def fits(backend):
    return {case: sr.fit(fixed, random, data=df, family="negative.binomial", backend=backend, **extra)
            for case, (df, fixed, random, extra) in CASES.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_estimates_and_loglik_equal_glmmtmb(fits, case):
    m, ref = fits[case], REF[case]
    assert m.converged and m.method == "laplace"
    np.testing.assert_allclose(m.fixed["estimate"], list(ref["fixef"].values()), rtol=REL, atol=1e-6)
    vc = m.varcomp
    np.testing.assert_allclose(vc.loc[list(ref["variances"]), "component"], list(ref["variances"].values()), rtol=REL)
    assert vc.loc["theta", "component"] == pytest.approx(ref["theta"], rel=REL)
    assert m.loglik == pytest.approx(ref["logLik"], abs=1e-4)
    assert m.family.theta == pytest.approx(ref["theta"], rel=REL)


@pytest.mark.parametrize("case", list(CASES))
def test_standard_errors_equal_glmmtmb(fits, case):
    m, ref = fits[case], REF[case]
    np.testing.assert_allclose(m.fixed["std.error"], list(ref["fixef_se"].values()), rtol=SE_REL)
    vc = m.varcomp
    np.testing.assert_allclose(vc.loc[list(ref["variances_se"]), "std.error"], list(ref["variances_se"].values()),
                               rtol=SE_REL)
    assert vc.loc["theta", "std.error"] == pytest.approx(ref["theta_se"], rel=SE_REL)


def test_grouseticks_equals_glmmtmb(backend):
    # glmm.json's grouseticks_nbinom2, glmmTMB's optimum polished (glmm.R)
    df = pd.read_csv(REFERENCE / "glmm_grouseticks.csv").astype({"BROOD": str, "LOCATION": str, "YEAR": str})
    m = sr.fit("TICKS ~ YEAR + HEIGHT_c", "~ BROOD + LOCATION", data=df, family=sr.glmm.NegativeBinomial(),
               backend=backend)
    pol = GROUSE["polished"]
    np.testing.assert_allclose(m.fixed["estimate"], list(pol["fixef"].values()), rtol=REL, atol=1e-6)
    np.testing.assert_allclose(m.varcomp.loc[["BROOD", "LOCATION"], "component"],
                               [pol["variances"]["BROOD"], pol["variances"]["LOCATION"]], rtol=REL)
    assert m.varcomp.loc["theta", "component"] == pytest.approx(pol["sigma"], rel=REL)
    assert m.loglik == pytest.approx(pol["logLik"], abs=1e-4)
    np.testing.assert_allclose(m.fixed["std.error"], list(GROUSE["fixef_se"].values()), rtol=SE_REL)


def test_simulated_truth_within_3_se(fits):
    m, truth = fits["sim_crossed"], REF["sim_crossed"]["truth"]
    vc = m.varcomp
    for label, value in [*truth["variances"].items(), ("theta", truth["theta"])]:
        est, se = vc.loc[label, "component"], vc.loc[label, "std.error"]
        assert abs(est - value) < 3 * se, (label, est, se, value)


def test_log_density_and_derivatives():
    rng = np.random.default_rng(7)
    y, n, eta = rng.integers(0, 40, 60).astype(float), rng.uniform(0.5, 2.0, 60), rng.normal(1.0, 1.5, 60)
    fam = sr.glmm.NegativeBinomial(theta=1.7)
    d = fam.derivatives(y, n, eta)
    mu = np.exp(eta)
    np.testing.assert_allclose(d.loglik, n * nbinom.logpmf(y, 1.7, 1.7 / (1.7 + mu)), rtol=1e-12)
    h = 1e-6
    up, down = fam.derivatives(y, n, eta + h), fam.derivatives(y, n, eta - h)
    np.testing.assert_allclose((up.loglik - down.loglik) / (2 * h), d.score, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(-(up.score - down.score) / (2 * h), d.weight, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose((up.weight - down.weight) / (2 * h), d.dweight, rtol=1e-6, atol=1e-7)
    dl, ds, dw = fam.dispersion_derivatives(y, n, eta)
    a, b = fam.at_theta(1.7 * np.exp(h)).derivatives(y, n, eta), fam.at_theta(1.7 * np.exp(-h)).derivatives(y, n, eta)
    np.testing.assert_allclose((a.loglik - b.loglik) / (2 * h), dl, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose((a.score - b.score) / (2 * h), ds, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose((a.weight - b.weight) / (2 * h), dw, rtol=1e-6, atol=1e-7)


def test_gradient_in_log_theta_equals_differences_of_the_likelihood(fits):
    m = fits["owls"]
    lp = LaplaceProblem(m.design, sr.glmm.NegativeBinomial(), m.counts, m.trials, m.offset, m.control)
    theta = np.array([0.2, np.log(1.3)])  # Nest variance, log theta: away from the optimum
    beta = np.array([0.5, -0.5])
    mode = lp.mode(theta, beta)
    g_theta, _, _ = lp.gradient(mode)
    h = 1e-5
    up, down = theta + [0, h], theta - [0, h]
    num = (lp.mode(up, beta, mode.u).loglik - lp.mode(down, beta, mode.u).loglik) / (2 * h)
    assert g_theta[1] == pytest.approx(num, rel=1e-5)
    assert abs(num) > 1.0  # a point where the derivative is not ~0


def test_family_passed_is_not_modified_and_theta_can_be_held(backend):
    fam = sr.glmm.NegativeBinomial()
    m = sr.fit("count ~ Trial", "~ TrialBlock + Mother", data=SIM, family=fam, backend=backend)
    assert fam.theta is None and m.family.theta == pytest.approx(REF["sim_crossed"]["theta"], rel=REL)
    held = sr.fit("count ~ Trial", "~ TrialBlock + Mother", data=SIM, family=sr.glmm.NegativeBinomial(theta=m.family.theta),
                  backend=backend)
    row = held.varcomp.loc["theta"]
    assert row["bound"] == "F" and np.isnan(row["std.error"])
    assert held.loglik == pytest.approx(m.loglik, abs=1e-6)
    assert held.n_estimated == m.n_estimated - 1  # theta is counted when estimated (AIC), as glmmTMB's df
    np.testing.assert_allclose(held.fixed["estimate"], m.fixed["estimate"], rtol=1e-5)


def test_bad_counts_and_pql_refused():
    bad = SIM.assign(count=SIM["count"].astype(float))
    bad.loc[5, "count"] = -1
    with pytest.raises(ModelError, match="negative binomial response 'count': counts must be whole numbers"):
        sr.fit("count ~ Trial", "~ Mother", data=bad, family="negative.binomial")
    bad.loc[5, "count"] = 2.5
    with pytest.raises(ModelError, match="'count'.*record 5 .* is 2.5"):
        sr.fit("count ~ Trial", "~ Mother", data=bad, family="negative.binomial")
    with pytest.raises(ModelError, match="method='pql' is not available for the negative binomial"):
        sr.fit("count ~ Trial", "~ Mother", data=SIM, family="negative.binomial", method="pql")
    with pytest.raises(ModelError, match="theta must be between"):
        sr.glmm.NegativeBinomial(theta=0.0)


@pytest.fixture(scope="module")
def poisson_data() -> pd.DataFrame:
    """Poisson counts with one random term: no overdispersion beyond it (theta -> infinity)."""
    rng = np.random.default_rng(4)  # a sample whose theta runs to its bound (others end at large finite ones)
    mother = np.repeat(np.arange(60), 20)
    eta = 1.0 + rng.normal(0, np.sqrt(0.2), 60)[mother]
    return pd.DataFrame({"Mother": mother.astype(str), "count": rng.poisson(np.exp(eta))})


def test_poisson_data_put_theta_on_its_boundary(poisson_data, backend):
    with pytest.warns(ConvergenceWarning, match="theta reached its bound .* theta -> infinity is the Poisson"):
        nb = sr.fit("count ~ 1", "~ Mother", data=poisson_data, family="negative.binomial", backend=backend)
    row = nb.varcomp.loc["theta"]
    assert row["bound"] == "B" and np.isnan(row["std.error"])  # no standard error on the boundary
    assert "no overdispersion beyond the random effects" in nb.summary()
    po = sr.fit("count ~ 1", "~ Mother", data=poisson_data, family="poisson", backend=backend)
    assert nb.loglik == pytest.approx(po.loglik, abs=1e-3)  # theta = 1e6 is the Poisson to ~1e-4
    test = sr.lrt(po, nb)
    assert test.df == 1 and test.mixture and test.p_value > 0.4


def test_lrt_of_theta_against_the_poisson_fit(fits, backend):
    m = fits["sim_crossed"]
    po = sr.fit("count ~ Trial", "~ TrialBlock + Mother", data=SIM, family="poisson", backend=backend)
    test = sr.lrt(po, m)
    ref = REF["sim_crossed"]
    assert test.df == 1 and test.mixture  # the Poisson is theta -> infinity: on the boundary
    assert test.statistic == pytest.approx(2 * (ref["logLik"] - ref["poisson_logLik"]), abs=2e-3)
    assert sr.compare(po, m).table.shape[0] == 2


def test_predictions_on_the_response_scale(fits):
    m = fits["sim_crossed"]
    link = m.predict("Trial").table
    resp = m.predict("Trial", scale="response").table
    np.testing.assert_allclose(resp["predicted.value"], np.exp(link["predicted.value"]), rtol=1e-12)
    np.testing.assert_allclose(resp["std.error"], np.exp(link["predicted.value"]) * link["std.error"], rtol=1e-12)


def test_written_results_show_theta(fits, tmp_path):
    m = fits["owls"]
    sr.FitResults.from_model(m).write(tmp_path / "res")
    info = json.loads((tmp_path / "res" / "fit.json").read_text())
    assert info["family"] == "negative.binomial" and info["link"] == "log"
    # glmmTMB's theta for Owls (glmm_negbin.json), as the label prints it (6 significant digits)
    assert info["residual"].startswith(f"negative.binomial(log, theta = {REF['owls']['theta']:.4g}")
    back = sr.FitResults.read(tmp_path / "res")
    assert back.varcomp.loc["theta", "component"] == pytest.approx(m.varcomp.loc["theta", "component"], rel=1e-12)
    m.report(tmp_path / "owls.html")
    assert "negative.binomial(log, theta" in (tmp_path / "owls.html").read_text()


MORE = reference("glmm_negbin_more.json")


def test_prior_weights_equal_glmmtmb(backend):
    """weights= counts each record's log density w times, as glmmTMB's weights (glmm_negbin_more.json)."""
    ref = MORE["weighted"]
    df = pd.read_csv(REFERENCE / "glmm_negbin_weighted.csv")
    m = sr.fit("count ~ Trial", "~ TrialBlock + Mother", data=df, family="negative.binomial", weights="w",
               backend=backend)
    assert m.converged and m.loglik == pytest.approx(ref["logLik"], abs=1e-4)
    np.testing.assert_allclose(m.fixed["estimate"], list(ref["fixef"].values()), rtol=REL, atol=1e-6)
    np.testing.assert_allclose(m.fixed["std.error"], list(ref["fixef_se"].values()), rtol=SE_REL)
    np.testing.assert_allclose(m.varcomp.loc[list(ref["variances"]), "component"], list(ref["variances"].values()),
                               rtol=REL)
    assert m.varcomp.loc["theta", "component"] == pytest.approx(ref["theta"], rel=REL)


def test_correlated_intercept_and_slope_equal_glmmtmb(backend):
    """us(~ 1 + x):Mother is glmmTMB's (1 + x | Mother) (glmm_negbin_more.json); the simulated
    covariance within 3 SE of the truth."""
    ref = MORE["slopes"]
    df = pd.read_csv(REFERENCE / "glmm_negbin_slopes.csv")
    m = sr.fit("count ~ x", "~ us(~ 1 + x):Mother", data=df, family="negative.binomial", backend=backend)
    assert m.converged and m.loglik == pytest.approx(ref["logLik"], abs=1e-4)
    np.testing.assert_allclose(m.fixed["estimate"], list(ref["fixef"].values()), rtol=REL, atol=1e-6)
    np.testing.assert_allclose(m.fixed["std.error"], list(ref["fixef_se"].values()), rtol=SE_REL)
    v = m.vcov(m.random_terms[0])
    G, se = v["covariance"].to_numpy(), v["covariance_se"].to_numpy()
    c = ref["covariance"]
    np.testing.assert_allclose([G[0, 0], G[0, 1], G[1, 1]], [c["intercept"], c["covariance"], c["slope"]], rtol=REL)
    assert m.varcomp.loc["theta", "component"] == pytest.approx(ref["theta"], rel=REL)
    t = ref["truth"]["covariance"]
    assert np.all(np.abs(np.array([G[0, 0], G[0, 1], G[1, 1]]) - [t["intercept"], t["covariance"], t["slope"]])
                  < 3 * np.array([se[0, 0], se[0, 1], se[1, 1]]))


def test_vpredict_names_theta_as_the_dispersion(fits):
    """Functions of the components take the variance components; theta is refused with the reason,
    and the residual's placeholder of a family without a latent residual is not offered."""
    m = fits["sim_crossed"]
    h = m.vpredict({"h": "Mother / (Mother + TrialBlock)"})
    assert h.loc["h", "estimate"] == pytest.approx(m.varcomp.loc["Mother", "component"] / m.varcomp.loc[
        ["Mother", "TrialBlock"], "component"].sum())
    with pytest.raises(ModelError, match=r"theta is its family's dispersion.*components: TrialBlock, Mother;") as exc:
        m.vpredict({"x": "Mother / theta"})
    assert "no latent residual" not in str(exc.value)
