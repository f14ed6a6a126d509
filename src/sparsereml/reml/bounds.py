"""The parameter space of the AI-REML iterations, and ASReml's bound codes on it.

Codes: ``P`` positive (estimated), ``B`` held at the boundary (a variance that wanted to go
below zero, a correlation at +-1), ``F`` fixed by the user.  :class:`Bounds` says where each
parameter counts as "on its bound" and how a step is kept inside; :func:`update_codes` says
which parameters the next step moves.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .parameters import ParameterTable

__all__ = ["Bounds", "update_codes", "initial_codes"]


@dataclass(frozen=True)
class Bounds:
    """Bounds of the variance parameters, with the margins the iterations use.

    Attributes
    ----------
    lower, upper : ndarray
        Admissible range of each parameter (0 / inf for variances, -1 / 1 for correlations).
    eps : ndarray
        Distance from a bound that stands for "on the bound".
    floor : ndarray
        Magnitude below which a step is judged absolutely rather than relative to the parameter.
    is_var, is_cor : ndarray of bool
        Variances and correlations (the two kinds a step may overshoot in a special way).
    """

    lower: np.ndarray
    upper: np.ndarray
    eps: np.ndarray
    floor: np.ndarray
    is_var: np.ndarray
    is_cor: np.ndarray

    @classmethod
    def from_table(cls, params: ParameterTable, theta: np.ndarray, fixed: np.ndarray,
                   var_boundary: float = 1e-8, cor_boundary: float = 1e-6) -> "Bounds":
        """The bounds of ``params`` with margins scaled by the start ``theta``.

        Parameters
        ----------
        params : ParameterTable
            Kinds ('var', 'cor', 'cov', 'load', 'chol') and admissible ranges.
        theta : ndarray
            Start values; the free variances' largest magnitude sets the scale.
        fixed : ndarray of bool
            Parameters held by the user (not part of the scale).
        var_boundary, cor_boundary : float
            A variance within ``var_boundary`` times the scale of zero, a correlation within
            ``cor_boundary`` of +-1, is on its bound (``Control``'s fields of the same names).
        """
        theta = np.asarray(theta, dtype=float)
        n = theta.size
        kinds = list(params.kinds)
        is_var = np.array([k == "var" for k in kinds], dtype=bool)
        is_cor = np.array([k == "cor" for k in kinds], dtype=bool)
        var_free = is_var & ~np.asarray(fixed, dtype=bool)
        scale = float(np.max(np.abs(theta[var_free]))) if var_free.any() else 1.0
        # on the bound: a variance within var_boundary of the variances' scale of zero (much
        # smaller ones make Sigma^-1 of an fa() model too ill-conditioned to work with), a
        # correlation within cor_boundary of +-1; a Cholesky diagonal of a us() Sigma is held at 1e-3 sqrt(scale) (Sigma^-1 stays
        # usable), judged against its own start too, so that traits on very different scales (dbh
        # in mm, height in km) each keep a sensible "zero"
        chol = 1e-3 * np.maximum(np.abs(theta), np.sqrt(scale))
        kind_eps = {"var": np.full(n, var_boundary * scale), "cor": np.full(n, cor_boundary), "cov": np.zeros(n),
                    "load": np.zeros(n), "chol": chol}
        # below these magnitudes steps are judged absolutely (a loading or covariance may be ~0)
        kind_floor = {"var": kind_eps["var"], "cor": np.full(n, 1e-4), "cov": np.full(n, 1e-4 * scale),
                      "load": np.full(n, 1e-4), "chol": chol}
        eps = np.array([kind_eps[k][i] for i, k in enumerate(kinds)], dtype=float)
        floor = np.array([kind_floor[k][i] for i, k in enumerate(kinds)], dtype=float)
        return cls(np.asarray(params.lower, dtype=float), np.asarray(params.upper, dtype=float),
                   eps, floor, is_var, is_cor)

    def at_lower(self, theta: np.ndarray) -> np.ndarray:
        """Parameters on (or below) their lower bound."""
        return theta <= self.lower + self.eps

    def relative(self, step: np.ndarray, theta: np.ndarray, free: np.ndarray) -> np.ndarray:
        """|step| of the free parameters relative to |theta|, or to the floor where theta is smaller."""
        return np.abs(step[free]) / np.maximum(np.abs(theta[free]), self.floor[free])

    def clip(self, trial: np.ndarray, theta: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bring a trial point ``trial`` (reached from ``theta``) back inside the bounds.

        Parameters
        ----------
        trial, theta : ndarray
            The point a step reached, and the point it started from.
        free : ndarray of bool
            Parameters the step moved (only these are moved back).

        Returns
        -------
        trial : ndarray
            A new array inside the bounds.
        hit : ndarray of bool
            Free parameters left on a bound (they get code ``B``).
        """
        lower, upper, eps = self.lower, self.upper, self.eps
        trial = np.array(trial, dtype=float)
        # a correlation stepping past +-1 goes halfway there instead: at +-1 the model is
        # degenerate, and from a poor start the AI step often overshoots
        past = self.is_cor & free & ((trial < lower + eps) | (trial > upper - eps))
        trial[past] = 0.5 * (theta[past] + np.where(trial[past] < theta[past], lower[past], upper[past]))
        # a variance stepping below zero from well above it drops to a hundredth instead of being
        # held at the bound at once: from a poor start the first AI steps overshoot (a nugget and a
        # spatial variance trading places), and a variance held at zero takes its correlations along
        shrink = self.is_var & free & (trial < lower + eps) & (theta > 1e4 * (lower + eps))
        trial[shrink] = lower[shrink] + 0.01 * (theta[shrink] - lower[shrink])
        low_hit = free & (trial < lower + eps)
        high_hit = free & (trial > upper - eps)
        trial = np.where(low_hit, lower + eps, np.where(high_hit, upper - eps, trial))
        return trial, low_hit | high_hit


def initial_codes(fixed: np.ndarray) -> np.ndarray:
    """Codes at the start: ``F`` where fixed, else ``P`` (an object array, as the iterations keep)."""
    return np.where(np.asarray(fixed, dtype=bool), "F", "P").astype(object)


def update_codes(codes: np.ndarray, held: np.ndarray, theta: np.ndarray, score: np.ndarray,
                 bounds: Bounds, scale_of: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bound codes for the next step.

    A ``B`` parameter whose score points into the parameter space is released (``P``); a
    residual group's correlations are held (``B``) exactly while the variance that scales them
    is held, and released with it.

    Parameters
    ----------
    codes : ndarray of str (object)
        Current codes ``P``, ``B`` or ``F``.
    held : ndarray of bool
        Correlations currently held because their variance is held.
    theta, score : ndarray
        Current parameters and scores.
    bounds : Bounds
    scale_of : ndarray of int or None
        Index of the variance that scales each parameter, -1 for none (``ParameterTable.scale_of``).

    Returns
    -------
    codes, held : ndarray
        New arrays (the inputs are not changed).
    free : ndarray of bool
        Parameters the next step moves (code ``P``).
    """
    codes, held = codes.copy(), held.copy()
    at_lower = bounds.at_lower(theta)
    release = (codes == "B") & ~held & np.where(at_lower, score > 0, score < 0)  # score points inside
    codes[release] = "P"
    # a residual group's correlations mean nothing while its variance is held at zero
    dep = scale_of >= 0 if scale_of is not None else np.zeros(theta.size, dtype=bool)
    now = dep & (codes[np.maximum(scale_of, 0)] == "B") if dep.any() else held
    codes[held & ~now] = "P"
    codes[now] = "B"
    return codes, now, codes == "P"
