"""Forward substitution with sparse right-hand sides (many columns at once)."""
from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit

from .._compiled import grow_triplets
from .threads import in_parallel

__all__ = ["forward_sparse"]

@njit(cache=True, nogil=True)
def _columns(n, Lp, Li, Lx, tail, Tp, Ti, Tx, k0, k1, R):
    """Solve columns k0..k1-1 (see forward_sparse); returns their sparse part as triplets."""
    x = np.zeros(n)
    mark = np.full(n, -1, dtype=np.int64)
    touched = np.empty(n, dtype=np.int64)
    K = n - tail
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
            while j != -1 and j < tail and mark[j] != k:
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
            R[r, k] = x[tail + r]
            x[tail + r] = 0.0
    return rows[:nout], cols[:nout], vals[:nout]


def forward_sparse(n, Lp, Li, Lx, tail, Tp, Ti, Tx):
    """Y = L^-1 T for unit lower L, column by column, following only elimination-tree paths.

    Columns ``tail..n-1`` (a dense trailing block) are not solved: their accumulated right-hand
    sides are returned in the dense (n - tail) x m array R, for a BLAS triangular solve.
    The sparse part of Y (rows < tail) is returned as triplets (rows, cols, vals).  Columns
    are split into one chunk per thread.
    """
    m = Tp.shape[0] - 1
    R = np.zeros((n - tail, m))
    bounds = np.linspace(0, m, min(get_num_threads(), max(m, 1)) + 1).astype(np.int64)
    args = (n, Lp, Li, Lx, tail, Tp, Ti, Tx)
    # the kernel releases the GIL: chunks after the first run on worker threads
    parts = in_parallel(_columns, [(*args, bounds[c], bounds[c + 1], R) for c in range(bounds.size - 1)])
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]), R)
