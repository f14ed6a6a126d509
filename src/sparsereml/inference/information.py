"""Information matrices of the variance parameters at the REML estimates.

The average information AI = 1/2 y'P V_i P V_j P y comes with the fit.  The observed information
O = -d2 logL / d theta_i d theta_j is the derivative of the exact scores (from the selected
inverse), taken by forward differences of those analytic scores with steps of 1e-6 of each
parameter: the truncation error is of the order of the step (1e-6 of O's entries) and the scores'
rounding, divided by the step, stays below it (they are exact to about 1e-13 of their terms).
It costs one factorisation and selected inverse per parameter, plus one at the estimates.  Where V is linear in the
parameters, O = 2 AI - E with E = 1/2 tr(P V_i P V_j) the expected information (where they enter
it nonlinearly, O also has the curvature term K that the AI-REML step uses), so E comes without
the traces (which need all of C^-1, not only its selected entries).
"""
from __future__ import annotations

import numpy as np

from ..reml.problem import Evaluation, REMLProblem

__all__ = ["observed_information", "expected_information"]

STEP = 1e-6  # relative step of the forward differences


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
    upper = problem.params.upper
    # the scores at the estimates from the fit's own evaluation (its selected inverse is then
    # kept for PEVs); exact even if the last iteration's were rough
    if ev.score is None or ev.rough:
        ev.score, ev.rough = None, False
        problem.derivatives(ev, ai=False)
    base = ev.score[idx].copy()
    O = np.zeros((idx.size, idx.size))
    for a, i in enumerate(idx):
        h = STEP * max(abs(theta[i]), 1e-6)
        if np.isfinite(upper[i]) and theta[i] + h > upper[i]:  # a correlation next to its bound
            h = -h
        moved = theta.copy()
        moved[i] += h
        O[:, a] = -(problem.derivatives(problem.evaluate(moved), ai=False).score[idx] - base) / h
    problem.hold(ev)
    return 0.5 * (O + O.T)


def expected_information(problem: REMLProblem, ev: Evaluation, free: np.ndarray,
                         observed: np.ndarray | None = None) -> np.ndarray:
    """E = 1/2 tr(P V_i P V_j) = 2 AI + K - O over the ``free`` parameters, K the part of
    -d2logL that parameters entering V nonlinearly add (``ev.curvature``, zero for linear ones)."""
    idx = np.flatnonzero(free)
    O = observed_information(problem, ev, free) if observed is None else observed
    curv = ev.curvature[np.ix_(idx, idx)] if ev.curvature is not None else 0.0
    return 2.0 * ev.ai[np.ix_(idx, idx)] + curv - O
