"""AI-REML iterations with step control and ASReml's parameter codes.

Codes: ``P`` positive (estimated), ``B`` held at the boundary (a variance that
wanted to go below zero), ``F`` fixed by the user.

Convergence rule (reported in ``OptimResult.message``): stop at the first
iterate where, for every ``P`` parameter, the AI-Newton step is smaller than
``tol`` times the parameter (``tol=1e-6`` by default), the log-likelihood the
next step would gain (score' step / 2, the Newton decrement) is below
``tol_loglik`` (1e-6) or 1e-12 |logL| (the rounding level of logL on very large
data sets), and every ``B`` parameter's score points outside the parameter
space (or it is released).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .problem import Evaluation, REMLProblem

__all__ = ["ai_reml", "OptimResult"]


@dataclass
class OptimResult:
    theta: np.ndarray
    codes: list
    evaluation: Evaluation
    converged: bool
    message: str
    history: list = field(default_factory=list)
    previous_theta: np.ndarray | None = None

    @property
    def iterations(self) -> int:
        return len(self.history)


def _newton_step(ev: Evaluation, free: np.ndarray) -> np.ndarray:
    step = np.zeros_like(ev.theta)
    idx = np.flatnonzero(free)
    if idx.size == 0:
        return step
    A = ev.ai[np.ix_(idx, idx)]
    g = ev.score[idx]
    try:
        step[idx] = np.linalg.solve(A, g)
    except np.linalg.LinAlgError:
        step[idx] = np.linalg.lstsq(A, g, rcond=None)[0]
    return step


def ai_reml(problem: REMLProblem, start: np.ndarray, fixed: np.ndarray | None = None, *,
            max_iter: int = 50, tol: float = 1e-6, tol_loglik: float = 1e-6,
            callback=None) -> OptimResult:
    """Maximise the REML log-likelihood by average-information Newton steps.

    Parameters
    ----------
    problem : REMLProblem
    start : ndarray
        Starting values (positive for variances).
    fixed : ndarray of bool, optional
        Parameters held at their start value (code ``F``).
    max_iter : int
    tol, tol_loglik : float
        See the module docstring for the rule.
    callback : callable, optional
        Called with the history row (a dict) after every iteration.
    """
    theta = np.asarray(start, dtype=float).copy()
    fixed = np.zeros(theta.size, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    codes = np.where(fixed, "F", "P").astype(object)
    scale = float(np.max(np.abs(theta[~fixed]))) if (~fixed).any() else 1.0
    eps = 1e-8 * scale  # value that stands for a variance held at zero
    lower = problem.params.lower
    t0 = time.perf_counter()
    ev = problem.derivatives(problem.evaluate(theta))
    history = [_row(0, ev, codes, time.perf_counter() - t0, problem.params.labels)]
    if callback:
        callback(history[-1])
    prev_theta = None
    converged, message = False, f"stopped after {max_iter} iterations without meeting the convergence rule"
    for it in range(1, max_iter + 1):
        release = (codes == "B") & (ev.score > 0)
        codes[release] = "P"
        free = codes == "P"
        step = _newton_step(ev, free)
        rel = np.abs(step[free]) / np.maximum(np.abs(theta[free]), eps)
        small = rel.size == 0 or rel.max() < tol
        gain = 0.5 * float(step[free] @ ev.score[free])
        if small and gain < max(tol_loglik, 1e-12 * abs(ev.loglik)):
            converged = True
            message = (f"converged: AI-Newton steps below {tol:g} of each parameter and expected "
                       f"logL gain {gain:.2g}")
            break
        t_it = time.perf_counter()
        lam, new_ev, new_codes = 1.0, None, codes.copy()
        for _ in range(12):
            trial = theta + lam * step
            new_codes = codes.copy()
            hit = free & (trial < lower + eps)
            trial[hit] = lower[hit] + eps
            new_codes[hit] = "B"
            cand = problem.evaluate(trial)
            if np.isfinite(cand.loglik) and cand.loglik >= ev.loglik - 1e-10 * max(1.0, abs(ev.loglik)):
                new_ev = cand
                break
            lam *= 0.5
        if new_ev is None:
            message = f"stopped at iteration {it}: no step increased the log-likelihood"
            break
        prev_theta = theta
        theta, codes = new_ev.theta, new_codes
        ev = problem.derivatives(new_ev)
        history.append(_row(it, ev, codes, time.perf_counter() - t_it, problem.params.labels))
        if callback:
            callback(history[-1])
    return OptimResult(theta, list(codes), ev, converged, message, history, prev_theta)


def _row(it: int, ev: Evaluation, codes, seconds: float, labels: list) -> dict:
    row = {"iteration": it, "loglik": ev.loglik, "seconds": seconds}
    row.update({lab: float(v) for lab, v in zip(labels, ev.theta)})
    row["bounds"] = "".join(codes)
    return row
