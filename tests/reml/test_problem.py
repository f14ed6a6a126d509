"""The MME-space log-likelihood, scores and average information against the textbook dense
formulas (tests/reml/dense_reml.py) at parameters away from the optimum."""
import numpy as np
import pandas as pd
import pytest

from sparsereml.design import build_design
from sparsereml.formula import model_spec
from sparsereml.reml.problem import REMLProblem

from .dense_reml import dense_derivatives, dense_loglik


def _data(seed=3, n=90):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"site": rng.choice(["s1", "s2", "s3"], n), "blk": rng.integers(1, 5, n),
                       "fam": rng.integers(1, 12, n), "x": rng.normal(size=n)})
    df["y"] = 10 + 2 * df.x + rng.normal(size=n) + rng.normal(size=12)[df.fam] + (df.site == "s2") * 1.5
    return df


CASES = [
    ("y ~ site + x", "~ site:blk + fam", None),
    ("y ~ x", "~ at(site):blk + fam + site:fam", "~ at(site):units"),
    ("y ~ site", "~ at(site, 's1', 3):fam", "~ at(site):units"),
]


@pytest.mark.parametrize("fixed,random,residual", CASES)
def test_loglik_scores_ai_match_dense_formulas(fixed, random, residual, backend):
    design = build_design(model_spec(fixed, random, residual), _data())
    prob = REMLProblem(design, backend)
    rng = np.random.default_rng(1)
    for _ in range(2):
        theta = rng.uniform(0.3, 2.5, prob.params.n)
        ev = prob.derivatives(prob.evaluate(theta))
        ll, _ = dense_loglik(design, theta)
        score, ai = dense_derivatives(design, theta)
        assert ev.loglik == pytest.approx(ll, rel=1e-10)
        np.testing.assert_allclose(ev.score, score, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(ev.ai, ai, rtol=1e-8, atol=1e-10)


def test_scores_are_the_gradient_of_the_loglik(backend):
    design = build_design(model_spec(*CASES[1]), _data(5))
    prob = REMLProblem(design, backend)
    theta = np.linspace(0.5, 1.5, prob.params.n)
    ev = prob.derivatives(prob.evaluate(theta))
    h = 1e-6
    for i in range(prob.params.n):
        up, dn = theta.copy(), theta.copy()
        up[i] += h
        dn[i] -= h
        fd = (prob.evaluate(up).loglik - prob.evaluate(dn).loglik) / (2 * h)
        assert ev.score[i] == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_start_values_read_xtx_from_the_cross_products():
    """X'X for the OLS start is the fixed block of W'W (reference: X'X formed from X itself)."""
    import sparsereml as sr
    from sparsereml.datasets import trial_network
    from sparsereml.reml.start import _fixed_block

    df = trial_network(seed=3, trials=5, trees=6000, mothers=60)[0]
    for fixed in ("dbh ~ Trial", "dbh ~ Trial + Row"):
        m = sr.fit(fixed, "~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units", data=df)
        X = m._problem.design.fixed.X
        np.testing.assert_allclose(_fixed_block(m._problem.cp, X.shape[1]), (X.T @ X).toarray(), rtol=1e-12)
