"""Linear-algebra stage: a sparse LDL' factor analysed once and refactored cheaply.

:class:`SparseLDL` follows scikit-sparse's life cycle: build it on the pattern of
the lower triangle of C, call :meth:`SparseLDL.factorize` with new values each
iteration, then ask for ``logdet``, ``solve`` and ``selected_inverse``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from . import kernels
from .backends import LDL, NotPositiveDefinite, available_backends, make_backend

__all__ = ["SparseLDL", "NotPositiveDefinite", "available_backends"]

_LAPACK_ROOT = 48  # dense root supernodes at least this wide are inverted with LAPACK


class SparseLDL:
    """Factor of a symmetric positive-definite matrix with a fixed pattern.

    Parameters
    ----------
    lower : scipy.sparse.csc_matrix
        Lower triangle (with diagonal) of the matrix; only its pattern is used here.
    backend : {"cholmod", "qdldl", "auto"}, optional
    """

    def __init__(self, lower: sp.csc_matrix, backend: str | None = None, **options):
        lower = sp.csc_matrix(lower)
        lower.sort_indices()
        self.n = lower.shape[0]
        self._rows = lower.indices.astype(np.int64)
        self._cols = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(lower.indptr))
        self._backend = make_backend(lower.copy(), backend, **options)
        self.backend = self._backend.name
        self.ldl: LDL | None = None
        self._pattern_key = None

    # -- numeric factorisation --------------------------------------------------
    def factorize(self, data: np.ndarray) -> None:
        """Factor the matrix whose lower-triangle values (in the analysed pattern) are ``data``."""
        self.ldl = self._backend.factorize(np.asarray(data, dtype=float))
        key = (self.ldl.Lp.size, int(self.ldl.Lp[-1]))
        if key != self._pattern_key or not np.array_equal(self.ldl.Lp, self._Lp):
            self._symbolic()
            self._pattern_key = key

    def _symbolic(self) -> None:
        f = self.ldl
        self._Lp = f.Lp.copy()
        self.sn_start, self.col_sn = kernels.supernodes(f.n, f.Lp, f.Li)
        counts = f.Lp[self.sn_start[1:] - 1 + 1] - f.Lp[self.sn_start[1:] - 1]
        widths = np.diff(self.sn_start)
        self._dense_roots = np.flatnonzero((counts == 0) & (widths >= _LAPACK_ROOT))
        self._done = np.zeros(widths.size, dtype=np.bool_)
        self._done[self._dense_roots] = True
        self._zpos = kernels.pattern_positions(self._rows, self._cols, f.pinv, f.Lp, f.Li,
                                               self.sn_start, self.col_sn)

    @property
    def nnz_factor(self) -> int:
        return int(self.ldl.Lp[-1]) + self.n

    @property
    def largest_supernode(self) -> int:
        return int(np.diff(self.sn_start).max())

    def logdet(self) -> float:
        """log |C| = sum log d."""
        return float(np.sum(np.log(self.ldl.d)))

    def solve(self, b: np.ndarray) -> np.ndarray:
        """C^-1 b for a vector or a matrix b (natural order)."""
        f = self.ldl
        b = np.asarray(b, dtype=float)
        vec = b.ndim == 1
        X = np.ascontiguousarray((b[:, None] if vec else b)[f.perm])
        kernels.ldl_solve_inplace(f.n, f.Lp, f.Li, f.Lx, f.d, X)
        out = np.empty_like(X)
        out[f.perm] = X
        return out[:, 0] if vec else out

    # -- selected inverse ----------------------------------------------------------
    def selected_inverse(self) -> np.ndarray:
        """Entries of C^-1 on the analysed pattern of C (aligned with its lower-triangle data)."""
        f = self.ldl
        Zd = np.empty(f.n)
        Zx = np.empty(f.Li.size)
        for s in self._dense_roots:
            a, b = self.sn_start[s], self.sn_start[s + 1]
            w = b - a
            Lc = np.zeros((w, w), order="F")
            kernels.gather_dense_block(a, w, f.Lp, f.Lx, Lc)
            Lc *= np.sqrt(f.d[a:b])[None, :]
            inv, info = lapack.dpotri(Lc, lower=1, overwrite_c=1)
            if info != 0:  # pragma: no cover - the factor is positive definite
                raise NotPositiveDefinite("dense block of the factor is singular")
            kernels.scatter_dense_block(a, w, f.Lp, Zd, Zx, np.ascontiguousarray(inv))
        kernels.selinv(f.n, f.Lp, f.Li, f.Lx, f.d, self.sn_start, self.col_sn, self._done, Zd, Zx)
        pos = self._zpos
        return np.where(pos >= 0, Zx[np.maximum(pos, 0)], Zd[np.maximum(-1 - pos, 0)])
