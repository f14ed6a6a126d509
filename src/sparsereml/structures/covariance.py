"""Covariance models between the n levels of a factor: Sigma(theta) and its derivatives.

| model    | parameters (labels)                                   | Sigma                          |
|----------|-------------------------------------------------------|--------------------------------|
| diag     | one variance per level (``T1``)                       | diag(v)                        |
| corv     | ``var``, ``cor``                                      | v (rho 11' + (1 - rho) I)      |
| corh     | ``cor``, one variance per level                       | rho s_i s_j, v_i on the diagonal |
| corgh    | one correlation per pair (``T2:T1``), then variances  | rho_ij s_i s_j                 |
| us       | every variance and covariance (``T1:T1``, ``T2:T1``)  | unstructured (fitted as L D L')|
| fa(k)    | specific variances (``var.T1``), loadings (``fa1.T1``)| Lambda Lambda' + Psi           |
| ar1      | ``var``, ``cor``                                      | v rho^|i-j| (levels in order)  |

Factor-analytic loadings are identified by fixing lambda_ir = 0 for r > i (the first level
loads on factor 1 only, the second on factors 1-2, ...), as ASReml does.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import ModelError

__all__ = ["inverse_logdet", "nearest_pd", "CovModel", "DiagCov", "CorV", "CorH", "CorGH", "US", "FA", "AR1", "COV_MODELS", "make_cov_model"]

_BOUNDS = {"var": (0.0, np.inf), "cor": (-1.0, 1.0), "cov": (-np.inf, np.inf), "load": (-np.inf, np.inf),
           "chol": (0.0, np.inf)}


def inverse_logdet(S: np.ndarray) -> tuple[np.ndarray, float]:
    """S^-1 and log|S| of a symmetric positive-definite matrix by its Cholesky factor;
    numpy.linalg.LinAlgError when S is not positive definite."""
    L = np.linalg.cholesky(S)
    Li = np.linalg.inv(L)
    return Li.T @ Li, 2.0 * float(np.sum(np.log(np.diag(L))))


def nearest_pd(S: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """S made positive definite for start values: on the correlation scale (so that levels with
    very different variances, e.g. traits in different units, keep theirs), eigenvalues raised
    to at least ``floor``; a variance that is not positive takes the mean of the others."""
    S = 0.5 * (S + S.T)
    d = np.diag(S).copy()
    good = d > 0
    d[~good] = float(np.mean(d[good])) if good.any() else 1.0
    sd = np.sqrt(d)
    R = S / np.outer(sd, sd)
    R[np.diag_indices_from(R)] = 1.0
    w, V = np.linalg.eigh(R)
    R = (V * np.maximum(w, floor)) @ V.T
    dr = np.sqrt(np.diag(R))
    R = R / np.outer(dr, dr)
    return R * np.outer(sd, sd)


class CovModel(ABC):
    """Covariance between the levels of a factor as a function of its parameters."""

    name: str

    def __init__(self, levels):
        self.levels = [str(x) for x in levels]
        self.n = len(self.levels)

    @property
    @abstractmethod
    def labels(self) -> list:
        """Label suffix of each parameter."""

    @property
    @abstractmethod
    def kinds(self) -> list:
        """'var', 'cor', 'cov' or 'load' for each parameter (sets its bounds)."""

    @property
    def n_params(self) -> int:
        return len(self.labels)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = zip(*(_BOUNDS[k] for k in self.kinds))
        return np.array(lo), np.array(hi)

    @abstractmethod
    def sigma(self, theta: np.ndarray) -> np.ndarray:
        """Sigma (n x n)."""

    @abstractmethod
    def dsigma(self, theta: np.ndarray) -> np.ndarray:
        """dSigma/dtheta_i, stacked (n_params x n x n)."""

    @abstractmethod
    def start(self, S: np.ndarray) -> np.ndarray:
        """Parameters whose Sigma is close to the positive-definite guess S."""

    def d2sigma(self, theta: np.ndarray) -> list:
        """Nonzero second derivatives d2Sigma/dtheta_i dtheta_j as (i, j, matrix), i <= j (none
        for models linear in their parameters)."""
        return []

    def describe(self, theta: np.ndarray) -> dict:
        """Named matrices for reports (the covariance; FA adds loadings and specific variances)."""
        return {}

    def move(self, theta: np.ndarray, step: np.ndarray) -> np.ndarray:
        """The parameters after an optimiser step (plain addition unless a model says otherwise)."""
        return theta + step

    # The optimiser moves the working parameters above; users see the reported ones.  They are
    # the same except where a reparametrisation keeps Sigma positive definite (us).
    @property
    def report_labels(self) -> list:
        return self.labels

    @property
    def report_kinds(self) -> list:
        return self.kinds

    def report(self, theta: np.ndarray) -> np.ndarray:
        return np.asarray(theta, dtype=float)

    def report_jacobian(self, theta: np.ndarray) -> np.ndarray:
        """d(reported) / d(working)."""
        return np.eye(len(theta))

    def _corr(self, S: np.ndarray) -> np.ndarray:
        d = np.sqrt(np.clip(np.diag(S), 1e-300, None))
        return S / np.outer(d, d)


def _d2_scaled_correlation(R: np.ndarray, v: np.ndarray, offset: int, cors: list) -> list:
    """Second derivatives of Sigma_ij = R_ij s_i s_j (s = sqrt(v)) for corh and corgh.

    ``cors`` lists (parameter index, pair) for the correlation parameters: pair None means one
    correlation shared by every pair (corh), else the (i, j) it belongs to (corgh).  Variances
    are parameters offset..offset+n-1.
    """
    n = v.size
    s = np.sqrt(v)
    out = []
    for k in range(n):  # correlation x variance_k
        for idx, pair in cors:
            M = np.zeros((n, n))
            others = range(n) if pair is None else [pair[1] if pair[0] == k else pair[0]] if k in pair else []
            for j in others:
                if j != k:
                    M[k, j] = M[j, k] = s[j] / (2.0 * s[k])
            if M.any():
                out.append((idx, offset + k, M))
    for k in range(n):  # variances
        M = np.zeros((n, n))
        for j in range(n):
            if j != k:
                M[k, j] = M[j, k] = -R[k, j] * s[j] / (4.0 * s[k] ** 3)
        out.append((offset + k, offset + k, M))
        for l in range(k + 1, n):
            M = np.zeros((n, n))
            M[k, l] = M[l, k] = R[k, l] / (4.0 * s[k] * s[l])
            out.append((offset + k, offset + l, M))
    return out


class DiagCov(CovModel):
    name = "diag"

    @property
    def labels(self):
        return list(self.levels)

    @property
    def kinds(self):
        return ["var"] * self.n

    def sigma(self, theta):
        return np.diag(theta)

    def dsigma(self, theta):
        D = np.zeros((self.n, self.n, self.n))
        D[np.arange(self.n), np.arange(self.n), np.arange(self.n)] = 1.0
        return D

    def start(self, S):
        return np.diag(S).copy()


class _VarCor(CovModel):
    """Models with one variance and one correlation (``var``, ``cor``)."""

    @property
    def labels(self):
        return ["var", "cor"]

    @property
    def kinds(self):
        return ["var", "cor"]


class CorV(_VarCor):
    name = "corv"

    def sigma(self, theta):
        v, r = theta
        return v * (r * np.ones((self.n, self.n)) + (1.0 - r) * np.eye(self.n))

    def dsigma(self, theta):
        v, r = theta
        return np.stack([self.sigma(theta) / v, v * (np.ones((self.n, self.n)) - np.eye(self.n))])

    def start(self, S):
        R = self._corr(S)
        off = R[~np.eye(self.n, dtype=bool)]
        return np.array([float(np.mean(np.diag(S))), float(np.clip(off.mean(), -0.5 / self.n, 0.9))])

    def d2sigma(self, theta):
        return [(0, 1, np.ones((self.n, self.n)) - np.eye(self.n))]


class AR1(_VarCor):
    """v rho^|i - j| between levels i, j in their order (ASReml's ar1v on a random term)."""

    name = "ar1"

    def _lag(self):
        i = np.arange(self.n)
        return np.abs(i[:, None] - i[None, :]).astype(float)

    def sigma(self, theta):
        v, r = theta
        return v * r ** self._lag()

    def dsigma(self, theta):
        v, r = theta
        k = self._lag()
        dr = v * k * np.where(k > 0, r ** np.maximum(k - 1, 0), 0.0)
        return np.stack([r ** k, dr])

    def d2sigma(self, theta):
        v, r = theta
        k = self._lag()
        d_vr = k * np.where(k > 0, r ** np.maximum(k - 1, 0), 0.0)
        d_rr = v * k * (k - 1) * np.where(k > 1, r ** np.maximum(k - 2, 0), 0.0)
        return [(0, 1, d_vr), (1, 1, d_rr)]

    def start(self, S):
        R = self._corr(S)
        lag1 = np.diag(R, 1)
        return np.array([float(np.mean(np.diag(S))), float(np.clip(lag1.mean() if lag1.size else 0.0, -0.5, 0.8))])


class CorH(CovModel):
    name = "corh"

    @property
    def labels(self):
        return ["cor"] + list(self.levels)

    @property
    def kinds(self):
        return ["cor"] + ["var"] * self.n

    def sigma(self, theta):
        r, v = theta[0], theta[1:]
        s = np.sqrt(v)
        S = r * np.outer(s, s)
        S[np.diag_indices(self.n)] = v
        return S

    def dsigma(self, theta):
        r, v = theta[0], theta[1:]
        s = np.sqrt(v)
        D = np.zeros((1 + self.n, self.n, self.n))
        D[0] = np.outer(s, s)
        D[0][np.diag_indices(self.n)] = 0.0
        for k in range(self.n):
            row = r * s / (2.0 * s[k])
            D[1 + k, k, :] = row
            D[1 + k, :, k] = row
            D[1 + k, k, k] = 1.0
        return D

    def start(self, S):
        R = self._corr(S)
        off = R[~np.eye(self.n, dtype=bool)]
        return np.concatenate([[float(np.clip(off.mean(), -0.5 / self.n, 0.9))], np.diag(S)])

    def d2sigma(self, theta):
        R = np.full((self.n, self.n), theta[0])
        return _d2_scaled_correlation(R, theta[1:], 1, [(0, None)])


class US(CovModel):
    """Unstructured Sigma, fitted on its Cholesky factor: Sigma = L L' (diagonal of L >= 0).

    Sigma stays positive semi-definite; a diagonal of L held at its small bound (code B) is a
    nearly singular Sigma, the boundary where REML estimates of us() often sit.  Reported
    parameters are the entries of Sigma (``T1:T1``, ``T2:T1``, ...).
    """

    name = "us"

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

    def report_jacobian(self, theta):
        D = self.dsigma(theta)
        return np.array([[D[k, i, j] for k in range(len(theta))] for i, j in self._entries()])


class CorGH(US):
    """Correlations and heterogeneous variances (``T2:T1`` correlations, then ``T1`` variances).

    The same model as us(), reported on another scale; it is fitted on the same Cholesky
    factor, so the correlation matrix stays positive definite."""

    name = "corgh"

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


class FA(CovModel):
    """Sigma = Lambda Lambda' + Psi with k factors (ASReml's fa(F, k))."""

    name = "fa"

    def __init__(self, levels, k: int = 1):
        super().__init__(levels)
        if not 1 <= k < self.n:
            raise ModelError(f"fa() needs 1 <= k < {self.n} (the number of levels)")
        self.k = k

    def _free(self):  # (level i, factor r) of each loading: lambda_ir = 0 for r > i
        return [(i, r) for r in range(self.k) for i in range(r, self.n)]

    @property
    def labels(self):
        return [f"var.{lv}" for lv in self.levels] + [f"fa{r + 1}.{self.levels[i]}" for i, r in self._free()]

    @property
    def kinds(self):
        return ["var"] * self.n + ["load"] * len(self._free())

    def loadings(self, theta):
        L = np.zeros((self.n, self.k))
        for val, (i, r) in zip(theta[self.n:], self._free()):
            L[i, r] = val
        return L

    def sigma(self, theta):
        L = self.loadings(theta)
        return L @ L.T + np.diag(theta[: self.n])

    def dsigma(self, theta):
        L = self.loadings(theta)
        D = np.zeros((len(theta), self.n, self.n))
        D[np.arange(self.n), np.arange(self.n), np.arange(self.n)] = 1.0
        for k, (i, r) in enumerate(self._free()):
            D[self.n + k, i, :] += L[:, r]
            D[self.n + k, :, i] += L[:, r]
        return D

    def start(self, S):
        S = nearest_pd(S)
        w, V = np.linalg.eigh(S)
        top = np.argsort(w)[::-1][: self.k]
        L0 = V[:, top] * np.sqrt(np.maximum(w[top] - w.min(), 1e-6 * w.max()) * 0.9)
        Q, _ = np.linalg.qr(L0[: self.k].T)  # rotate so that lambda_ir = 0 for r > i
        L = L0 @ Q
        L *= np.where(np.diag(L[: self.k]) < 0, -1.0, 1.0)[None, :]
        psi = np.maximum(np.diag(S) - np.sum(L * L, axis=1), 0.1 * np.diag(S))
        return np.concatenate([psi, [L[i, r] for i, r in self._free()]])

    def d2sigma(self, theta):
        free = self._free()
        out = []
        for k1, (i, r) in enumerate(free):  # d2(LL')/dlambda_ir dlambda_jr = E_ij + E_ji
            for k2 in range(k1, len(free)):
                j, r2 = free[k2]
                if r == r2:
                    M = np.zeros((self.n, self.n))
                    M[i, j] += 1.0
                    M[j, i] += 1.0
                    out.append((self.n + k1, self.n + k2, M))
        return out

    def describe(self, theta):
        L = self.loadings(theta)
        return {"loadings": (L, [f"fa{r + 1}" for r in range(self.k)]), "specific": theta[: self.n]}


COV_MODELS = {"diag": DiagCov, "corv": CorV, "corh": CorH, "corgh": CorGH, "us": US, "fa": FA, "ar1": AR1}


def make_cov_model(name: str, levels, args: tuple = ()) -> CovModel:
    """Build a covariance model by its formula name, e.g. ``make_cov_model("fa", levels, (2,))``."""
    cls = COV_MODELS[name]
    return cls(levels, *args)
