"""A term whose effects follow a covariance model across one factor: G = Sigma (x) I_q.

``us(Trial):Mother`` has one effect per (mother, trial) for every mother and every trial
(also where a mother is not in a trial: those effects are predicted through the
covariances); the effects of a mother across trials have covariance Sigma, mothers are
independent.  Columns are ordered mother by mother, so G^-1 = Sigma^-1 (x) I is a dense
n x n block per mother.  With M = sum_m C^-1_mm + U'U (U the q x n matrix of BLUPs):

    score_i = -1/2 [ q tr(Sigma^-1 dSigma_i) - tr(Sigma^-1 dSigma_i Sigma^-1 M) ]
    working variate beta_i = (dSigma_i Sigma^-1 (x) I) u
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import NotPositiveDefinite
from .base import Structure
from .covariance import CovModel

__all__ = ["KronStructure"]


class KronStructure(Structure):
    """G = Sigma(theta) (x) I_q for q independent units, each with n correlated effects.

    Parameters
    ----------
    model : CovModel
        The covariance between the n levels (e.g. trials).
    q : int
        Number of independent units (e.g. mothers).
    prefix : str
        Label of the term; parameter labels are ``prefix!suffix``.
    """

    def __init__(self, model: CovModel, q: int, prefix: str):
        self.model = model
        self.q = q
        self.n = model.n
        self.size = q * model.n
        self.labels = [f"{prefix}!{s}" for s in model.labels]
        self.prefix = prefix
        ii, jj = np.tril_indices(self.n)
        self._ii, self._jj = ii, jj
        base = (np.arange(q) * self.n)[:, None]
        self._rows = (base + ii[None, :]).ravel()
        self._cols = (base + jj[None, :]).ravel()

    @property
    def kinds(self) -> list:
        return list(self.model.kinds)

    def move(self, theta, step):
        return self.model.move(theta, step)

    @property
    def report_labels(self) -> list:
        return [f"{self.prefix}!{s}" for s in self.model.report_labels]

    @property
    def report_kinds(self) -> list:
        return list(self.model.report_kinds)

    def report(self, theta):
        return self.model.report(theta)

    def report_jacobian(self, theta):
        return self.model.report_jacobian(theta)

    def bounds(self):
        return self.model.bounds()

    def _sigma_inv(self, theta):
        S = self.model.sigma(theta)
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            raise NotPositiveDefinite(f"the covariance of {self.labels[0].split('!')[0]} is not positive "
                                      f"definite at these parameters") from None
        Li = np.linalg.inv(L)
        return S, Li.T @ Li, 2.0 * float(np.sum(np.log(np.diag(L))))

    def pattern(self):
        return self._rows, self._cols

    def ginv(self, theta):
        _, Si, _ = self._sigma_inv(theta)
        return np.tile(Si[self._ii, self._jj], self.q)

    def ginv_apply(self, theta, u):
        _, Si, _ = self._sigma_inv(theta)
        return (u.reshape(self.q, self.n) @ Si).ravel()

    def logdet(self, theta):
        return self.q * self._sigma_inv(theta)[2]

    def dlogdet(self, theta):
        _, Si, _ = self._sigma_inv(theta)
        D = self.model.dsigma(theta)
        return self.q * np.einsum("ab,kba->k", Si, D)

    def dginv(self, theta):
        _, Si, _ = self._sigma_inv(theta)
        D = self.model.dsigma(theta)
        vals = -np.einsum("ab,kbc,cd->kad", Si, D, Si)[:, self._ii, self._jj]
        return sp.csr_matrix(np.tile(vals, (1, self.q)))

    def _K(self, theta, zpat, u):
        """K = q Sigma^-1 - Sigma^-1 M Sigma^-1, with M = sum_m C^-1_mm + U'U: the score in any
        direction dSigma is -1/2 <dSigma, K>."""
        _, Si, _ = self._sigma_inv(theta)
        zs = zpat.reshape(self.q, -1).sum(axis=0)  # sum over units of the lower-triangle blocks
        M = np.zeros((self.n, self.n))
        M[self._ii, self._jj] = zs
        M = M + M.T - np.diag(np.diag(M))
        U = u.reshape(self.q, self.n)
        M += U.T @ U
        return self.q * Si - Si @ M @ Si

    def score(self, theta, zpat, u):
        K = self._K(theta, zpat, u)
        return -0.5 * np.einsum("kab,ab->k", self.model.dsigma(theta), K)

    def curvature(self, theta, zpat, u):
        """The part of -d2logL/dtheta2 that AI leaves out for parameters that enter Sigma
        nonlinearly: 1/2 <d2Sigma_ij, K> (zero for linear models)."""
        K = self._K(theta, zpat, u)
        out = np.zeros((self.n_params, self.n_params))
        for i, j, D2 in self.model.d2sigma(theta):
            out[i, j] = out[j, i] = 0.5 * float(np.sum(D2 * K))
        return out

    def dG_apply(self, theta, x):
        X = x.reshape(self.q, self.n)
        D = self.model.dsigma(theta)
        rows, cols, vals = [], [], []
        unit = np.arange(self.q) * self.n
        for k in range(D.shape[0]):
            nz = np.flatnonzero(np.any(D[k] != 0, axis=0))  # levels whose column of dSigma is nonzero
            Y = X @ D[k][:, nz]  # (q x |nz|) block of (dSigma_k (x) I) x, with D symmetric
            rows.append((unit[:, None] + nz[None, :]).ravel())
            cols.append(np.full(Y.size, k))
            vals.append(Y.ravel())
        return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(self.size, D.shape[0]))
