"""Unstructured covariance models fitted on a Cholesky factor: us() and corgh()."""
from __future__ import annotations

import numpy as np

from ..registry import register_cov_model
from .covariance import CovModel, nearest_pd

__all__ = ["US", "CorGH"]


@register_cov_model
class US(CovModel):
    """Unstructured Sigma, fitted on its Cholesky factor: Sigma = L L' (diagonal of L >= 0).

    Sigma stays positive semi-definite; a diagonal of L held at its small bound (code B) is a
    nearly singular Sigma, the boundary where REML estimates of us() often sit.  Reported
    parameters are the entries of Sigma (``T1:T1``, ``T2:T1``, ...).
    """

    name = "us"
    regression = True

    def _entries(self):
        return [(i, j) for i in range(self.n) for j in range(i + 1)]

    @property
    def labels(self):
        return [f"chol.{self.levels[i]}:{self.levels[j]}" for i, j in self._entries()]

    @property
    def kinds(self):  # 'chol': a diagonal of L (see the optimiser for its bound)
        return ["chol" if i == j else "load" for i, j in self._entries()]

    @property
    def report_labels(self):
        return [f"{self.levels[i]}:{self.levels[j]}" for i, j in self._entries()]

    @property
    def report_kinds(self):
        return ["var" if i == j else "cov" for i, j in self._entries()]

    def chol(self, theta):
        L = np.zeros((self.n, self.n))
        for k, (i, j) in enumerate(self._entries()):
            L[i, j] = theta[k]
        return L

    def sigma(self, theta):
        L = self.chol(theta)
        return L @ L.T

    def dsigma(self, theta):
        L = self.chol(theta)
        D = np.zeros((len(theta), self.n, self.n))
        for k, (a, b) in enumerate(self._entries()):  # d(LL')/dL_ab = E_ab L' + L E_ba
            D[k, a, :] += L[:, b]
            D[k, :, a] += L[:, b]
        return D

    def d2sigma(self, theta):
        ent = self._entries()
        out = []
        for k1, (a, b) in enumerate(ent):  # d2(LL')/dL_ab dL_cd = E_ac + E_ca when b == d
            for k2 in range(k1, len(ent)):
                c, d = ent[k2]
                if b == d:
                    M = np.zeros((self.n, self.n))
                    M[a, c] += 1.0
                    M[c, a] += 1.0
                    out.append((k1, k2, M))
        return out

    def start(self, S):
        L = np.linalg.cholesky(nearest_pd(S))
        return np.array([L[i, j] for i, j in self._entries()])

    def move(self, theta, step):
        """Step in Sigma, not in L: Sigma + sum_k step_k dSigma/dL_k, then its Cholesky factor.

        The same first-order move, taken on the straight line in Sigma: in L the path to a
        nearly singular Sigma is strongly curved, and AI steps overshoot along it.  Where the
        line leaves the positive-definite cone (an optimum on its boundary) the step is taken
        in L instead, which stays positive semi-definite.
        """
        S = self.sigma(theta) + np.tensordot(step, self.dsigma(theta), axes=1)
        try:
            L = np.linalg.cholesky(0.5 * (S + S.T))
        except np.linalg.LinAlgError:
            return theta + step
        return np.array([L[i, j] for i, j in self._entries()])

    def report(self, theta):
        S = self.sigma(theta)
        return np.array([S[i, j] for i, j in self._entries()])

    def sigma_from_reported(self, reported):
        S = np.zeros((self.n, self.n))
        for k, (i, j) in enumerate(self._entries()):
            S[i, j] = S[j, i] = reported[k]
        return S

    def hold_reported(self, given):
        """The first variance alone is the square of the first Cholesky diagonal."""
        if list(given) != [0]:
            return None
        v = float(given[0])
        if not v > 0:
            raise ValueError("must be a positive variance")
        return {0: np.sqrt(v)}

    def report_jacobian(self, theta):
        D = self.dsigma(theta)
        return np.array([[D[k, i, j] for k in range(len(theta))] for i, j in self._entries()])


@register_cov_model
class CorGH(US):
    """Correlations and heterogeneous variances (``T2:T1`` correlations, then ``T1`` variances).

    The same model as us(), reported on another scale; it is fitted on the same Cholesky
    factor, so the correlation matrix stays positive definite."""

    name = "corgh"
    regression = False

    def _pairs(self):
        return [(i, j) for i in range(self.n) for j in range(i)]

    @property
    def report_labels(self):
        return [f"{self.levels[i]}:{self.levels[j]}" for i, j in self._pairs()] + list(self.levels)

    @property
    def report_kinds(self):
        return ["cor"] * len(self._pairs()) + ["var"] * self.n

    def report(self, theta):
        S = self.sigma(theta)
        d = np.diag(S)
        cors = [S[i, j] / np.sqrt(d[i] * d[j]) for i, j in self._pairs()]
        return np.concatenate([cors, d])

    def sigma_from_reported(self, reported):
        pairs = self._pairs()
        v = np.asarray(reported[len(pairs):], float)
        R = np.eye(self.n)
        for (i, j), r in zip(pairs, reported[:len(pairs)]):
            R[i, j] = R[j, i] = r
        sd = np.sqrt(v)
        return R * np.outer(sd, sd)

    def hold_reported(self, given):
        return None  # correlations and variances of a Cholesky factor: only all together

    def report_jacobian(self, theta):
        S = self.sigma(theta)
        D = self.dsigma(theta)
        d = np.diag(S)
        rows = []
        for i, j in self._pairs():  # r = S_ij / sqrt(S_ii S_jj)
            r = S[i, j] / np.sqrt(d[i] * d[j])
            rows.append(D[:, i, j] / np.sqrt(d[i] * d[j]) - 0.5 * r * (D[:, i, i] / d[i] + D[:, j, j] / d[j]))
        rows += [D[:, i, i] for i in range(self.n)]
        return np.array(rows)
