"""When the AI-REML iterations stop (the rule is set out in :mod:`sparsereml.reml.optimizer`).

:meth:`StopRule.assess` turns one iterate's AI-Newton step, scores and log-likelihood history
into an :class:`Assessment`: pure arithmetic on arrays, so it can be checked with made-up numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["StopRule", "Assessment", "CONVERGE", "LAST_STEP", "STALLED", "CONTINUE", "NO_STEP"]

CONVERGE, LAST_STEP, STALLED, CONTINUE = "converge", "last step", "stalled", "continue"
NO_STEP = "no step"  # the end when no step of the step control kept logL from falling


@dataclass(frozen=True)
class Assessment:
    """What one iterate's AI-Newton step says about convergence.

    Attributes
    ----------
    rel_max : float
        Largest step of a free parameter relative to the parameter (0 when none is free).
    gain : float
        Log-likelihood the step is expected to gain, score' step / 2 (the Newton decrement).
    small : bool
        ``rel_max < tol``.
    flat : bool
        ``gain`` below ``tol_loglik`` or the rounding of logL (1e-12 |logL|).
    stalled : bool
        Flat, and logL rose less than that tolerance over the last ``window`` iterations.
    rho : float
        Contraction: ``rel_max`` over the previous full step's (inf when unknown).
    """

    rel_max: float
    gain: float
    small: bool
    flat: bool
    stalled: bool
    rho: float
    tol: float
    tol_loglik: float
    window: int
    n_free: int

    @property
    def converged(self) -> bool:
        """Small and flat: the iterate is the answer."""
        return self.small and self.flat

    @property
    def last_step(self) -> bool:
        """The step after this one is predicted below ``tol`` (steps shrinking by rho < 1/2)."""
        return self.flat and self.rho < 0.5 and self.rho * self.rel_max < self.tol

    @property
    def action(self) -> str:
        """:data:`CONVERGE`, :data:`LAST_STEP` (take this step and stop; should it fail, go on as
        ``STALLED if stalled else CONTINUE``), :data:`STALLED` (stop: converged in logL) or
        :data:`CONTINUE`."""
        if self.converged:
            return CONVERGE
        if self.last_step:
            return LAST_STEP
        return STALLED if self.stalled else CONTINUE

    def deciding(self, rough_above: float) -> bool:
        """Whether this iterate may stop the iterations, or its step is below ``rough_above``:
        then the scores it came from must be exact."""
        return self.converged or self.stalled or self.last_step or self.rel_max < rough_above

    def expected_next(self) -> float:
        """The next step's expected size: this one times the square of the last contraction (once
        the start's nonlinearity fades the steps shrink abruptly to AI's own rate; a linear
        prediction missed by far, and each miss costs an exact repeat)."""
        return self.rel_max * (min(self.rho, 1.0) ** 2 if np.isfinite(self.rho) else 1.0)

    def contraction_base(self, full_step: bool) -> float | None:
        """The ``prev_rel`` of the next assessment: this step's size if it was a full AI step that
        kept the bound codes (the contraction rate is read only from those), else None."""
        return self.rel_max if (full_step and self.n_free) else None

    @property
    def at_rounding(self) -> bool:
        """When no step raised logL: are gain and steps small enough that this is the optimum to
        within the rounding of logL?"""
        return self.gain < 1e-3 and self.rel_max < 1e-3

    def message(self, action: str) -> str:
        """The ``OptimResult.message`` of stopping by ``action`` (a converging one, or :data:`NO_STEP`
        when the end is at the rounding level, see :attr:`at_rounding`)."""
        if action == CONVERGE:
            return (f"converged: AI-Newton steps below {self.tol:g} of each parameter and expected "
                    f"logL gain {self.gain:.2g}")
        if action == LAST_STEP:
            return (f"converged: AI-Newton steps shrank by {self.rho:.2g} per iteration; after the last "
                    f"({self.rel_max:.1g} of a parameter) the next is below {self.tol:g} of each parameter")
        if action == STALLED:
            return (f"converged in logL: it rose less than {self.tol_loglik:g} over {self.window} iterations, "
                    f"but steps still reach {self.rel_max:.1g} of a parameter (poorly determined; see std.error)")
        if action == NO_STEP:
            return (f"converged: no step raised logL beyond rounding (expected gain {self.gain:.2g}, steps "
                    f"below {self.rel_max:.1g} of each parameter)")
        raise ValueError(f"no message for action {action!r}")


@dataclass(frozen=True)
class StopRule:
    """The tolerances of the stopping rule.

    Parameters
    ----------
    tol : float
        Largest relative step of a converged iterate.
    tol_loglik : float
        Largest expected gain of logL of a converged iterate (or 1e-12 |logL|, whichever is larger).
    window : int
        Iterations over which a flat likelihood must rise by ``tol_loglik`` not to have stalled.
    """

    tol: float
    tol_loglik: float
    window: int

    def assess(self, rel: np.ndarray, step: np.ndarray, score: np.ndarray, loglik: float,
               logliks: Sequence[float], prev_rel: float | None) -> Assessment:
        """Assess one iterate.

        Parameters
        ----------
        rel : ndarray
            Relative steps of the free parameters (``Bounds.relative``).
        step, score : ndarray
            AI-Newton step and scores of the free parameters.
        loglik : float
            Log-likelihood of the iterate.
        logliks : sequence of float
            Log-likelihoods of the iterates so far, this one last (the history).
        prev_rel : float or None
            Largest relative step of the previous full AI step (None: unknown).

        Returns
        -------
        Assessment
        """
        rel_max = float(rel.max()) if rel.size else 0.0
        gain = 0.5 * float(step @ score)
        level = max(self.tol_loglik, 1e-12 * abs(loglik))
        flat = gain < level
        # stalled: flat, and logL rose less than the tolerance over the last iterations, so steps
        # wander along a ridge (e.g. a nearly singular us()); a slow but genuine approach to a
        # boundary keeps realising its predicted gains and goes on
        stalled = flat and len(logliks) > self.window and loglik - logliks[-1 - self.window] < level
        rho = rel_max / prev_rel if (prev_rel and rel.size) else np.inf
        return Assessment(rel_max, gain, rel_max < self.tol, flat, bool(stalled), rho, self.tol,
                          self.tol_loglik, self.window, int(rel.size))
