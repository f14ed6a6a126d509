"""LDL' of a matrix whose factor is a *star*: small dense leaves around one dense block.

After the absorption of the cells (``Trial:Mother``) the equations of a network of trials
often order into independent blocks of within-trial unknowns (the blocks of each trial), each
coupled only to a trailing set of crossed unknowns (mothers, trials) that fill makes dense.
Its factor is then a star: every leaf block K is eliminated with small dense kernels, adds
``L_NK D_K L_NK'`` to the dense block's Schur complement S, and S is factorised by LAPACK with
every core.  This is what a supernodal sparse Cholesky does on such a matrix, without its
general bookkeeping and without converting its factor to the joined unit-L form afterwards.
The leaves are eliminated in two passes, each split between threads: their own columns of L
(leaf by leaf), then their updates of S (by ranges of dense-block columns, so that no entry of S
has two writers).  (Two kernels keep the star's old word for its centre in their names,
``_root_values`` and ``_root_columns``: the list of compiled kernels names them.)

:meth:`StarFactor.detect` recognises the structure from the elimination tree and column counts
of the pattern in the order chosen for it; anything else goes to CHOLMOD or QDLDL.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import get_num_threads, njit
from scipy.linalg import lapack

from ..errors import NotPositiveDefinite
from .._compiled import counting_sort
from .backends import LDL
from .kernels import _unit_lower_inverse
from .ordering import permute_lower, symbolic_counts
from .threads import dense_threads, in_parallel, lapack_library, work_ranges

__all__ = ["StarFactor"]

MIN_DENSE = 48  # a dense block narrower than this is left to the sparse backends
MAX_LEAF = 256  # widest leaf block handled with dense kernels
DENSE_ZEROS = 0.05  # explicit zeros allowed in the dense block, as a fraction of its entries
LEAF_ZEROS = 0.25  # and in the dense leaf blocks, as a fraction of their true entries
_PANEL = 64  # dense-block columns per product in a leaf's update of the dense block


@njit(cache=True)
def _leaf_ldl(A, w):
    """Unit-lower L and D of a dense w x w block (lower triangle of A used); d[0] <= 0 on failure."""
    L = np.zeros((w, w))
    d = np.empty(w)
    for j in range(w):
        dj = A[j, j]
        for k in range(j):
            dj -= L[j, k] * L[j, k] * d[k]
        if not dj > 0.0:
            d[0] = -1.0
            return L, d
        d[j] = dj
        L[j, j] = 1.0
        for i in range(j + 1, w):
            v = A[i, j]
            for k in range(j):
                v -= L[i, k] * L[j, k] * d[k]
            L[i, j] = v / dj
    return L, d


@njit(cache=True, nogil=True)
def _leaf_columns(k0, k1, data, leaf_start, leaf_n, a_src, a_dst, a_ptr, b_src, b_dst, b_ptr, Lp, out_x, out_d):
    """Factor leaves k0..k1-1: write their columns of L (the leaf block, then L_NK = B L^-T D^-1)
    and D; returns the first leaf that is not positive definite, or -1."""
    for k in range(k0, k1):
        a, b = leaf_start[k], leaf_start[k + 1]
        w = b - a
        m = leaf_n[k + 1] - leaf_n[k]
        A = np.zeros((w, w))
        for q in range(a_ptr[k], a_ptr[k + 1]):
            t = a_dst[q]
            A[t % w, t // w] = data[a_src[q]]
        B = np.zeros((m, w))
        for q in range(b_ptr[k], b_ptr[k + 1]):
            t = b_dst[q]
            B[t % m, t // m] = data[b_src[q]]
        L, d = _leaf_ldl(A, w)
        if d[0] <= 0.0:
            return k
        if m > 0:  # B L^-T with BLAS: L^-1 is small (w x w)
            B = np.dot(B, _unit_lower_inverse(L).T.copy())
        for t in range(w):
            out_d[a + t] = d[t]
            p = Lp[a + t]
            for i in range(t + 1, w):
                out_x[p] = L[i, t]
                p += 1
            for i in range(m):
                out_x[p] = B[i, t] / d[t]
                p += 1
    return -1


@njit(cache=True, nogil=True)
def _schur_update(c0, c1, leaf_start, leaf_n, nb, Lp, d0, Lx, d, S):
    """S -= sum over leaves of L_NK D_K L_NK' in the dense-block columns c0..c1-1 (lower triangle, F
    order); the leaves' columns of L and D must be written already."""
    for k in range(leaf_start.shape[0] - 1):
        a = leaf_start[k]
        w = leaf_start[k + 1] - a
        rows = nb[leaf_n[k]: leaf_n[k + 1]]
        m = rows.shape[0]
        s0 = np.searchsorted(rows, d0 + c0)
        s1 = np.searchsorted(rows, d0 + c1)
        if s1 <= s0:
            continue
        Yt = np.empty((w, m - s0))  # (rows s0.. of L_NK D^1/2)'
        for t in range(w):
            p = Lp[a + t] + (w - 1 - t)
            sd = np.sqrt(d[a + t])
            for i in range(s0, m):
                Yt[t, i - s0] = Lx[p + i] * sd
        # by panels of columns, only the rows from the panel's first on (the lower triangle and
        # a little more): U[j, i] is read along column j of S
        for j0 in range(0, s1 - s0, _PANEL):
            j1 = min(j0 + _PANEL, s1 - s0)
            U = np.dot(Yt[:, j0:j1].T.copy(), Yt[:, j0:].copy())
            for j in range(j0, j1):
                cj = rows[s0 + j] - d0
                for i in range(j, m - s0):
                    S[rows[s0 + i] - d0, cj] -= U[j - j0, i - j0]


@njit(cache=True, nogil=True)
def _zero_lower(S, c0, c1):
    """Zero columns c0..c1-1 of S's lower triangle."""
    nd = S.shape[0]
    for j in range(c0, c1):
        for i in range(j, nd):
            S[i, j] = 0.0


@njit(cache=True)
def _root_values(data, src, dst, S):
    """The dense block's entries of the matrix into S (zeroed)."""
    nd = S.shape[0]
    for q in range(src.shape[0]):
        t = dst[q]
        S[t % nd, t // nd] = data[src[q]]


@njit(cache=True)
def _root_columns(S, Lp, d0, out_x, out_d, columns):
    """D of the dense block from its Cholesky factor (lower triangle of S), and its unit-L columns
    when ``columns`` is set."""
    nd = S.shape[0]
    for j in range(nd):
        ljj = S[j, j]
        out_d[d0 + j] = ljj * ljj
        if columns:
            p = Lp[d0 + j]
            for i in range(j + 1, nd):
                out_x[p] = S[i, j] / ljj
                p += 1


@njit(cache=True)
def _star_rows(Lp, leaf_start, leaf_n, nb, d0, n):
    """Row indices of the star pattern (see StarFactor)."""
    Li = np.empty(Lp[n], dtype=np.int64)
    for k in range(leaf_start.shape[0] - 1):
        a, b = leaf_start[k], leaf_start[k + 1]
        for j in range(a, b):
            p = Lp[j]
            for i in range(j + 1, b):
                Li[p] = i
                p += 1
            for q in range(leaf_n[k], leaf_n[k + 1]):
                Li[p] = nb[q]
                p += 1
    for j in range(d0, n):
        p = Lp[j]
        for i in range(j + 1, n):
            Li[p] = i
            p += 1
    return Li


@njit(cache=True)
def _rank_in_leaf(rows, k_of, in_b, leaf_n, nb, n):
    """For entries in a leaf's dense rows: the position of the row among that leaf's dense rows."""
    where = np.full(n, -1, dtype=np.int64)
    out = np.full(rows.shape[0], -1, dtype=np.int64)
    cur = -1
    for e in range(rows.shape[0]):  # entries come column by column, so leaf by leaf
        if not in_b[e]:
            continue
        k = k_of[e]
        if k != cur:
            for q in range(leaf_n[k], leaf_n[k + 1]):
                where[nb[q]] = q - leaf_n[k]
            cur = k
        out[e] = where[rows[e]]
    return out


@njit(cache=True)
def _leaf_structure(indptr, indices, parent, d0):
    """Subtrees of the elimination tree below column d0: each column's leaf (numbered by the
    leaf's top column), the columns in leaf order, and each leaf's dense rows (rows >= d0 of its
    columns, sorted) as (pointers, rows)."""
    top = np.arange(d0)
    for j in range(d0 - 1, -1, -1):  # the leaf of a column is that of its parent below the dense block
        p = parent[j]
        if 0 <= p < d0:
            top[j] = top[p]
    label = np.full(d0, -1, dtype=np.int64)
    n_leaves = 0
    for j in range(d0):
        if top[j] == j:
            label[j] = n_leaves
            n_leaves += 1
    leaf = np.empty(d0, dtype=np.int64)
    for j in range(d0):
        leaf[j] = label[top[j]]
    ptr, order = counting_sort(leaf, n_leaves)  # columns leaf by leaf, in order within each
    n = indptr.shape[0] - 1
    stamp = np.full(n, -1, dtype=np.int64)
    rows = np.empty(indptr[d0], dtype=np.int64)
    rptr = np.zeros(n_leaves + 1, dtype=np.int64)
    owner = np.empty(indptr[d0], dtype=np.int64)
    k = 0
    for lf in range(n_leaves):
        for q in range(ptr[lf], ptr[lf + 1]):
            c = order[q]
            for p in range(indptr[c], indptr[c + 1]):
                r = indices[p]
                if r >= d0 and stamp[r] != lf:
                    stamp[r] = lf
                    rows[k] = r
                    owner[k] = lf
                    k += 1
        rptr[lf + 1] = k
    # each leaf's rows sorted: all rows in row order, then (stably) leaf by leaf; two linear
    # counting sorts, not a comparison sort per leaf (numba's sort is slow to compile)
    _, by_row = counting_sort(rows[:k] - d0, n - d0)
    _, by_leaf = counting_sort(owner[by_row], n_leaves)
    return ptr, order, rptr, rows[by_row[by_leaf]]


def _leaves(lower, parent, counts, d0):
    """Leaves below a dense block starting at column d0: (dense work, column order, leaf starts,
    dense rows of each leaf), or None when a leaf is too wide or too sparse."""
    n = lower.shape[0]
    starts, order, rptr, rows = _leaf_structure(lower.indptr.astype(np.int64), lower.indices.astype(np.int64),
                                                np.asarray(parent, dtype=np.int64), d0)
    sizes = np.diff(starts)
    if sizes.max() > MAX_LEAF:
        return None
    post = np.concatenate([order, np.arange(d0, n)])
    rows_of = [rows[a:b] for a, b in zip(rptr[:-1], rptr[1:])]
    m = np.diff(rptr)
    stored = int(np.sum(sizes * (sizes - 1) // 2 + sizes * m))
    if stored > (1.0 + LEAF_ZEROS) * max(int(counts[:d0].sum()) - d0, 1):
        return None
    work = float(np.sum(sizes * m * (sizes + m))) + float(n - d0) ** 3
    return work, post, starts, rows_of


def _sink_dense_columns(lower: sp.csc_matrix, d0: int, starts: np.ndarray, rows_of: list):
    """Dense-block columns that border one leaf only, with all their neighbours in the dense
    block among that leaf's dense rows, moved into the leaf (after its columns).  Eliminating
    such a column there adds no fill (its neighbours are the leaf's dense rows, dense already)
    and takes a column off the dense block, whose work grows with the cube of its width: a
    trial's fixed effect, say, borders only that trial's blocks, mothers and the intercept.

    ``lower`` is the lower pattern whose trailing columns from d0 are the dense block (as in the
    star's order).  Returns (d0, leaf starts, dense rows of each leaf, new order of the star's columns),
    or None when no column moves."""
    n = lower.shape[0]
    nd = n - d0
    n_leaves = len(rows_of)
    m = np.array([r.size for r in rows_of], dtype=np.int64)
    if m.sum() == 0:
        return None
    leaf = np.repeat(np.arange(n_leaves, dtype=np.int64), m)
    rows = np.concatenate(rows_of).astype(np.int64) - d0
    once = np.bincount(rows, minlength=nd)[rows] == 1  # dense-block columns bordering one leaf
    only = np.full(nd, -1, dtype=np.int64)
    only[rows[once]] = leaf[once]
    # a candidate's neighbours in the dense block must all be its leaf's dense rows (leaf-major keys)
    ri = lower.indices[lower.indptr[d0]:].astype(np.int64) - d0
    ci = np.repeat(np.arange(nd, dtype=np.int64), np.diff(lower.indptr[d0:]))
    keys = leaf * nd + rows  # sorted: leaves in order, rows sorted within each
    sink = only.copy()
    for a, b in ((ri, ci), (ci, ri)):
        hit = only[a] >= 0
        k = only[a[hit]] * nd + b[hit]
        pos = np.minimum(np.searchsorted(keys, k), keys.size - 1)
        sink[a[hit][keys[pos] != k]] = -1
    moving = sink >= 0
    per_leaf = np.bincount(sink[moving], minlength=n_leaves)
    sizes = np.diff(starts) + per_leaf
    if not moving.any() or sizes.max() > MAX_LEAF or nd - int(moving.sum()) < MIN_DENSE:
        return None
    # new order: each leaf's columns, then the dense-block columns sunk into it; then the rest
    cols = np.flatnonzero(moving)
    by_leaf = d0 + cols[np.argsort(sink[cols], kind="stable")]
    new_starts = np.zeros(n_leaves + 1, dtype=np.int64)
    np.cumsum(sizes, out=new_starts[1:])
    placed = np.zeros(n_leaves + 1, dtype=np.int64)
    np.cumsum(per_leaf, out=placed[1:])
    order = np.empty(n, dtype=np.int64)
    for k in range(n_leaves):
        a, b, c = starts[k], starts[k + 1], new_starts[k]
        order[c: c + (b - a)] = np.arange(a, b)
        order[c + (b - a): new_starts[k + 1]] = by_leaf[placed[k]: placed[k + 1]]
    stay = np.flatnonzero(~moving)
    new_start = int(new_starts[-1])
    order[new_start:] = d0 + stay
    where = np.full(nd, -1, dtype=np.int64)  # a remaining dense-block column's new position
    where[stay] = new_start + np.arange(stay.size)
    new_rows = [where[r - d0][where[r - d0] >= 0] for r in rows_of]
    return new_start, new_starts, new_rows, order


class StarFactor:
    """Numeric LDL' on a star-shaped factor pattern (see the module docstring); the same
    interface as the sparse backends (``factorize`` returns an :class:`LDL`)."""

    name = "star"

    def __init__(self, lower: sp.csc_matrix, d0: int, leaf_start: np.ndarray, leaf_rows: list):
        n = lower.shape[0]
        self.n, self.dense_start = n, d0
        self.pattern = lower  # the lower pattern in the star's order
        self.leaf_start = leaf_start.astype(np.int64)
        self.leaf_n = np.zeros(len(leaf_rows) + 1, dtype=np.int64)
        np.cumsum([r.size for r in leaf_rows], out=self.leaf_n[1:])
        self.nb = np.concatenate(leaf_rows).astype(np.int64) if leaf_rows else np.empty(0, np.int64)
        # the factor's pattern: leaf column j holds rows j+1..b-1 and the leaf's dense rows; a
        # dense-block column all rows below it
        counts = np.empty(n, dtype=np.int64)
        leaf_of = np.full(n, -1, dtype=np.int64)
        for k in range(len(leaf_rows)):
            a, b = self.leaf_start[k], self.leaf_start[k + 1]
            leaf_of[a:b] = k
            counts[a:b] = (b - 1 - np.arange(a, b)) + leaf_rows[k].size
        counts[d0:] = n - 1 - np.arange(d0, n)
        self.Lp = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=self.Lp[1:])
        self.Li = _star_rows(self.Lp, self.leaf_start, self.leaf_n, self.nb, d0, n)
        # where each entry of the matrix goes: the dense block, a leaf's block A or its rows B
        rows = lower.indices.astype(np.int64)
        cols = np.repeat(np.arange(n, dtype=np.int64), np.diff(lower.indptr))
        nd = n - d0
        in_dense = cols >= d0
        self._dense_src = np.flatnonzero(in_dense)
        self._dense_dst = (rows[in_dense] - d0) + nd * (cols[in_dense] - d0)
        k_of = leaf_of[cols]
        in_a = ~in_dense & (rows < d0)
        in_b = ~in_dense & (rows >= d0)
        if np.any(leaf_of[rows[in_a]] != k_of[in_a]):  # pragma: no cover - checked by detect()
            raise ValueError("star pattern: an entry joins two leaves")
        w_of = np.diff(self.leaf_start)[k_of]
        a_local = (rows - self.leaf_start[k_of]) + w_of * (cols - self.leaf_start[k_of])
        self._a_src, self._a_dst, self._a_ptr = self._by_leaf(np.flatnonzero(in_a), k_of, a_local)
        b_row = _rank_in_leaf(rows, k_of, in_b, self.leaf_n, self.nb, n)
        m_of = np.diff(self.leaf_n)[k_of]
        b_local = b_row + m_of * (cols - self.leaf_start[k_of])
        self._b_src, self._b_dst, self._b_ptr = self._by_leaf(np.flatnonzero(in_b), k_of, b_local)
        # only its lower triangle is written and read; zeros above, so that the float32 copy of the
        # whole dense block (rough selected inverse) casts no garbage (an overflow warning, nothing wrong)
        self._S = np.zeros((nd, nd), order="F")
        self._leaf_chunks, self._dense_chunks = self._chunks(get_num_threads())
        self._zero_chunks = work_ranges(nd - np.arange(nd), get_num_threads()) or [(0, 0)]
        self._dense = None
        self.perm = np.arange(n, dtype=np.int64)
        self.pinv = self.perm

    def _chunks(self, k: int) -> tuple[list, list]:
        """Ranges of leaves, and of dense-block columns, of about equal work for k threads."""
        w, m = np.diff(self.leaf_start), np.diff(self.leaf_n)
        leaves = work_ranges((m + w) * w * w + 1.0, k)
        # dense-block column j gets, from each leaf holding it, w (rows below j among the leaf's rows) updates
        nd = self.n - self.dense_start
        leaf = np.repeat(np.arange(w.size), m)
        below = self.leaf_n[leaf + 1] - np.arange(self.nb.size)  # rows from this one to the leaf's last
        cols = work_ranges(np.bincount(self.nb - self.dense_start, weights=w[leaf] * below, minlength=nd), k)
        return leaves or [(0, 0)], cols or [(0, 0)]

    def _by_leaf(self, entries: np.ndarray, k_of: np.ndarray, local: np.ndarray):
        ptr, order = counting_sort(k_of[entries], self.leaf_start.size - 1)
        src = entries[order].astype(np.int64, copy=False)
        return src, local[src].astype(np.int64, copy=False), ptr

    @classmethod
    def detect(cls, lower: sp.csc_matrix, symbolic: tuple | None = None):
        """A StarFactor for this pattern (lower triangle, sorted rows) and the order of its
        columns it needs (subtrees of the elimination tree made contiguous; the factor's fill
        is unchanged), or (None, None) when the factor is not star-shaped with a dense block of at
        least MIN_DENSE columns.  ``symbolic`` is the (elimination tree, column counts) of the
        factor in this order when already known.

        The dense block is a trailing set of columns that is dense but for a few explicit zeros (at
        most DENSE_ZEROS); a leaf is a subtree of the elimination tree hanging off the dense block.  Of
        the dense blocks that give valid leaves, the one with the least dense work is taken."""
        n = lower.shape[0]
        parent, counts = symbolic if symbolic is not None else symbolic_counts(lower)
        width = n - np.arange(n)  # entries of a dense column j, diagonal included
        zeros = np.cumsum((width - counts)[::-1])[::-1]
        dense = np.cumsum(width[::-1])[::-1]
        best = None
        for tol in (DENSE_ZEROS / 50.0, DENSE_ZEROS / 5.0, DENSE_ZEROS):
            ok = np.flatnonzero(zeros <= tol * dense)
            d0 = int(ok[0]) if ok.size else n
            if n - d0 < MIN_DENSE or d0 == 0 or (best is not None and d0 == best[1]):
                continue
            found = _leaves(lower, parent, counts, d0)
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], d0, *found[1:])
        if best is None:
            return None, None
        _, d0, post, starts, rows_of = best
        moved = _sink_dense_columns(lower, d0, starts, rows_of)  # the dense block keeps its place in post
        if moved is not None:
            d0, starts, rows_of, order = moved
            post = post[order]
        return cls(permute_lower(lower, post), d0, starts, rows_of), post

    def factorize(self, data: np.ndarray, out_x: np.ndarray | None = None,
                  out_d: np.ndarray | None = None, dense_columns: bool = True) -> LDL:
        """Factor the matrix with these lower-triangle values (in the analysed pattern).

        With ``dense_columns=False`` the dense block's unit-L columns are not written to the factor's
        ``Lx`` (a caller that works with :meth:`dense_factor` does not need them; they can be
        written later by :meth:`write_dense_columns`)."""
        data = np.ascontiguousarray(data, dtype=float)
        Lx = np.empty(self.Li.size) if out_x is None else out_x
        d = np.empty(self.n) if out_d is None else out_d
        S = self._S  # S = the dense block of the matrix (lower triangle; the rest is not read)
        in_parallel(_zero_lower, [(S, c0, c1) for c0, c1 in self._zero_chunks])
        _root_values(data, self._dense_src, self._dense_dst, S)
        # two passes, each split between threads: the leaves' own columns, then their updates of
        # the dense block, by ranges of dense-block columns (so that no two threads write one entry)
        args = (data, self.leaf_start, self.leaf_n, self._a_src, self._a_dst, self._a_ptr, self._b_src,
                self._b_dst, self._b_ptr, self.Lp, Lx, d)
        bad = in_parallel(_leaf_columns, [(k0, k1, *args) for k0, k1 in self._leaf_chunks])
        if max(bad) >= 0:
            raise NotPositiveDefinite("the mixed-model equations are not positive definite")
        in_parallel(_schur_update, [(c0, c1, self.leaf_start, self.leaf_n, self.nb, self.Lp, self.dense_start, Lx,
                                     d, S) for c0, c1 in self._dense_chunks])
        with dense_threads(lapack_library()):
            c, info = lapack.dpotrf(S, lower=1, overwrite_a=1, clean=0)
        if info != 0:
            raise NotPositiveDefinite("the mixed-model equations are not positive definite")
        _root_columns(c, self.Lp, self.dense_start, Lx, d, dense_columns)
        self._dense = c
        return LDL(self.perm, self.pinv, self.Lp, self.Li, Lx, d)

    def write_dense_columns(self, out_x: np.ndarray, out_d: np.ndarray) -> None:
        """Write the dense block's unit-L columns and D of the last factorisation into ``out_x`` and
        ``out_d`` (the arrays given to :meth:`factorize`)."""
        _root_columns(self._dense, self.Lp, self.dense_start, out_x, out_d, True)

    def dense_factor(self) -> np.ndarray | None:
        """The dense block's Cholesky factor (lower triangle, F order) of the last factorisation, to read
        only; None before the first."""
        return self._dense
