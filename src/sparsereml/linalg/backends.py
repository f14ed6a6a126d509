"""Numeric sparse factorisation backends: CHOLMOD (scikit-sparse) or QDLDL.

A backend is analysed once for a pattern and refactored for new values; after
each factorisation it hands back the factor as a permutation and a unit lower
L with a diagonal D (``LDL``).  Solves, log-determinants and the selected
inverse are then done by this package's own kernels, so both backends give
the same numbers from the same code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import get_num_threads, njit

from ..errors import ModelError, NotPositiveDefinite
from .threads import cholmod_library, dense_threads, in_parallel, work_ranges

__all__ = ["LDL", "NotPositiveDefinite", "available_backends", "make_backend", "resolve_backend"]


@dataclass
class LDL:
    """P C P' = L D L' with L unit lower (diagonal not stored), CSC with sorted rows."""

    perm: np.ndarray  # row k of the factor is row perm[k] of C
    pinv: np.ndarray
    Lp: np.ndarray
    Li: np.ndarray
    Lx: np.ndarray
    d: np.ndarray

    @property
    def n(self) -> int:
        return self.d.shape[0]


def _unit_columns(Lp, data, out_x, out_d) -> None:
    """From LL' columns with the diagonal first: unit-L values (diagonal dropped) and D, by
    ranges of columns of about equal entries on plain threads (nogil; prange cost the first
    fit its compiling)."""
    parts = work_ranges(Lp, get_num_threads(), cumulative=True)
    in_parallel(_unit_range, [(Lp, data, out_x, out_d, a, b) for a, b in parts])


@njit(cache=True, nogil=True)
def _unit_range(Lp, data, out_x, out_d, j0, j1):
    for j in range(j0, j1):
        dj = data[Lp[j]]
        out_d[j] = dj * dj
        k = Lp[j] - j  # entries of earlier columns, less their diagonals
        for p in range(Lp[j] + 1, Lp[j + 1]):
            out_x[k] = data[p] / dj
            k += 1


def _strip_pattern(L: sp.csc_matrix):
    """Column pointers and rows of CHOLMOD's L without its (leading) diagonal entries."""
    n = L.shape[0]
    Lp = L.indptr.astype(np.int64)
    if not np.all(L.indices[Lp[:-1]] == np.arange(n)):  # pragma: no cover - CHOLMOD contract
        raise RuntimeError("CHOLMOD factor without leading diagonal entries")
    keep = np.ones(L.nnz, dtype=bool)
    keep[Lp[:-1]] = False
    newp = Lp - np.arange(n + 1)
    return newp, L.indices[keep].astype(np.int64)


class CholmodBackend:
    """Supernodal (or simplicial) CHOLMOD through scikit-sparse."""

    name = "cholmod"

    def __init__(self, lower: sp.csc_matrix, mode: str = "supernodal", ordering: str | None = None, factor=None):
        from sksparse.cholmod import analyze

        self._lower = lower
        self._factor = factor if factor is not None else analyze(lower, mode=mode, ordering_method=ordering or "default")
        perm = np.asarray(self._factor.P(), dtype=np.int64)
        self.perm = perm
        self.pinv = np.empty_like(perm)
        self.pinv[perm] = np.arange(perm.size)
        self._pattern = None

    def factorize(self, data: np.ndarray, out_x: np.ndarray | None = None, out_d: np.ndarray | None = None) -> LDL:
        """Factor; the unit-L values and D go into ``out_x`` and ``out_d`` when given."""
        from sksparse.cholmod import CholmodNotPositiveDefiniteError

        self._lower.data = data
        try:
            with dense_threads(cholmod_library()):  # the dense block dominates; small supernodes stay single-threaded
                self._factor.cholesky_inplace(self._lower)
        except CholmodNotPositiveDefiniteError as exc:
            raise NotPositiveDefinite(str(exc)) from None
        L = self._factor.L()
        if self._pattern is None or not np.array_equal(self._pattern[0], L.indptr):
            L.sort_indices()  # CHOLMOD returns sorted columns; checked once per pattern
            self._pattern = (L.indptr.copy(), *_strip_pattern(L))
        indptr, Lp, Li = self._pattern
        Lx = np.empty(Li.size) if out_x is None else out_x
        d = np.empty(self.perm.size) if out_d is None else out_d
        _unit_columns(indptr.astype(np.int64, copy=False), L.data, Lx, d)
        return LDL(self.perm, self.pinv, Lp, Li, Lx, d)

class QDLDLBackend:
    """QDLDL (pip wheel): simplicial LDL' with AMD ordering."""

    name = "qdldl"

    def __init__(self, lower: sp.csc_matrix, mode: str | None = None, ordering: str | None = None, factor=None):
        self._upper = lower.T.tocsc()  # QDLDL reads the upper triangle
        self._upper.sort_indices()
        # transpose map: data of the lower CSC -> data of the upper CSC
        idx = sp.csc_matrix((np.arange(1, lower.nnz + 1, dtype=float), lower.indices, lower.indptr),
                            shape=lower.shape).T.tocsc()
        idx.sort_indices()
        self._map = idx.data.astype(np.int64) - 1
        self._solver = None

    def factorize(self, data: np.ndarray, out_x: np.ndarray | None = None, out_d: np.ndarray | None = None) -> LDL:
        import qdldl

        self._upper.data = data[self._map]
        if self._solver is None:
            self._solver = qdldl.Solver(self._upper, upper=True)
        else:
            self._solver.update(self._upper, upper=True)
        L, d, p = self._solver.factors()
        if not np.all(d > 0):
            raise NotPositiveDefinite("the mixed-model equations are not positive definite")
        L = sp.csc_matrix(L)
        L.sort_indices()
        perm = np.asarray(p, dtype=np.int64)
        pinv = np.empty_like(perm)
        pinv[perm] = np.arange(perm.size)
        return LDL(perm, pinv, L.indptr.astype(np.int64), L.indices.astype(np.int64),
                   np.asarray(L.data, dtype=float), np.asarray(d, dtype=float))


def available_backends() -> list[str]:
    """Backends that can be imported here, best first."""
    out = []
    try:
        import sksparse.cholmod  # noqa: F401

        out.append("cholmod")
    except ImportError:
        pass
    try:
        import qdldl  # noqa: F401

        out.append("qdldl")
    except ImportError:  # pragma: no cover - qdldl is a dependency
        pass
    return out


def resolve_backend(backend: str | None = None) -> str:
    """The backend to use: ``backend`` ("cholmod", "qdldl" or None/"auto"), else the environment
    variable ``SPARSEREML_BACKEND``, else CHOLMOD when importable."""
    choice = backend or os.environ.get("SPARSEREML_BACKEND", "auto")
    have = available_backends()
    if choice == "auto":
        return have[0]
    if choice not in ("cholmod", "qdldl"):
        raise ModelError(f"unknown backend {choice!r}; use 'cholmod', 'qdldl' or 'auto'")
    if choice not in have:
        raise ModelError(f"backend {choice!r} is not installed here (available: {', '.join(have)})")
    return choice


def make_backend(lower: sp.csc_matrix, backend: str | None = None, **options):
    """Analyse the pattern of the lower triangle ``lower`` with the chosen backend."""
    cls = CholmodBackend if resolve_backend(backend) == "cholmod" else QDLDLBackend
    return cls(lower, **options)
