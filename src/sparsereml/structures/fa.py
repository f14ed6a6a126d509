"""Factor-analytic covariance model fa(F, k): Sigma = Lambda Lambda' + Psi.

Loadings are identified by fixing lambda_ir = 0 for r > i (the first level loads on factor 1
only, the second on factors 1-2, ...), as ASReml does.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..registry import register_cov_model
from .covariance import CovModel, nearest_pd

__all__ = ["FA", "fa_max_factors"]


def fa_max_factors(n: int) -> int:
    """The largest k for which fa(F, k) across n levels has no more parameters than us() (0: none)."""
    return max((j for j in range(1, n) if n * (j + 1) - j * (j - 1) // 2 <= n * (n + 1) // 2), default=0)


@register_cov_model
class FA(CovModel):
    """Sigma = Lambda Lambda' + Psi with k factors (ASReml's fa(F, k))."""

    name = "fa"
    formula_args = ("the number of factors",)
    formula_usage = "the number of factors, as in fa(Trial, 2)"

    @classmethod
    def check_levels(cls, args, levels, where, column):
        """Refuse k factors that are not identified: k must be below the number of levels n, and
        fa(F, k) may have no more parameters than the n(n+1)/2 of us() ((n - k)^2 >= n + k)."""
        k, n = args[0], len(levels)
        count = n * (k + 1) - k * (k - 1) // 2
        if k < n and count <= n * (n + 1) // 2:
            return
        k_max = fa_max_factors(n)
        fix = f"use at most fa(..., {k_max}) or us()" if k_max else "use us(), corgh() or diag()"
        if k >= n:
            raise ModelError(f"{where}: fa() with {k} factor(s) across {n} levels: the number of factors must be "
                             f"smaller than the number of levels of {column!r}; {fix}")
        raise ModelError(f"{where}: fa() with {k} factor(s) across {n} levels has {count} parameters, more than the "
                         f"{n * (n + 1) // 2} of an unstructured covariance, so its estimates are not identified; {fix}")

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
