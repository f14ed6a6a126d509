"""Information matrices of the variance parameters at the REML estimates.

The average information AI = 1/2 y'P V_i P V_j P y comes with the fit.  The observed information
O = -d2 logL / d theta_i d theta_j is the derivative of the exact scores (from the selected
inverse), taken by central differences of those analytic scores: its error is of the order of the
step squared, 1e-8 of its entries with steps of 1e-4 of each parameter.  Where V is linear in the
parameters, O = 2 AI - E with E = 1/2 tr(P V_i P V_j) the expected information, so E comes
without the traces (which need all of C^-1, not only its selected entries).
"""
from __future__ import annotations

import numpy as np

from ..reml.problem import Evaluation, REMLProblem

__all__ = ["observed_information", "expected_information"]

STEP = 1e-4  # relative step of the central differences


def observed_information(problem: REMLProblem, ev: Evaluation, free: np.ndarray) -> np.ndarray:
    """-d2 logL / d theta d theta' over the working parameters marked ``free`` (k x k).

    Parameters
    ----------
    problem : REMLProblem
    ev : Evaluation
        The reported point (its factorisation is restored afterwards).
    free : ndarray of bool
        The estimated parameters (code P); the others stay at their values.
    """
    theta = ev.theta
    idx = np.flatnonzero(free)
    lower, upper = problem.params.lower, problem.params.upper
    O = np.zeros((idx.size, idx.size))
    for a, i in enumerate(idx):
        h = STEP * max(abs(theta[i]), 1e-6)
        up, down = theta.copy(), theta.copy()
        # a step stays inside the parameter space (halfway to a bound at most)
        up[i] = theta[i] + (h if not np.isfinite(upper[i]) else min(h, 0.5 * (upper[i] - theta[i])))
        down[i] = theta[i] - (h if not np.isfinite(lower[i]) else min(h, 0.5 * (theta[i] - lower[i])))
        s_up = problem.derivatives(problem.evaluate(up)).score[idx]
        s_down = problem.derivatives(problem.evaluate(down)).score[idx]
        O[:, a] = -(s_up - s_down) / (up[i] - down[i])
    problem.hold(ev)
    return 0.5 * (O + O.T)


def expected_information(problem: REMLProblem, ev: Evaluation, free: np.ndarray,
                         observed: np.ndarray | None = None) -> np.ndarray:
    """E = 1/2 tr(P V_i P V_j) = 2 AI - O over the ``free`` parameters, for V linear in them."""
    idx = np.flatnonzero(free)
    O = observed_information(problem, ev, free) if observed is None else observed
    return 2.0 * ev.ai[np.ix_(idx, idx)] - O
