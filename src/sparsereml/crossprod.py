"""The data pass: cross-products W'W, W'y, y'y and counts, once per residual group.

This is the only stage that touches the records.  Everything later works on
these cached products, whose size does not grow with the number of records.

W'W is formed once for all records.  Per residual group only the entries whose two
unknowns both occur in several groups need splitting (e.g. intercept x Mother): an entry
with an unknown that occurs in one group only (a block, a trial, a family within a trial)
belongs wholly to that group.  Only the split entries are accumulated record by record.

A group with a structured residual (a grid, e.g. AR1 x AR1) has R^-1 = sum_b c_b(theta) B_b
over fixed sparse basis matrices B_b, so it contributes one *component* W'B_b W per basis
matrix instead of W_g'W_g (structures/residual.py).  Cells of its grid without a record get a
missing-value unknown each, numbered after the design's columns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import get_num_threads, njit

from ._compiled import counting_sort, find_sorted, grow_triplets, sort_rows
from .linalg.threads import in_parallel, work_ranges

__all__ = ["CrossProducts", "cross_products", "lower_pattern", "column_matrix"]


@dataclass
class CrossProducts:
    """Per-component cross-products on one shared lower-triangle pattern.

    A component is a residual group with independent records (W_g'W_g) or one basis matrix
    of a structured group (W_g'B_b W_g on its grid).

    Attributes
    ----------
    lower : scipy.sparse.csc_matrix
        Pattern (sorted rows, with the full diagonal) of the lower triangle of the MME.
    WtW : scipy.sparse.csc_matrix
        (nnz x K): column k holds component k on the pattern of ``lower``.
    Wty : scipy.sparse.csc_matrix
        (N x K): W_g'B_b y_g.
    yty : ndarray
        (K,) y_g'B_b y_g.
    counts : ndarray
        (G,) records per group.
    total : ndarray
        (nnz,) W'W over all records on the pattern of ``lower``.
    group_of : ndarray
        (K,) residual group of each component.
    cells : dict
        Group -> (W on the grid's cells, y on the cells) for structured groups.
    """

    lower: sp.csc_matrix
    WtW: sp.csc_matrix
    Wty: sp.csc_matrix
    yty: np.ndarray
    counts: np.ndarray
    total: np.ndarray
    group_of: np.ndarray | None = None
    cells: dict | None = None

    def __post_init__(self):
        if self.group_of is None:
            self.group_of = np.arange(self.yty.shape[0])
        if self.cells is None:
            self.cells = {}

    @property
    def n_groups(self) -> int:
        return self.counts.shape[0]

    @property
    def n_components(self) -> int:
        return self.yty.shape[0]


def group_sums(groups: np.ndarray, n_groups: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Sum of ``weights`` (or the count of records) per group, as floats: np.bincount, which
    with one group is a plain sum (five times faster, and most models have one group)."""
    if n_groups == 1:
        return np.array([float(groups.size) if weights is None else float(np.sum(weights))])
    return np.bincount(groups, weights=weights, minlength=n_groups).astype(float, copy=False)


def lower_pattern(gram: sp.csc_matrix, extra: list | None = None) -> sp.csc_matrix:
    """Pattern of a structural lower W'W (``gram``) plus the full diagonal and extra (row, col)
    entries (e.g. off-diagonal G^-1 entries); unknowns without records still get a diagonal."""
    n_col = gram.shape[0]
    pat = sp.csc_matrix((np.ones(gram.nnz), gram.indices, gram.indptr), shape=gram.shape) + sp.eye(n_col, format="csc")
    for r, c in extra or []:
        pat = pat + sp.csc_matrix((np.ones(len(r)), (np.maximum(r, c), np.minimum(r, c))), shape=(n_col, n_col))
    pat.sort_indices()
    pat.data = np.zeros(pat.nnz)
    return pat


def _lower_gram(Wp, Wi, Wx, n_col: int, nchunk: int, ones: bool):
    """Structural lower triangle of W'W (CSC, sorted rows) and its values.

    Column b collects, over the records that have b, every column a >= b of those records;
    the pattern is structural, so entries that cancel numerically are kept.  A pass over the
    records lays every such pair (a, w_b w_a) out column by column, so that the two passes per
    column (count the distinct rows, then place and sum them) read contiguous memory instead
    of visiting the records of each column scattered through the data.  The layout is written
    by ``nchunk`` threads, each for a range of records (in record order within each column);
    the passes by ``nchunk`` ranges of columns of about equal work.  With ``ones`` (every value
    of W is 1, as for factor codings) the values are not laid out: this pass is bound by memory
    traffic, and the pair values were two thirds of it.  The threads are plain threads over
    nogil kernels (``in_parallel``), not numba's prange, whose compiling took a third of the
    first fit's.
    """
    n = Wp.shape[0] - 1
    rb = np.linspace(0, n, nchunk + 1).astype(np.int64)
    records = [(Wp, Wi, int(rb[t]), int(rb[t + 1]), n_col) for t in range(nchunk)]
    cnt = np.array(in_parallel(_pair_counts, records)).reshape(nchunk, n_col)  # pairs per chunk, column
    before = np.cumsum(cnt, axis=0) - cnt
    work = np.zeros(n_col + 1, dtype=np.int64)
    np.cumsum(cnt.sum(axis=0), out=work[1:])
    start = work[:-1] + before  # where chunk t's pairs of column c begin
    pair_row = np.empty(work[n_col], dtype=np.int32)
    pair_val = np.empty(0 if ones else work[n_col])
    in_parallel(_lay_pairs, [(Wp, Wi, Wx, int(rb[t]), int(rb[t + 1]), start[t].copy(), pair_row, pair_val, ones)
                             for t in range(nchunk)])
    columns = work_ranges(work, nchunk, cumulative=True)
    counts = np.zeros(n_col, dtype=np.int64)
    in_parallel(_column_counts, [(work, pair_row, a, b, counts) for a, b in columns])
    Cp = np.zeros(n_col + 1, dtype=np.int64)
    np.cumsum(counts, out=Cp[1:])
    Ci = np.empty(Cp[n_col], dtype=np.int64)
    Cx = np.zeros(Cp[n_col])
    in_parallel(_place_rows, [(work, pair_row, pair_val, a, b, Cp, Ci, Cx, ones) for a, b in columns])
    sort_rows(Cp, Ci, Cx)
    return Cp, Ci, Cx


@njit(cache=True, nogil=True)
def _pair_counts(Wp, Wi, r0, r1, n_col):
    """Record pairs (a >= b) of records r0..r1-1 per column b."""
    cnt = np.zeros(n_col, dtype=np.int64)
    for i in range(r0, r1):
        for p in range(Wp[i], Wp[i + 1]):
            cnt[Wi[p]] += Wp[i + 1] - p
    return cnt


@njit(cache=True, nogil=True)
def _lay_pairs(Wp, Wi, Wx, r0, r1, fill, pair_row, pair_val, ones):
    """Lay the pairs of records r0..r1-1 out column by column from the positions ``fill``."""
    for i in range(r0, r1):
        for p in range(Wp[i], Wp[i + 1]):
            c = Wi[p]
            k = fill[c]
            wb = Wx[p]
            for p2 in range(p, Wp[i + 1]):
                pair_row[k] = Wi[p2]
                if not ones:
                    pair_val[k] = wb * Wx[p2]
                k += 1
            fill[c] = k


@njit(cache=True, nogil=True)
def _column_counts(work, pair_row, b0, b1, counts):
    """Pass 1 over columns b0..b1-1: how many distinct rows each has."""
    marker = np.full(work.shape[0] - 1, -1, dtype=np.int64)
    for b in range(b0, b1):
        k = 0
        for q in range(work[b], work[b + 1]):
            a = pair_row[q]
            if marker[a] != b:
                marker[a] = b
                k += 1
        counts[b] = k


@njit(cache=True, nogil=True)
def _place_rows(work, pair_row, pair_val, b0, b1, Cp, Ci, Cx, ones):
    """Pass 2 over columns b0..b1-1: their rows (in order of first appearance) and summed values."""
    n_col = work.shape[0] - 1
    marker = np.full(n_col, -1, dtype=np.int64)
    slot = np.empty(n_col, dtype=np.int64)
    for b in range(b0, b1):
        k = Cp[b]
        for q in range(work[b], work[b + 1]):
            a = pair_row[q]
            if marker[a] != b:
                marker[a] = b
                slot[a] = k
                Ci[k] = a
                k += 1
            Cx[slot[a]] += 1.0 if ones else pair_val[q]


def _keys(lower: sp.csc_matrix) -> np.ndarray:
    n = lower.shape[0]
    return lower.indices.astype(np.int64) + n * np.repeat(np.arange(n, dtype=np.int64), np.diff(lower.indptr))


def _on_pattern(lower: sp.csc_matrix, M: sp.spmatrix) -> np.ndarray:
    """Values of a lower-triangular M placed on the (larger) pattern ``lower``."""
    low = sp.coo_matrix(M)
    n = lower.shape[0]
    pos = np.searchsorted(_keys(lower), low.row.astype(np.int64) + n * low.col.astype(np.int64))
    return np.bincount(pos, weights=low.data, minlength=lower.nnz)


@njit(cache=True)
def _column_groups(Wp, Wi, gcode, n_col):
    """Smallest and largest residual group among the records of each unknown."""
    gmin = np.full(n_col, np.iinfo(np.int64).max, dtype=np.int64)
    gmax = np.full(n_col, -1, dtype=np.int64)
    for i in range(Wp.shape[0] - 1):
        g = gcode[i]
        for p in range(Wp[i], Wp[i + 1]):
            c = Wi[p]
            if g < gmin[c]:
                gmin[c] = g
            if g > gmax[c]:
                gmax[c] = g
    return gmin, gmax


@njit(cache=True)
def _flush(acc, mark, touched, nt, group, oi, og, ov, nout):
    """Move the touched accumulators of one group into the triplet buffers and reset them."""
    oi, og, ov = grow_triplets(oi, og, ov, nout, nt)
    for t in range(nt):
        p = touched[t]
        oi[nout] = p
        og[nout] = group
        ov[nout] = acc[p]
        nout += 1
        acc[p] = 0.0
        mark[p] = False
    return oi, og, ov, nout


@njit(cache=True)
def _group_products(lo, hi, Wp, Wi, Wx, y, order, multi, Cp, Ci, acc, mark, touched, racc, rmark, rtouched,
                    cols, vals):
    """Accumulate the products of records order[lo:hi] (one group) over the columns that span
    several groups; returns how many W'W and W'y accumulators were touched.  (A separate
    function: with the group's output arrays reassigned inside the record loop, numba counted
    references on every record, ten times the work itself.)"""
    n_col = Cp.shape[0] - 1
    nt = nrt = 0
    for idx in range(lo, hi):
        i = order[idx]
        k = 0
        for p in range(Wp[i], Wp[i + 1]):
            c = Wi[p]
            if multi[c]:
                cols[k] = c
                vals[k] = Wx[p]
                k += 1
                if not rmark[c]:
                    rmark[c] = True
                    rtouched[nrt] = c
                    nrt += 1
                racc[c] += Wx[p] * y[i]
        for a in range(k):
            for b in range(a + 1):
                cb = cols[b]
                if a == b:  # the diagonal leads its column
                    q = Cp[cb]
                elif Cp[cb + 1] - Cp[cb] == n_col - cb:  # a dense column (e.g. the intercept)
                    q = Cp[cb] + (cols[a] - cb)
                else:
                    q = find_sorted(Ci, Cp[cb], Cp[cb + 1], cols[a])
                if not mark[q]:
                    mark[q] = True
                    touched[nt] = q
                    nt += 1
                acc[q] += vals[a] * vals[b]
    return nt, nrt


@njit(cache=True)
def _split_by_group(Wp, Wi, Wx, y, order, start, multi, Cp, Ci):
    """Per-group parts of W'W and W'y for the unknowns that occur in several groups.

    Records are visited group by group (``order``, group g at ``order[start[g]:start[g+1]]``);
    for each, the products of its columns that span several groups are accumulated (W'W on
    the pattern (Cp, Ci), W'y by column) and written out as (position or column, group, value)
    triplets when the group ends.
    """
    n_col = Cp.shape[0] - 1
    nnz = Ci.shape[0]
    acc, mark, touched = np.zeros(nnz), np.zeros(nnz, dtype=np.bool_), np.empty(nnz, dtype=np.int64)
    racc, rmark, rtouched = np.zeros(n_col), np.zeros(n_col, dtype=np.bool_), np.empty(n_col, dtype=np.int64)
    cols = np.empty(Wi.shape[0], dtype=np.int64)
    vals = np.empty(Wi.shape[0])
    oi, og, ov = np.empty(1024, dtype=np.int64), np.empty(1024, dtype=np.int64), np.empty(1024)
    ri, rg, rv = np.empty(1024, dtype=np.int64), np.empty(1024, dtype=np.int64), np.empty(1024)
    nout = nrout = 0
    for g in range(start.shape[0] - 1):
        nt, nrt = _group_products(start[g], start[g + 1], Wp, Wi, Wx, y, order, multi, Cp, Ci, acc, mark,
                                  touched, racc, rmark, rtouched, cols, vals)
        oi, og, ov, nout = _flush(acc, mark, touched, nt, g, oi, og, ov, nout)
        ri, rg, rv, nrout = _flush(racc, rmark, rtouched, nrt, g, ri, rg, rv, nrout)
    return oi[:nout], og[:nout], ov[:nout], ri[:nrout], rg[:nrout], rv[:nrout]


def grid_products(W: sp.csr_matrix, y: np.ndarray, layout, basis: list, first_missing: int):
    """W and y laid out on a group's grid (one row per cell; a missing cell holds only its own
    missing-value unknown) and the components W'B_b W (lower, COO), W'B_b y, y'B_b y."""
    n_cells, N = layout.n_cells, W.shape[1]
    P = sp.csr_matrix((np.ones(layout.cells.size), (layout.cells, np.arange(layout.cells.size))),
                      shape=(n_cells, layout.cells.size))
    miss = layout.missing
    Wc = sp.csr_matrix(P @ W[layout.records]) + sp.csr_matrix(
        (np.ones(miss.size), (miss, first_missing + np.arange(miss.size))), shape=(n_cells, N))
    Wc.sort_indices()
    yc = np.zeros(n_cells)
    yc[layout.cells] = y[layout.records]
    comps = []
    WcT = Wc.T.tocsr()
    for B in basis:
        By = B @ yc
        M = sp.tril(WcT @ (B @ Wc)).tocoo()
        comps.append((M, WcT @ By, float(yc @ By)))
    return Wc, yc, comps


def cross_products(W: sp.csr_matrix, y: np.ndarray, groups: np.ndarray, n_groups: int,
                   extra_pattern: list | None = None, grids: list | None = None) -> CrossProducts:
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
    grids : list, optional
        Per group: None, or (GridLayout, basis matrices) of a structured residual.  Missing
        cells add unknowns after W's columns, group by group.
    """
    W = sp.csr_matrix(W)
    W.sort_indices()
    grids = grids or [None] * n_groups
    n_missing = sum(g[0].missing.size for g in grids if g is not None)
    if n_missing:
        W = sp.csr_matrix((W.data, W.indices, W.indptr), shape=(W.shape[0], W.shape[1] + n_missing))
    gridded = {}
    first = W.shape[1] - n_missing
    extra_pattern = list(extra_pattern or [])
    for g, spec in enumerate(grids):
        if spec is not None:
            layout, basis = spec
            gridded[g] = grid_products(W, y, layout, basis, first)
            first += layout.missing.size
            for M, _, _ in gridded[g][2]:
                extra_pattern.append((M.row, M.col))
    cp = _plain_products(W, y, groups, n_groups, extra_pattern)
    return _with_grids(cp, gridded) if gridded else cp


def _with_grids(cp: CrossProducts, gridded: dict) -> CrossProducts:
    """Replace each structured group's W_g'W_g by its basis components."""
    K = cp.n_groups
    keep = [g for g in range(K) if g not in gridded]
    WtW = [cp.WtW[:, keep]]
    Wty = [cp.Wty[:, keep]]
    yty, group_of = [cp.yty[keep]], [np.array(keep)]
    cells = {}
    for g, (Wc, yc, comps) in gridded.items():
        for M, wty, yy in comps:
            WtW.append(column_matrix(_on_pattern(cp.lower, M)))
            Wty.append(column_matrix(wty))
            yty.append([yy])
            group_of.append([g])
        cells[g] = (Wc, yc)
    return CrossProducts(cp.lower, sp.hstack(WtW, format="csc"), sp.hstack(Wty, format="csc"),
                         np.concatenate(yty).astype(float), cp.counts, cp.total,
                         np.concatenate(group_of).astype(np.int64), cells)


def column_matrix(v: np.ndarray) -> sp.csc_matrix:
    """A vector as a one-column CSC matrix of its nonzeros (what ``csc_matrix(v[:, None])``
    gives, without its pass through a dense 2-D array)."""
    nz = np.flatnonzero(v)
    return sp.csc_matrix((v[nz], nz, np.array([0, nz.size])), shape=(v.size, 1))


def _plain_products(W: sp.csr_matrix, y: np.ndarray, groups: np.ndarray, n_groups: int,
                    extra_pattern: list) -> CrossProducts:
    """W_g'W_g, W_g'y_g and y_g'y_g of every group (records only)."""
    n_col = W.shape[1]
    Wx = W.data.astype(float)
    Cp, Ci, Cx = _lower_gram(W.indptr.astype(np.int64), W.indices.astype(np.int64), Wx, n_col,
                             get_num_threads(), bool(np.all(Wx == 1.0)))
    gram = sp.csc_matrix((Cx, Ci, Cp), shape=(n_col, n_col))
    has_diag = np.all(np.diff(Cp) > 0) and np.all(Ci[Cp[:-1]] == np.arange(n_col))
    if has_diag and not extra_pattern:
        lower = sp.csc_matrix((np.zeros(Ci.size), Ci, Cp), shape=(n_col, n_col))
        total = Cx
    else:
        lower = lower_pattern(gram, extra_pattern)
        total = _on_pattern(lower, gram)
    yty = group_sums(groups, n_groups, y * y)
    counts = group_sums(groups, n_groups)
    wty = W.T @ y
    if n_groups == 1:
        return CrossProducts(lower, column_matrix(total), column_matrix(wty), yty, counts, total)
    Wp, Wi = W.indptr.astype(np.int64), W.indices.astype(np.int64)
    g64 = groups.astype(np.int64)
    gmin, gmax = _column_groups(Wp, Wi, g64, lower.shape[0])
    multi = gmax > gmin
    rows = lower.indices.astype(np.int64)
    cols = np.repeat(np.arange(lower.shape[0], dtype=np.int64), np.diff(lower.indptr))
    single = ~(multi[rows] & multi[cols]) & (total != 0)
    owner = np.where(multi[rows], gmin[cols], gmin[rows])[single]
    start, order = counting_sort(g64, n_groups)  # records group by group
    pos, g, val, mrow, mgrp, mval = _split_by_group(Wp, Wi, W.data, y, order, start, multi,
                                                    lower.indptr.astype(np.int64), rows)
    pos = np.concatenate([np.flatnonzero(single), pos])
    g = np.concatenate([owner, g])
    val = np.concatenate([total[single], val])
    # no (position, group) pair repeats: columns by a counting sort, not COO's sort and sum
    ptr, order = counting_sort(g.astype(np.int64), n_groups)
    WtW = sp.csc_matrix((val[order], pos[order], ptr), shape=(lower.nnz, n_groups))
    # W_g'y_g: a column confined to one group takes all of W'y; the others were split above
    one = np.flatnonzero(~multi & (gmax >= 0))
    Wty = sp.csc_matrix((np.concatenate([wty[one], mval]),
                         (np.concatenate([one, mrow]), np.concatenate([gmin[one], mgrp]))),
                        shape=(n_col, n_groups))
    return CrossProducts(lower, WtW, Wty, yty, counts, total)
