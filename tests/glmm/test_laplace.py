"""The Laplace likelihood's exact gradient against central differences of the likelihood itself,
for the structures a GLMM can carry (identity, at(), diag(), us(), vm()); and the mode."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.glmm.laplace import LaplaceProblem
from tests.conftest import REFERENCE

PROGENY = pd.read_csv(REFERENCE / "glmm_progeny.csv")


def _problem(random: str, family, backend, data=PROGENY, matrices=None):
    m = sr.fit("surv ~ Trial", random, data=data, family=family, backend=backend, matrices=matrices)
    lp = LaplaceProblem(m.design, m.family, m.counts, m.trials, m.offset, m.control)
    return m, lp


def _laplace_problem(random: str, family, backend) -> LaplaceProblem:
    spec = sr.model_spec("surv ~ Trial", random)
    design = sr.build_design(spec, PROGENY)
    return LaplaceProblem(design, family, design.y, np.ones(design.n), np.zeros(design.n),
                          sr.Control(backend=backend or "auto"))


# an interior point of each structure's parameters (us(): a Cholesky factor with 0.1 off the diagonal)
POINTS = {"~ Trial:Block + Mother": [0.2, 0.3], "~ at(Trial):Block + Mother": [0.1, 0.2, 0.15, 0.3, 0.25],
          "~ Trial:Block + diag(Trial):Mother": [0.2, 0.1, 0.3, 0.2, 0.25],
          "~ Trial:Block + us(Trial):Mother": [0.2, 0.5, 0.1, 0.45, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1, 0.35]}


@pytest.mark.parametrize("random", list(POINTS))
@pytest.mark.parametrize("link", ["logit", "probit"])
def test_gradient_equals_differences_of_the_likelihood(random, link, backend):
    lp = _laplace_problem(random, sr.glmm.Binomial(link), backend)
    theta = np.array(POINTS[random])
    beta = np.array([0.4, 0.3, 0.4, 1.0])
    mode = lp.mode(theta, beta)
    g_theta, g_beta, _ = lp.gradient(mode)
    x = np.concatenate([theta, beta])
    num = np.empty(x.size)
    for j in range(x.size):
        h = 1e-5 * max(abs(x[j]), 0.1)
        up, down = x.copy(), x.copy()
        up[j] += h
        down[j] -= h
        num[j] = (lp.mode(up[:lp.k], up[lp.k:], mode.u).loglik - lp.mode(down[:lp.k], down[lp.k:], mode.u).loglik) / (2 * h)
    np.testing.assert_allclose(np.concatenate([g_theta, g_beta]), num, rtol=2e-4, atol=2e-5)


def test_mode_is_stationary(backend):
    m, lp = _problem("~ Trial:Block + Mother", sr.glmm.Binomial("probit"), backend)
    mode = lp.mode(m.theta_working[:lp.k], m.fixed["estimate"].to_numpy())
    # Z's = G^-1 u at the mode: the penalised log-likelihood's gradient in u vanishes
    ginv_u = mode.u / np.repeat(mode.theta, [24, 60])
    np.testing.assert_allclose(lp.Z.T @ mode.d.score, ginv_u, atol=1e-6)
    np.testing.assert_allclose(mode.u, m.solution[m.rank:], atol=1e-6)


def test_structured_fits_converge_and_nest(backend):
    # the nested models' logL order; us(Trial):Mother on these data (one Mother effect in truth:
    # correlations of one) ends on the boundary, some Cholesky diagonals held (B), as AI-REML does
    base = sr.fit("surv ~ Trial", "~ Trial:Block + Mother", data=PROGENY, family="binomial", backend=backend)
    at = sr.fit("surv ~ Trial", "~ at(Trial):Block + Mother", data=PROGENY, family="binomial", backend=backend)
    assert at.converged and at.loglik >= base.loglik - 1e-6
    assert len(at.varcomp) == 5
    diag = sr.fit("surv ~ Trial", "~ Trial:Block + diag(Trial):Mother", data=PROGENY, family="binomial",
                  backend=backend)
    assert diag.converged and len(diag.varcomp) == 5


def test_covariance_on_its_boundary_is_held_or_refused_with_the_reason(backend):
    # one Mother effect in truth: us(Trial):Mother's correlations go to one, fa(Trial, 1)'s
    # specific variances to zero.  Either the fit ends there with parameters held (B), or it is
    # refused naming the structure (which happens depends on the steps' rounding: thread counts)
    for random in ("~ Trial:Block + us(Trial):Mother", "~ Trial:Block + fa(Trial, 1):Mother"):
        try:
            m = sr.fit("surv ~ Trial", random, data=PROGENY, family="binomial", backend=backend)
        except sr.ModelError as exc:
            assert "reached the boundary of" in str(exc) and "Mother" in str(exc) and "fit a simpler structure" in str(exc)
        else:
            assert m.converged and "B" in set(m.varcomp["bound"])
