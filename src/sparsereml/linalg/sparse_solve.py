"""Forward substitution with sparse right-hand sides (many columns at once)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import get_num_threads, njit
from scipy.linalg import blas

from .._compiled import grow_triplets
from .threads import in_parallel

__all__ = ["forward_sparse", "sparse_quadratic", "DENSE_LIMIT"]

DENSE_LIMIT = 50_000_000  # entries (400 MB): above this the solved columns stay sparse


@njit(cache=True, nogil=True)
def _columns(n, Lp, Li, Lx, dense_start, Tp, Ti, Tx, k0, k1, R):
    """Solve columns k0..k1-1 (see forward_sparse); returns their sparse part as triplets."""
    x = np.zeros(n)
    mark = np.full(n, -1, dtype=np.int64)
    touched = np.empty(n, dtype=np.int64)
    K = n - dense_start
    cap = 1024
    rows = np.empty(cap, dtype=np.int64)
    cols = np.empty(cap, dtype=np.int64)
    vals = np.empty(cap)
    nout = 0
    for k in range(k0, k1):
        nt = 0
        for p in range(Tp[k], Tp[k + 1]):
            i = Ti[p]
            x[i] += Tx[p]
            j = i
            while j != -1 and j < dense_start and mark[j] != k:
                mark[j] = k
                touched[nt] = j
                nt += 1
                j = Li[Lp[j]] if Lp[j] < Lp[j + 1] else -1  # parent in the elimination tree
        order = np.sort(touched[:nt])
        for idx in range(nt):
            j = order[idx]
            xj = x[j]
            if xj != 0.0:
                for p in range(Lp[j], Lp[j + 1]):
                    x[Li[p]] -= Lx[p] * xj
        rows, cols, vals = grow_triplets(rows, cols, vals, nout, nt)
        for idx in range(nt):
            j = order[idx]
            if x[j] != 0.0:
                rows[nout] = j
                cols[nout] = k
                vals[nout] = x[j]
                nout += 1
            x[j] = 0.0
        for r in range(K):
            R[r, k] = x[dense_start + r]
            x[dense_start + r] = 0.0
    return rows[:nout], cols[:nout], vals[:nout]


def forward_sparse(n, Lp, Li, Lx, dense_start, Tp, Ti, Tx):
    """Y = L^-1 T for unit lower L, column by column, following only elimination-tree paths.

    Columns ``dense_start..n-1`` (the factor's dense block) are not solved: their accumulated
    right-hand sides are returned in the dense (n - dense_start) x m array R, for a BLAS
    triangular solve.  The sparse part of Y (rows < dense_start) is returned as triplets (rows,
    cols, vals).  Columns are split into one chunk per thread.
    """
    m = Tp.shape[0] - 1
    R = np.zeros((n - dense_start, m))
    bounds = np.linspace(0, m, min(get_num_threads(), max(m, 1)) + 1).astype(np.int64)
    args = (n, Lp, Li, Lx, dense_start, Tp, Ti, Tx)
    # the kernel releases the GIL: chunks after the first run on worker threads
    parts = in_parallel(_columns, [(*args, bounds[c], bounds[c + 1], R) for c in range(bounds.size - 1)])
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]), R)


def sparse_quadratic(ldl, dense_start: int, T: sp.csc_matrix, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The part of T' C^-1 T before the factor's dense block, for a sparse T.

    Parameters
    ----------
    ldl : LDL
        The joined factor of C (``SparseLDL.ldl``).
    dense_start : int
        First column of the dense block (n when there is none).
    T : scipy.sparse.csc_matrix
        n x m, rows in C's natural order.
    scale : ndarray
        D^-1/2 of the columns before the dense block.

    Returns
    -------
    out : ndarray
        m x m: (D^-1/2 L^-1 T)' (D^-1/2 L^-1 T) over the rows before the dense block, by forward
        substitution along the elimination-tree paths of T's nonzeros.
    R : ndarray
        The right-hand sides left for the dense block, (n - dense_start) x m.
    """
    f, m = ldl, T.shape[1]
    # rows in the factor's order (their order within a column does not matter to the solve)
    rows, cols, vals, R = forward_sparse(f.n, f.Lp, f.Li, f.Lx, dense_start, T.indptr.astype(np.int64),
                                         f.pinv[T.indices], T.data.astype(float))
    if vals.size > 0.05 * dense_start * m and dense_start * m <= DENSE_LIMIT:
        # the solves filled in: a dense product (BLAS syrk) beats sparse-times-sparse by far
        Yd = np.zeros((dense_start, m))
        Yd[rows, cols] = vals * scale[rows]
        out = blas.dsyrk(1.0, Yd, trans=1, lower=0)
        return np.triu(out) + np.triu(out, 1).T, R
    Ys = sp.csc_matrix((vals * scale[rows], (rows, cols)), shape=(dense_start, m))
    return (Ys.T @ Ys).toarray(), R
