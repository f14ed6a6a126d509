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
    prob = REMLProblem(design, backend=backend)
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
    prob = REMLProblem(design, backend=backend)
    theta = np.linspace(0.5, 1.5, prob.params.n)
    ev = prob.derivatives(prob.evaluate(theta))
    h = 1e-6
    for i in range(prob.params.n):
        up, dn = theta.copy(), theta.copy()
        up[i] += h
        dn[i] -= h
        fd = (prob.evaluate(up).loglik - prob.evaluate(dn).loglik) / (2 * h)
        assert ev.score[i] == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_equations_are_formed_from_the_ols_residuals():
    """y less its OLS fit (reference: numpy's least squares on the dense X of the kept columns,
    aliased ones dropped) goes into the cross-products; the reported fixed effects get the OLS
    coefficients back (reference: the fit on y shifted by a multiple of a column of X, whose
    fixed effects move by exactly that)."""
    import warnings

    import sparsereml as sr
    from sparsereml.datasets import trial_network
    from sparsereml.errors import AliasWarning

    df = trial_network(seed=3, trials=5, trees=6000, mothers=60)[0]
    df["Site"] = df["Trial"]  # aliased with Trial: its columns are dropped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AliasWarning)
        m = sr.fit("dbh ~ Trial + Row + Site", "~ Trial:Block + Mother + Trial:Mother", data=df)
    fixed = m.problem.design.fixed
    X, y = fixed.X.toarray(), m.problem.design.y
    assert fixed.aliased and X.shape[1] == len(fixed.names)
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    np.testing.assert_allclose(fixed.ols, b, rtol=1e-9)
    np.testing.assert_allclose(m.problem.ols, b, rtol=1e-9)
    np.testing.assert_allclose(m.problem.y_centred, y - X @ b, atol=1e-9)
    shifted = sr.fit("dbh ~ Trial + Row", "~ Trial:Block + Mother + Trial:Mother",
                     data=df.assign(dbh=df["dbh"] + 0.5 * df["Row"]))
    plain = sr.fit("dbh ~ Trial + Row", "~ Trial:Block + Mother + Trial:Mother", data=df)
    assert shifted.loglik == pytest.approx(plain.loglik, abs=1e-8)
    est = shifted.fixed["estimate"] - plain.fixed["estimate"]
    np.testing.assert_allclose(est.to_numpy(), [0.0] * (len(est) - 1) + [0.5], atol=1e-8)
    np.testing.assert_allclose(shifted.fitted - plain.fitted, 0.5 * df["Row"], atol=1e-8)


def test_loglik_carries_little_rounding():
    """logL at points 1e-11 apart (relative) agrees to 1e-9 on 60,000 records: from y itself
    (dbh ~220) the cancellation in y'R^-1 y - s'r left ~5e-8 of rounding."""
    import sparsereml as sr
    from sparsereml.datasets import trial_network

    df = trial_network(seed=11, trials=31, trees=60000, mothers=400)[0]
    m = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", data=df)
    prob, theta = m.problem, m.result.evaluation.theta
    rng = np.random.default_rng(0)
    ll = [prob.evaluate(theta * (1 + 1e-11 * rng.standard_normal(theta.size))).loglik for _ in range(10)]
    assert np.ptp(ll) < 1e-9
