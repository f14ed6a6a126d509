"""Observed and expected information of the variance parameters against the dense formulas
(linear V): O = -1/2 tr(P V_i P V_j) + y'P V_i P V_j P y, E = 1/2 tr(P V_i P V_j)."""
import numpy as np
import pytest

import sparsereml as sr
from sparsereml.inference.information import expected_information, observed_information

from ..reml.dense_reml import dense_V
from ..structures.test_residual_mme import field


@pytest.mark.parametrize("residual", [None, "~ at(trial):units"])
def test_information_matches_dense_formulas(residual, backend):
    df = field(trials=("A", "B", "C")).dropna()
    problem = sr.REMLProblem(sr.build_design(sr.model_spec("y ~ trial", "~ gen + trial:block", residual), df),
                             backend=backend)
    theta = sr.start_values(problem)[0] * np.linspace(0.8, 1.2, problem.params.n)
    ev = problem.derivatives(problem.evaluate(theta), scores=False)
    free = np.ones(theta.size, bool)
    O = observed_information(problem, ev, free)
    E = expected_information(problem, ev, free, O)
    V, Vdots, X = dense_V(problem, theta)
    Vi = np.linalg.inv(V)
    P = Vi - Vi @ X @ np.linalg.solve(X.T @ Vi @ X, X.T @ Vi)
    Py = P @ problem.y
    tr = np.array([[np.trace(P @ A @ P @ B) for B in Vdots] for A in Vdots])
    quad = np.array([[Py @ A @ P @ B @ Py for B in Vdots] for A in Vdots])
    # forward differences: errors of the order of the step (1e-6) times the largest entry
    np.testing.assert_allclose(E, 0.5 * tr, rtol=1e-5, atol=1e-6 * np.abs(tr).max())
    np.testing.assert_allclose(O, -0.5 * tr + quad, rtol=1e-5, atol=1e-8 * np.abs(quad).max())
    # the factor is back at the point it was given
    assert problem.evaluate(theta).loglik == pytest.approx(ev.loglik, rel=1e-14)
