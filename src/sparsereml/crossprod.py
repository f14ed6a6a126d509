"""The data pass: cross-products W'W, W'y, y'y and counts, once per residual group.

This is the only stage that touches the records.  Everything later works on
these cached products, whose size does not grow with the number of records.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit

__all__ = ["CrossProducts", "cross_products", "lower_pattern"]


@dataclass
class CrossProducts:
    """Per-group cross-products on one shared lower-triangle pattern.

    Attributes
    ----------
    lower : scipy.sparse.csc_matrix
        Pattern (sorted rows, with the full diagonal) of the lower triangle of W'W.
    WtW : scipy.sparse.csc_matrix
        (nnz x G): column g holds W_g'W_g on the pattern of ``lower``.
    Wty : scipy.sparse.csc_matrix
        (N x G): column g is W_g'y_g.
    yty : ndarray
        (G,) y_g'y_g.
    counts : ndarray
        (G,) records per group.
    """

    lower: sp.csc_matrix
    WtW: sp.csc_matrix
    Wty: sp.csc_matrix
    yty: np.ndarray
    counts: np.ndarray

    @property
    def n_groups(self) -> int:
        return self.yty.shape[0]


def lower_pattern(W: sp.csr_matrix, extra: list | None = None, WtW: sp.spmatrix | None = None) -> sp.csc_matrix:
    """Lower-triangle pattern of W'W plus the diagonal and any extra (row, col) entries.

    ``WtW`` may pass a product already formed; it is used for the pattern when W has no
    negative entries (then no entry of W'W can cancel to zero).
    """
    n_col = W.shape[1]
    if WtW is None or W.data.min(initial=0.0) < 0:
        ones = sp.csr_matrix((np.ones(W.nnz), W.indices, W.indptr), shape=W.shape)
        WtW = ones.T @ ones
    pat = sp.tril(WtW).tocsc()
    pat.data = np.ones(pat.nnz)
    has_diag = np.all(np.diff(pat.indptr) > 0) and np.all(pat.indices[pat.indptr[:-1]] == np.arange(n_col))
    if not has_diag:  # unknowns without records (e.g. pedigree ancestors) still need a diagonal
        pat = pat + sp.eye(n_col, format="csc")
    for r, c in extra or []:
        pat = pat + sp.csc_matrix((np.ones(len(r)), (np.maximum(r, c), np.minimum(r, c))), shape=(n_col, n_col))
    pat.sort_indices()
    pat.data = np.zeros(pat.nnz)
    return pat


@njit(cache=True)
def _find(Ci, lo, hi, r):
    while lo < hi:
        mid = (lo + hi) // 2
        v = Ci[mid]
        if v < r:
            lo = mid + 1
        elif v > r:
            hi = mid
        else:
            return mid
    return -1


@njit(cache=True)
def _group_crossprod(Wp, Wi, Wx, order, gcode, Cp, Ci, nnz):
    """Triplets (position in pattern, group, value) of every W_g'W_g."""
    acc = np.zeros(nnz)
    mark = np.zeros(nnz, dtype=np.bool_)
    touched = np.empty(nnz, dtype=np.int64)
    cap = max(nnz, 16)
    out_pos = np.empty(cap, dtype=np.int64)
    out_g = np.empty(cap, dtype=np.int64)
    out_val = np.empty(cap)
    nout = 0
    nt = 0
    n = order.shape[0]
    cur = gcode[order[0]]
    for idx in range(n + 1):
        g = -1 if idx == n else gcode[order[idx]]
        if g != cur:  # flush the finished group
            if nout + nt > cap:
                cap = 2 * (nout + nt)
                out_pos = np.concatenate((out_pos[:nout], np.empty(cap - nout, dtype=np.int64)))
                out_g = np.concatenate((out_g[:nout], np.empty(cap - nout, dtype=np.int64)))
                out_val = np.concatenate((out_val[:nout], np.empty(cap - nout)))
            for t in range(nt):
                p = touched[t]
                out_pos[nout] = p
                out_g[nout] = cur
                out_val[nout] = acc[p]
                nout += 1
                acc[p] = 0.0
                mark[p] = False
            nt = 0
            cur = g
        if idx == n:
            break
        i = order[idx]
        for a in range(Wp[i], Wp[i + 1]):
            ca = Wi[a]
            va = Wx[a]
            for b in range(Wp[i], a + 1):
                p = _find(Ci, Cp[Wi[b]], Cp[Wi[b] + 1], ca)
                if not mark[p]:
                    mark[p] = True
                    touched[nt] = p
                    nt += 1
                acc[p] += va * Wx[b]
    return out_pos[:nout], out_g[:nout], out_val[:nout]


def cross_products(W: sp.csr_matrix, y: np.ndarray, groups: np.ndarray, n_groups: int,
                   extra_pattern: list | None = None) -> CrossProducts:
    """Form the per-group cross-products in one pass over the records.

    Parameters
    ----------
    W : scipy.sparse.csr_matrix
        [X Z], one row per record, sorted column indices.
    y : ndarray
    groups : ndarray of int
        Residual group (0..n_groups-1) of each record.
    n_groups : int
    extra_pattern : list of (rows, cols), optional
        Entries the pattern must hold besides W'W (e.g. off-diagonal G^-1 entries).
    """
    W = sp.csr_matrix(W)
    W.sort_indices()
    full = W.T @ W if n_groups == 1 else None
    lower = lower_pattern(W, extra_pattern, full)
    if n_groups == 1:  # one group: W'W from scipy's product, placed on the pattern
        low = sp.tril(full).tocsc()
        low.sort_indices()
        if low.nnz == lower.nnz and np.array_equal(low.indptr, lower.indptr) and np.array_equal(low.indices, lower.indices):
            WtW = sp.csc_matrix(low.data[:, None])
        else:
            low = low.tocoo()
            n = lower.shape[0]
            keys = lower.indices.astype(np.int64) + n * np.repeat(np.arange(n, dtype=np.int64), np.diff(lower.indptr))
            pos = np.searchsorted(keys, low.row.astype(np.int64) + n * low.col.astype(np.int64))
            WtW = sp.csc_matrix((low.data, (pos, np.zeros(pos.size, dtype=np.int64))), shape=(lower.nnz, 1))
        Wty = sp.csc_matrix((W.T @ y)[:, None])
        return CrossProducts(lower, WtW, Wty, np.array([float(y @ y)]), np.array([float(y.size)]))
    order = np.argsort(groups, kind="stable")
    pos, g, val = _group_crossprod(W.indptr.astype(np.int64), W.indices.astype(np.int64), W.data,
                                   order, groups.astype(np.int64), lower.indptr.astype(np.int64),
                                   lower.indices.astype(np.int64), lower.nnz)
    WtW = sp.csc_matrix((val, (pos, g)), shape=(lower.nnz, n_groups))
    Y = sp.csc_matrix((y, (np.arange(y.size), groups)), shape=(y.size, n_groups))
    Wty = (W.T @ Y).tocsc()
    yty = np.bincount(groups, weights=y * y, minlength=n_groups)
    counts = np.bincount(groups, minlength=n_groups).astype(float)
    return CrossProducts(lower, WtW, Wty, yty, counts)
