"""exp(F): the one-dimensional isotropic exponential covariance across a numeric factor.

    Sigma_ij = s2 * phi^|x_i - x_j|

with x_i the numeric value of level i (ASReml's exp(); unlike ar1 the distances need not be
equal), parameters ``var`` (s2 > 0) and ``cor`` (phi, the correlation per unit distance, in
(0, 1)).  glmmTMB's ``exp(pos + 0 | g)`` is the same model with phi = exp(-1 / theta).

Written in a random term as ``exp(Year):Mother`` or ``exp(Pos):Site``; in a residual grid as
a dimension, e.g. ``~ Site:exp(Pos)``.  Levels that are not numbers are refused.

This file is all the model needed: it registers itself by name
(:func:`sparsereml.registry.register_cov_model`), and the formula parser, the design, the REML
stage and the results find it there; ``sparsereml.structures`` imports every module of its
package.  Its tests: tests/structures/test_exp_cov.py.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..registry import register_cov_model
from .covariance import VarCor

__all__ = ["ExpCov"]


def _numbers(levels) -> np.ndarray | None:
    try:
        x = np.array([float(lv) for lv in levels])
    except (TypeError, ValueError):
        return None
    return x if np.all(np.isfinite(x)) else None


@register_cov_model
class ExpCov(VarCor):
    """s2 phi^|x_i - x_j| between levels with numeric values x (exponential, one dimension)."""

    name = "exp"

    def __init__(self, levels):
        super().__init__(levels)
        x = _numbers(self.levels)
        if x is None:
            raise ModelError(f"exp() needs levels that are numbers, got {self.levels[:5]}")
        self.x = x
        self._dist = np.abs(x[:, None] - x[None, :])

    @classmethod
    def check_levels(cls, args, levels, where, column):
        x = _numbers(levels)
        if x is None:
            bad = next(str(lv) for lv in levels if _numbers([lv]) is None)
            raise ModelError(f"{where}: exp({column}) needs a numeric column: the levels of {column!r} are "
                             f"distances along a line, but {bad!r} is not a number")
        if np.unique(x).size < x.size:
            raise ModelError(f"{where}: exp({column}): two levels of {column!r} have the same value")

    def bounds(self):
        return np.array([0.0, 0.0]), np.array([np.inf, 1.0])

    def sigma(self, theta):
        v, phi = theta
        return v * phi ** self._dist

    def _dphi(self, phi: float, power: float) -> np.ndarray:
        """D (D - 1) ... phi^(D - power) on the pairs at distance D > 0 (0 on the diagonal)."""
        D = self._dist
        off = D > 0
        out = np.zeros_like(D)
        with np.errstate(divide="ignore", invalid="ignore"):
            coef = D if power == 1 else D * (D - 1.0)
            out[off] = coef[off] * phi ** (D[off] - power)
        return out

    def dsigma(self, theta):
        v, phi = theta
        return np.stack([phi ** self._dist, v * self._dphi(phi, 1)])

    def d2sigma(self, theta):
        v, phi = theta
        return [(0, 1, self._dphi(phi, 1)), (1, 1, v * self._dphi(phi, 2))]

    def start(self, S):
        """var: the mean variance; phi: the geometric mean over pairs of R_ij^(1 / d_ij) (pairs with
        a positive correlation), kept so that the correlation at the shortest distance lies in
        [0.05, 0.9]."""
        R = self._corr(S)
        off = self._dist > 0
        r, d = R[off], self._dist[off]
        pos = r > 0
        phi = float(np.exp(np.mean(np.log(r[pos]) / d[pos]))) if pos.any() else 0.5
        dmin = float(d.min()) if d.size else 1.0
        phi = float(np.clip(phi, 0.05 ** (1.0 / dmin), 0.9 ** (1.0 / dmin)))
        return np.array([float(np.mean(np.diag(S))), phi])
