"""REMLProblem.reweight: record weights and a new response formed again on the analysed factor.

References: the dense textbook REML formulas with R = D^-1/2 R0 D^-1/2 (tests/reml/dense_reml.py),
a problem built afresh from the changed data, and lme4 (tests/reference/weighted_lmm.R)."""
import numpy as np
import pytest

import sparsereml as sr
from sparsereml.errors import ModelError

from ..conftest import refdata
from ..structures.test_residual_mme import field
from .dense_reml import dense_generic

CASES = {
    "one residual variance": ("y ~ trial", "~ gen + trial:block", None),
    "per trial": ("y ~ trial", "~ gen", "~ at(trial):units"),
    "ar1 x ar1 per trial": ("y ~ trial", "~ gen", "~ at(trial):ar1(row):ar1(col)"),
}


def _problem(fixed, random, residual, df, backend):
    design = sr.build_design(sr.model_spec(fixed, random, residual), df)
    return sr.REMLProblem(design, backend=backend)


def _theta(prob):
    th = sr.start_values(prob)[0]
    return np.where(np.array(prob.params.kinds) == "cor", 0.3, th) * np.linspace(0.9, 1.1, th.size)


@pytest.mark.parametrize("case", list(CASES))
def test_weighted_equations_match_dense_formulas(case, backend):
    prob = _problem(*CASES[case], field().dropna(), backend)
    rng = np.random.default_rng(1)
    w = rng.uniform(0.3, 3.0, prob.n)
    y2 = prob.y + rng.normal(0, 1, prob.n)
    theta = _theta(prob)
    prob.reweight(w, y2)
    ev = prob.derivatives(prob.evaluate(theta))
    ll, score, ai = dense_generic(prob, theta, weights=w, y=y2)
    assert ev.loglik == pytest.approx(ll, rel=1e-10)
    np.testing.assert_allclose(ev.score, score, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(ev.ai, ai, rtol=1e-7, atol=1e-8)


def test_new_response_equals_a_problem_built_afresh(backend):
    df = field().dropna()
    fixed, random, residual = CASES["per trial"]
    prob = _problem(fixed, random, residual, df, backend)
    factor = prob.factor
    y2 = df["y"].to_numpy() * 1.3 + np.arange(len(df)) % 4
    fresh = _problem(fixed, random, residual, df.assign(y=y2), backend)
    theta = _theta(fresh)
    prob.reweight(y=y2)
    a, b = prob.derivatives(prob.evaluate(theta)), fresh.derivatives(fresh.evaluate(theta))
    assert prob.factor is factor  # the symbolic analysis is kept
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
    np.testing.assert_allclose(prob.uncentred(a.solution), fresh.uncentred(b.solution), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.score, b.score, rtol=1e-8, atol=1e-9)
    # unit weights are no weights; weights are given anew at each call, not accumulated
    prob.reweight(np.full(prob.n, 2.0))
    prob.reweight(np.ones(prob.n))
    assert prob.evaluate(theta).loglik == pytest.approx(b.loglik, rel=1e-12)


def test_bad_weights_and_responses_are_refused_and_keep_the_problem(backend):
    prob = _problem(*CASES["one residual variance"], field().dropna(), backend)
    theta = _theta(prob)
    before = prob.evaluate(theta).loglik
    w = np.ones(prob.n)
    for bad, words in ((w[:-1], "one value per record"), (np.where(np.arange(prob.n) == 3, 0.0, w), "record 3"),
                       (np.where(np.arange(prob.n) == 5, -1.0, w), "positive"), ("heavy", "numbers")):
        with pytest.raises(ModelError, match=words):
            prob.reweight(bad)
    with pytest.raises(ModelError, match="y must be finite: record 2"):
        prob.reweight(y=np.where(np.arange(prob.n) == 2, np.nan, prob.y))
    assert prob.evaluate(theta).loglik == before


@pytest.mark.parametrize("case", ["case1_weighted", "case2_weighted_y2"])
def test_weighted_fit_matches_lme4(case, backend):
    """lme4 1.1 lmer(yield ~ rep + (1|rep:block) + (1|gen), weights = w, REML = TRUE) on
    agridat's john.alpha (tests/reference/weighted_lmm.R): record i's residual variance is
    sigma^2 / w_i, w_i = 1 + ((i - 1) mod 3) / 2; case 2's response is yield + 0.3 ((i - 1) mod 5)."""
    from ..conftest import reference

    ref = reference("weighted_lmm.json")[case]
    df = refdata("agridat_john.alpha.csv")
    i = np.arange(len(df))
    w = 1.0 + (i % 3) / 2.0
    y = df["yield"].to_numpy() + (0.3 * (i % 5) if case == "case2_weighted_y2" else 0.0)
    control = sr.Control(backend=backend, tol=1e-9)
    problem = sr.REMLProblem(sr.build_design(sr.model_spec("yield ~ rep", "~ rep:block + gen"), df), control)
    problem.reweight(w, y)
    m = sr.FittedModel(problem, sr.ai_reml(problem, *sr.start_values(problem)))
    assert m.converged
    assert m.loglik == pytest.approx(ref["logLik_REML"], abs=1e-7)
    vc = m.varcomp["component"]
    for ours, theirs in (("rep:block", "rep:block"), ("gen", "gen"), ("units", "Residual")):
        assert vc[ours] == pytest.approx(ref["varcomp"][theirs], rel=1e-5)
    fx = m.fixed
    np.testing.assert_allclose(fx["estimate"].to_numpy(), list(ref["fixef"].values()), rtol=1e-6)
    np.testing.assert_allclose(fx["std.error"].to_numpy(), list(ref["fixef_se"].values()), rtol=1e-5)
