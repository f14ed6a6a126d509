"""Covariance models between the n levels of a factor: Sigma(theta) and its derivatives.

| model    | parameters (labels)                                   | Sigma                          | file           |
|----------|-------------------------------------------------------|--------------------------------|----------------|
| diag     | one variance per level (``T1``)                       | diag(v)                        | here           |
| corv     | ``var``, ``cor``                                      | v (rho 11' + (1 - rho) I)      | here           |
| corh     | ``cor``, one variance per level                       | rho s_i s_j, v_i on the diagonal | here         |
| ar1      | ``var``, ``cor``                                      | v rho^|i-j| (levels in order)  | here           |
| corgh    | one correlation per pair (``T2:T1``), then variances  | rho_ij s_i s_j                 | unstructured.py|
| us       | every variance and covariance (``T1:T1``, ``T2:T1``)  | unstructured (fitted as L L')  | unstructured.py|
| fa(k)    | specific variances (``var.T1``), loadings (``fa1.T1``)| Lambda Lambda' + Psi           | fa.py          |
| exp      | ``var``, ``cor`` (per unit distance)                  | v phi^|x_i - x_j|              | exp.py         |

Each model registers itself by name (:func:`sparsereml.registry.register_cov_model`); what the
rest of the package needs to know of a model is a method or attribute of its class: its formula
arguments (``formula_args``), whether it may model a random regression (``regression``) or is a
variance per level (``per_level``), a check of the factor's levels (``check_levels``), start
values from a guess of Sigma (``start``) and Sigma from values on the reported scale
(``sigma_from_reported``, ``hold_reported``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..registry import cov_model, register_cov_model

__all__ = ["inverse_logdet", "nearest_pd", "CovModel", "VarCor", "DiagCov", "CorV", "CorH", "AR1", "make_cov_model"]

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
    """Covariance between the levels of a factor as a function of its parameters.

    Class attributes
    ----------------
    name : str
        The formula name (``us``, ``fa``, ...), under which the model is registered.
    formula_args : tuple of str
        What each extra (whole-number) argument after the factor means (``fa``: the number of
        factors); ``formula_usage`` shows how to write them.
    regression : bool
        Whether the model may act across the coefficients of a random regression (``us(~ 1 + x)``).
    per_level : bool
        Whether the model is one variance per level, coded as independent blocks (``diag``).
    """

    name: str
    formula_args: tuple = ()
    formula_usage: str = ""
    regression: bool = False
    per_level: bool = False

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

    @classmethod
    def check_levels(cls, args: tuple, levels, where: str, column: str) -> None:
        """Refuse a factor whose levels the model cannot describe (ModelError naming ``where``)."""

    def sigma_from_reported(self, reported: np.ndarray) -> np.ndarray:
        """Sigma from the parameters on the reported scale (users' start and fix values)."""
        return self.sigma(np.asarray(reported, dtype=float))

    def hold_reported(self, given: dict) -> dict | None:
        """Working parameters (index -> value) that hold the reported ones ``given`` (index ->
        value) when only some are fixed; None when they can only be held all together."""
        return None

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


@register_cov_model
class DiagCov(CovModel):
    name = "diag"
    regression = True
    per_level = True

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


class VarCor(CovModel):
    """Models with one variance and one correlation (``var``, ``cor``)."""

    @property
    def labels(self):
        return ["var", "cor"]

    @property
    def kinds(self):
        return ["var", "cor"]


@register_cov_model
class CorV(VarCor):
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


@register_cov_model
class AR1(VarCor):
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


@register_cov_model
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


def make_cov_model(name: str, levels, args: tuple = ()) -> CovModel:
    """Build a registered covariance model by its formula name, e.g. ``make_cov_model("fa", levels, (2,))``."""
    return cov_model(name)(levels, *args)
