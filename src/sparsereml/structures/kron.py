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
from .base import ModelSlot, Structure
from .covariance import CovModel, inverse_logdet

__all__ = ["KronStructure"]


class KronStructure(Structure):
    """G = Sigma(theta) (x) K for q units, each with n correlated effects: K = I (independent
    units) or a relationship matrix given by its sparse inverse (``fa(Trial, 2):vm(Mother, ped)``;
    ``vm(Mother, ped)`` alone is n = 1).

    Parameters
    ----------
    model : CovModel
        The covariance between the n levels (e.g. trials).
    q : int
        Number of units (e.g. mothers).
    prefix : str
        Label of the term; parameter labels are ``prefix!suffix`` (``prefix`` when ``scalar``).
    kinv : scipy.sparse matrix, optional
        K^-1 (q x q, symmetric); None for K = I.
    logdet_k : float
        log|K|.
    """

    def __init__(self, model: CovModel, q: int, prefix: str, kinv=None, logdet_k: float = 0.0,
                 scalar: bool = False):
        self.model = model
        self.q = q
        self.n = model.n
        self.size = q * model.n
        self.scalar = scalar
        self.labels = [prefix] if scalar else [f"{prefix}!{s}" for s in model.labels]
        self.prefix = prefix
        ii, jj = np.tril_indices(self.n)
        self._ii, self._jj = ii, jj
        self.kinv = None if kinv is None else sp.csc_matrix(kinv)
        self.logdet_k = float(logdet_k)
        if self.kinv is None:
            base = (np.arange(q) * self.n)[:, None]
            self._rows = (base + ii[None, :]).ravel()
            self._cols = (base + jj[None, :]).ravel()
        else:
            self._related_pattern()

    def _related_pattern(self):
        """Pattern of K^-1 (x) Sigma^-1 (unit-major): the lower triangle of Sigma^-1 for each
        diagonal entry of K^-1, a full n x n block for each entry below it."""
        low = sp.tril(self.kinv).tocoo()
        a, b, v = low.row.astype(np.int64), low.col.astype(np.int64), low.data
        n = self.n
        on = a == b
        fi, fj = np.divmod(np.arange(n * n), n)
        parts_r = [(a[on] * n)[:, None] + self._ii[None, :], (a[~on] * n)[:, None] + fi[None, :]]
        parts_c = [(a[on] * n)[:, None] + self._jj[None, :], (b[~on] * n)[:, None] + fj[None, :]]
        self._rows = np.concatenate([x.ravel() for x in parts_r])
        self._cols = np.concatenate([x.ravel() for x in parts_c])
        self._kv = np.concatenate([np.repeat(v[on], self._ii.size), np.repeat(v[~on], n * n)])
        self._si = (np.concatenate([np.tile(self._ii, int(on.sum())), np.tile(fi, int((~on).sum()))]),
                    np.concatenate([np.tile(self._jj, int(on.sum())), np.tile(fj, int((~on).sum()))]))
        self._n_diag = int(on.sum()) * self._ii.size

    @property
    def kinds(self) -> list:
        return list(self.model.kinds)

    def move(self, theta, step):
        return self.model.move(theta, step)

    def covariance_models(self) -> list:
        return [ModelSlot(self.prefix, self.model, slice(0, self.n_params), self.report_labels)]

    @property
    def report_labels(self) -> list:
        return [self.prefix] if self.scalar else [f"{self.prefix}!{s}" for s in self.model.report_labels]

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
            Si, logdet = inverse_logdet(S)
        except np.linalg.LinAlgError:
            raise NotPositiveDefinite(f"the covariance of {self.labels[0].split('!')[0]} is not positive "
                                      f"definite at these parameters") from None
        return S, Si, logdet

    def pattern(self):
        return self._rows, self._cols

    def ginv(self, theta):
        _, Si, _ = self._sigma_inv(theta)
        if self.kinv is None:
            return np.tile(Si[self._ii, self._jj], self.q)
        return self._kv * Si[self._si]

    def ginv_apply(self, theta, u):
        _, Si, _ = self._sigma_inv(theta)
        U = u.reshape(self.q, self.n)
        if self.kinv is not None:
            U = self.kinv @ U
        return (U @ Si).ravel()

    def logdet(self, theta):
        return self.q * self._sigma_inv(theta)[2] + self.n * self.logdet_k

    def dlogdet(self, theta):
        _, Si, _ = self._sigma_inv(theta)
        D = self.model.dsigma(theta)
        return self.q * np.einsum("ab,kba->k", Si, D)

    def dginv(self, theta):
        _, Si, _ = self._sigma_inv(theta)
        D = self.model.dsigma(theta)
        full = -np.einsum("ab,kbc,cd->kad", Si, D, Si)
        if self.kinv is None:
            return sp.csr_matrix(np.tile(full[:, self._ii, self._jj], (1, self.q)))
        return sp.csr_matrix(self._kv[None, :] * full[:, self._si[0], self._si[1]])

    def _K(self, theta, zpat, u):
        """K = q Sigma^-1 - Sigma^-1 M Sigma^-1, with M = sum_m C^-1_mm + U'U: the score in any
        direction dSigma is -1/2 <dSigma, K>."""
        _, Si, _ = self._sigma_inv(theta)
        n = self.n
        U = u.reshape(self.q, self.n)
        M = np.zeros((n, n))
        if self.kinv is None:
            zs = zpat.reshape(self.q, -1).sum(axis=0)  # sum over units of the lower-triangle blocks
            M[self._ii, self._jj] = zs
            M = M + M.T - np.diag(np.diag(M))
            M += U.T @ U
        else:  # sum_ab K^-1_ab (C^-1_ab + u_a u_b')
            w = self._kv * zpat
            k = self._n_diag
            M.ravel()[:] = np.bincount(self._si[0][:k] * n + self._si[1][:k], weights=w[:k], minlength=n * n)
            M = M + M.T - np.diag(np.diag(M))
            off = np.bincount(self._si[0][k:] * n + self._si[1][k:], weights=w[k:], minlength=n * n).reshape(n, n)
            M += off + off.T
            M += U.T @ (self.kinv @ U)
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

    def working_variates(self, theta, u):
        """(dSigma_i Sigma^-1 (x) I) u for each parameter: dG G^-1 u, where K cancels."""
        _, Si, _ = self._sigma_inv(theta)
        return self.dG_apply(theta, (u.reshape(self.q, self.n) @ Si).ravel())

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
