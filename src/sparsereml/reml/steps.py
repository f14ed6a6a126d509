"""Step control of the AI-REML iterations: the AI-Newton step, and the search along it.

:func:`newton_step` solves the AI (or Newton) equations; :func:`try_step` evaluates one trial
point kept inside the bounds; :func:`search` tries the (damping, length) pairs of
``Control.step_control`` in turn and stretches a shortened step that worked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from ..errors import NotPositiveDefinite
from .bounds import Bounds
from .problem import Evaluation

__all__ = ["newton_step", "try_step", "search", "Accepted"]


class _Objective(Protocol):  # what the step control needs of a REMLProblem
    def move(self, theta: np.ndarray, step: np.ndarray) -> np.ndarray: ...
    def evaluate(self, theta: np.ndarray) -> Evaluation: ...


def newton_step(ev: Evaluation, free: np.ndarray, damping: float = 0.0) -> np.ndarray:
    """The AI-Newton step of the free parameters.

    Solves (H + damping diag(H)) step = score over the free parameters, where H is AI plus the
    second-derivative term of parameters that enter G nonlinearly (corh, us, fa) when that sum is
    positive definite, else AI.

    Parameters
    ----------
    ev : Evaluation
        With ``score``, ``ai`` (and optionally ``curvature``).
    free : ndarray of bool
        Parameters to move; the others get a zero step.
    damping : float
        Levenberg-Marquardt damping (0: the plain step).

    Returns
    -------
    ndarray
        The step, of the size of ``ev.theta``.
    """
    step = np.zeros_like(ev.theta)
    idx = np.flatnonzero(free)
    if idx.size == 0:
        return step
    A = ev.ai[np.ix_(idx, idx)]
    if ev.curvature is not None and np.any(ev.curvature):
        H = A + ev.curvature[np.ix_(idx, idx)]
        try:
            np.linalg.cholesky(H)
            A = H
        except np.linalg.LinAlgError:
            pass
    if damping:
        A = A + damping * np.diag(np.diag(A))
    g = ev.score[idx]
    try:
        step[idx] = np.linalg.solve(A, g)
    except np.linalg.LinAlgError:
        step[idx] = np.linalg.lstsq(A, g, rcond=None)[0]
    return step


def try_step(problem: _Objective, theta: np.ndarray, step: np.ndarray, codes: np.ndarray, free: np.ndarray,
             bounds: Bounds, floor: float) -> tuple[Evaluation | None, np.ndarray]:
    """Evaluate ``theta + step`` (moved by the structures, held inside the bounds).

    Returns
    -------
    evaluation : Evaluation or None
        The trial point's, if its logL is at least ``floor`` (less rounding), else None.
    codes : ndarray
        The trial point's codes (``B`` where a bound was hit), or ``codes`` itself when rejected.
    """
    try:
        trial = problem.move(theta, step)
    except NotPositiveDefinite:  # a covariance left the positive-definite cone
        return None, codes
    trial, hit = bounds.clip(trial, theta, free)
    new_codes = codes.copy()
    new_codes[hit] = "B"
    try:
        cand = problem.evaluate(trial)
    except NotPositiveDefinite:
        return None, codes
    if np.isfinite(cand.loglik) and cand.loglik >= floor - 1e-12 * max(1.0, abs(floor)):
        return cand, new_codes
    return None, codes


@dataclass
class Accepted:
    """A step the step control took: the new point's evaluation and codes, and its label
    (fraction of the AI step, and ``LM d`` for Levenberg-Marquardt damping d)."""

    evaluation: Evaluation
    codes: np.ndarray
    label: str


def search(problem: _Objective, ev: Evaluation, step: np.ndarray, codes: np.ndarray, free: np.ndarray,
           bounds: Bounds, step_control: Sequence[tuple[float, float]]) -> Accepted | None:
    """The first step of ``step_control`` that does not lower logL, stretched while it rises.

    Parameters
    ----------
    problem : REMLProblem
    ev : Evaluation
        The current point (theta, logL, scores and AI).
    step : ndarray
        Its AI-Newton step over ``free`` (:func:`newton_step`).
    codes, free : ndarray
        Its bound codes, and the parameters the step moves.
    bounds : Bounds
    step_control : sequence of (damping, length)
        Tried in turn: ``length`` times the step with that Levenberg-Marquardt damping.

    Returns
    -------
    Accepted or None
        None when no step kept logL from falling.
    """
    theta = ev.theta
    # the AI step, then shorter steps that also turn towards the score (Levenberg-Marquardt
    # damping): plain halving stalls where AI is a poor model, e.g. a us() covariance near
    # singularity
    for damping, lam in step_control:
        if damping:
            step = newton_step(ev, free, damping)
        cand, new_codes = try_step(problem, theta, lam * step, codes, free, bounds, ev.loglik)
        if cand is None:
            continue
        label = f"{lam:g}" if not damping else f"{lam:g} LM {damping:g}"
        # a shortened or damped step that worked: along a ridge AI steers well but steps too
        # short, so try twice, four and eight times as far while logL rises
        mult = 1.0
        while (damping or lam < 1.0) and mult < 8.0 and (new_codes == codes).all():
            longer, longer_codes = try_step(problem, theta, 2.0 * mult * lam * step, codes, free, bounds,
                                            cand.loglik + 1e-9 * max(1.0, abs(cand.loglik)))
            if longer is None or (longer_codes != codes).any():
                break  # (derivatives factorises the accepted point again: the factor holds the rejected one)
            mult *= 2.0
            cand, new_codes = longer, longer_codes
            label = f"{mult * lam:g}" + (f" LM {damping:g}" if damping else "")
        return Accepted(cand, new_codes, label)
    return None
