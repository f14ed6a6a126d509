"""Predictions of a GLMM on the link scale and, by the inverse link, on the response scale.

The link-scale table is the Gaussian one (:class:`~sparsereml.inference.predict.Predictions`)
on the mixed-model equations at the mode's weights, C = [[X'WX, X'WZ], [Z'WX, H]], with one change
for a Laplace fit: the fixed effects' covariance S^-1 = (C^-1)_bb in it is replaced by the
observed-information covariance V of ``m.fixed`` (which carries the variance parameters'
uncertainty, as glmmTMB's and emmeans on glmer).  With M = K_X - K_Z H^-1 Z'WX,

    K C^-1 K' = M S^-1 M' + K_Z H^-1 K_Z',   so   K C* K' = K C^-1 K' + M (V - S^-1) M',

and M' = S (C^-1 K')_b: p solves with the factor give the correction.  On the response scale
(``scale="response"``) each cell is g^-1(eta) with the delta method's covariance J V J, J =
diag(dmu/deta): averages over other factors are taken on the link scale first (emmeans'
``type = "response"``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import ModelError
from ..inference.predict import Predictions

__all__ = ["GLMMPredictions", "SCALES"]

SCALES = ("link", "response")


class GLMMPredictions(Predictions):
    """Predictions of a GLMM (see :meth:`GLMMFit.predict`); ``scale`` says which scale the table,
    ``vcov``, ``sed`` and ``pairs()`` are on."""

    def __init__(self, model, classify: str, present=None, levels=None, sed: bool = True, average=None, use=None,
                 scale: str = "link"):
        if scale not in SCALES:
            raise ModelError(f"scale must be 'link' or 'response', got {scale!r}")
        # the response scale's SEDs come from the link scale's covariance: keep it (up to MAX_SED cells)
        super().__init__(model, classify, present, levels, sed or scale == "response", average, use)
        self.scale = scale
        if scale == "response":
            self._to_response()

    def _correction(self):
        """D = S V S - S (p x p) and F = C^-1 E_p, or None for a fit whose fixed-effect covariance
        is the equations' own (PQL)."""
        model = self._model
        V = model.beta_covariance
        if V is None:
            return None
        prob = model.problem
        E = np.zeros((prob.mme.N, prob.p))
        E[np.arange(prob.p), np.arange(prob.p)] = 1.0
        F = prob.factor.solve(E)
        S = np.linalg.inv(0.5 * (F[:prob.p] + F[:prob.p].T))
        return S @ V @ S - S, F

    def _covariance(self, K: sp.csr_matrix, extra: np.ndarray, keep: bool):
        corr = self._correction()
        self._D, self._Xb = (None, None) if corr is None else (corr[0], np.asarray((K @ corr[1]).T))
        return super()._covariance(K, extra, keep)

    def _columns(self, K: sp.csr_matrix, X: np.ndarray, a: int, b: int) -> np.ndarray:
        block = super()._columns(K, X, a, b)
        if self._D is not None:  # M (V - S^-1) M' with M' = S (C^-1 K')_b
            block = block + self._Xb.T @ (self._D @ self._Xb[:, a:b])
        return block

    def _to_response(self) -> None:
        fam = self._model.family
        eta = self.table["predicted.value"].to_numpy()
        J = fam.dmu_deta(eta)
        self.table["predicted.value"] = fam.inverse_link(eta)
        self.table["std.error"] = np.abs(J) * self.table["std.error"].to_numpy()
        self.table.insert(self.table.columns.get_loc("predicted.value"), "link.value", eta)
        self._diag = J * J * self._diag
        if self._V is not None:
            self._V = J[:, None] * self._V * J[None, :]
        else:  # the SED summary was gathered on the link scale
            self._sed_summary = None

    @property
    def avsed(self) -> pd.Series:
        if self._V is None and getattr(self, "_sed_summary", None) is None:
            raise ModelError(f"SEDs on the response scale need the table's covariance; this table has "
                             f"{len(self._labels):,} cells (predict with scale='link' for its SED summary)")
        return super().avsed

    def pairs(self, ddf: str = "none", adjust: str | None = None) -> pd.DataFrame:
        """Pairwise differences with normal (z) tests: a GLMM has no denominator df."""
        if ddf != "none":
            raise ModelError(f"a GLMM's pairwise tests are z tests; ddf={ddf!r} is for Gaussian fits")
        return super().pairs("none", adjust)

    def __repr__(self) -> str:
        return f"Predictions of {self.classify} on the {self.scale} scale ({len(self.table)} cells)\n" \
               f"{self.table.to_string(index=False)}"
