"""Absorption: eliminate an independent set of low-degree unknowns before the sparse factor.

Mixed-model equations often hold a large set of unknowns that never meet each other in a
record (e.g. the levels of ``Trial:Mother``): their block of C is diagonal.  Eliminating
them first is exact and cheap (a Schur complement with a diagonal inverse); the sparse
factorisation then works on the much smaller reduced matrix

    C_RR - C_RA D_A^-1 C_AR,

and the factor of C is the absorbed columns (``C_RA D_A^-1`` with diagonal ``D_A``) followed by
the factor of the reduced matrix.  This is the classical absorption of a factor in animal
breeding programs, chosen here from the pattern alone.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import get_num_threads, njit, prange

from .._compiled import counting_sort, sort_rows
from .ordering import permuted_rows
from .threads import in_parallel, work_ranges

__all__ = ["choose_absorbed", "enough_absorbed", "AbsorbPlan"]


@njit(cache=True)
def _independent_set(order, deg, Cp, Ci, Rp, Rj, cap):
    n = deg.shape[0]
    blocked = np.zeros(n, dtype=np.bool_)
    take = np.zeros(n, dtype=np.bool_)
    for j in order:
        if deg[j] > cap:
            break
        if blocked[j]:
            continue
        take[j] = True
        blocked[j] = True
        for p in range(Cp[j], Cp[j + 1]):
            blocked[Ci[p]] = True
        for p in range(Rp[j], Rp[j + 1]):
            blocked[Rj[p]] = True
    return take


def choose_absorbed(lower: sp.csc_matrix, cap: int = 64, min_fraction: float = 0.05) -> np.ndarray:
    """Unknowns to absorb: a greedy independent set of columns of degree <= ``cap``, lowest
    degree first.  Returns an empty array when the set would be too small to matter."""
    n = lower.shape[0]
    Cp, Ci = lower.indptr.astype(np.int64), lower.indices.astype(np.int64)
    Rp, Rj = permuted_rows(Cp, Ci, np.arange(n, dtype=np.int64))  # row r: the columns c < r it meets
    deg = np.diff(Cp) - 1 + np.diff(Rp)  # neighbours below and above, diagonal excluded
    order = np.argsort(deg, kind="stable").astype(np.int64)
    take = _independent_set(order, deg, Cp, Ci, Rp, Rj, cap)
    if not enough_absorbed(int(take.sum()), n, min_fraction):
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(take)


def enough_absorbed(k: int, n: int, min_fraction: float = 0.05) -> bool:
    """Whether absorbing k of n unknowns is worth a plan: not too few, and not all of them."""
    return max(16, min_fraction * n) <= k < n


@njit(cache=True)
def _lists(owner, target, k):
    """Targets grouped by owner (0..k-1): pointers and the grouped targets."""
    ptr, order = counting_sort(owner, k)
    return ptr, target[order]


@njit(cache=True)
def _by_owner_sorted(owner, key, k):
    """Entries grouped by owner (0..k-1), by key within each owner (an insertion sort: an
    absorbed unknown has few neighbours): pointers and the order of the entries."""
    ptr, order = counting_sort(owner, k)
    for j in range(k):
        for a in range(ptr[j] + 1, ptr[j + 1]):
            e = order[a]
            b = a - 1
            while b >= ptr[j] and key[order[b]] > key[e]:
                order[b + 1] = order[b]
                b -= 1
            order[b + 1] = e
    return ptr, order


@njit(cache=True)
def _column_rows(c, Rp, Ri, Bp, Bj, Ap, Ai, marker, out, k0):
    """Distinct rows r >= c of reduced column c; written to out[k0:] unless out is empty."""
    write = out.shape[0] > 0
    marker[c] = c
    if write:
        out[k0] = c
    n_c = 1
    for q in range(Rp[c], Rp[c + 1]):
        r = Ri[q]
        if marker[r] != c:
            marker[r] = c
            if write:
                out[k0 + n_c] = r
            n_c += 1
    for q in range(Bp[c], Bp[c + 1]):
        j = Bj[q]
        for t in range(Ap[j], Ap[j + 1]):
            r = Ai[t]
            if r > c and marker[r] != c:
                marker[r] = c
                if write:
                    out[k0 + n_c] = r
                n_c += 1
    return n_c


@njit(cache=True)
def _reduced_lists(m, k, owner, nb, rr_rows, rr_cols):
    """The lists _column_rows walks, and the work (rows visited) up to each column."""
    Ap, Ai = _lists(owner, nb, k)  # neighbours of each absorbed unknown
    Bp, Bj = _lists(nb, owner, m)  # absorbed unknowns next to each remaining one
    Rp, Ri = _lists(np.minimum(rr_rows, rr_cols), np.maximum(rr_rows, rr_cols), m)
    work = np.zeros(m + 1)
    for c in range(m):
        w = Rp[c + 1] - Rp[c]
        for q in range(Bp[c], Bp[c + 1]):
            w += Ap[Bj[q] + 1] - Ap[Bj[q]]
        work[c + 1] = work[c] + w
    return Ap, Ai, Bp, Bj, Rp, Ri, work


@njit(cache=True, nogil=True)
def _reduced_columns(c0, c1, m, Rp, Ri, Bp, Bj, Ap, Ai, Cp, Ci):
    """Columns c0..c1-1 of the reduced pattern: their row counts into Cp[c + 1] when Ci is
    empty, else their rows (unsorted) into Ci from Cp[c]."""
    marker = np.full(m, -1, dtype=np.int64)
    for c in range(c0, c1):
        if Ci.shape[0] == 0:
            Cp[c + 1] = _column_rows(c, Rp, Ri, Bp, Bj, Ap, Ai, marker, Ci, 0)
        else:
            _column_rows(c, Rp, Ri, Bp, Bj, Ap, Ai, marker, Ci, Cp[c])


def _reduced_lower(m, k, owner, nb, rr_rows, rr_cols):
    """Lower pattern (CSC, sorted rows, full diagonal) of the reduced matrix: the rest-rest entries
    of C and every pair of neighbours of an absorbed unknown (the fill of absorbing it).  Two
    passes over the columns, each split between threads by work: count the distinct rows, then
    list them; then the rows are sorted within every column (linear, :func:`sort_rows`)."""
    Ap, Ai, Bp, Bj, Rp, Ri, work = _reduced_lists(m, k, owner, nb, rr_rows, rr_cols)
    ranges = work_ranges(work, get_num_threads(), cumulative=True)
    Cp = np.zeros(m + 1, dtype=np.int64)
    args = (m, Rp, Ri, Bp, Bj, Ap, Ai, Cp)
    in_parallel(_reduced_columns, [(a, b, *args, np.empty(0, dtype=np.int64)) for a, b in ranges])
    np.cumsum(Cp, out=Cp)
    Ci = np.empty(Cp[m], dtype=np.int64)
    in_parallel(_reduced_columns, [(a, b, *args, Ci) for a, b in ranges])
    sort_rows(Cp, Ci, np.empty(Ci.size))  # a pattern: the values carried along are not used
    return Cp, Ci


@njit(cache=True)
def _pair_count(Sp):
    total = 0
    for j in range(Sp.shape[0] - 1):
        m = Sp[j + 1] - Sp[j]
        total += m * (m + 1) // 2
    return total


@njit(cache=True)
def _find_all(Cp, Ci, rows, cols):
    out = np.empty(rows.shape[0], dtype=np.int64)
    for e in range(rows.shape[0]):
        lo, hi, r = Cp[cols[e]], Cp[cols[e] + 1], rows[e]
        while lo < hi:
            mid = (lo + hi) // 2
            if Ci[mid] < r:
                lo = mid + 1
            else:
                hi = mid
        out[e] = lo
    return out


@njit(cache=True)  # prange runs serially: parallel=True took seconds to compile for milliseconds
def _pair_targets(Sp, Si, Cp, Ci, total):
    """Position in the reduced pattern of every pair (a, b), a >= b, of rows of each absorbed
    column, in the order _absorb_columns visits them (column j, then b, then a).

    Done column by column of the reduced pattern: the rows of column b are spread into a map
    (row -> position), and every absorbed column holding b looks its rows a >= b up in it.
    Chunks of columns run in parallel, each with its own map."""
    ncol = Sp.shape[0] - 1
    n = Cp.shape[0] - 1
    first = np.zeros(ncol + 1, dtype=np.int64)
    for j in range(ncol):
        m = Sp[j + 1] - Sp[j]
        first[j + 1] = first[j] + m * (m + 1) // 2
    # for each reduced column b: the (absorbed column, position of b in it) pairs holding it
    hp = np.zeros(n + 1, dtype=np.int64)
    for y in range(Si.shape[0]):
        hp[Si[y] + 1] += 1
    for b in range(n):
        hp[b + 1] += hp[b]
    hj = np.empty(Si.shape[0], dtype=np.int64)
    hy = np.empty(Si.shape[0], dtype=np.int64)
    fill = hp[:-1].copy()
    for j in range(ncol):
        for y in range(Sp[j], Sp[j + 1]):
            b = Si[y]
            hj[fill[b]] = j
            hy[fill[b]] = y - Sp[j]
            fill[b] += 1
    out = np.empty(total, dtype=np.int64)
    # column ranges of equal work (pairs written), so that the threads' static shares balance
    work = np.zeros(n + 1, dtype=np.int64)
    for b in range(n):
        w = Cp[b + 1] - Cp[b]
        for h in range(hp[b], hp[b + 1]):
            w += Sp[hj[h] + 1] - Sp[hj[h]] - hy[h]
        work[b + 1] = work[b] + w
    nchunk = 32
    cut = np.searchsorted(work, np.linspace(0.0, float(work[n]), nchunk + 1))
    cut[0], cut[nchunk] = 0, n
    for ch in prange(nchunk):
        where = np.full(n, -1, dtype=np.int64)
        for b in range(cut[ch], cut[ch + 1]):
            for p in range(Cp[b], Cp[b + 1]):
                where[Ci[p]] = p
            for h in range(hp[b], hp[b + 1]):
                j, y = hj[h], hy[h]
                m = Sp[j + 1] - Sp[j]
                k = first[j] + y * m - y * (y - 1) // 2  # pairs of the rows before y come first
                for x in range(y, m):
                    out[k] = where[Si[Sp[j] + x]]
                    k += 1
    return out


@njit(cache=True, nogil=True)
def _absorb_columns(j0, j1, k0, Sp, src, data, d, target, lx, out):
    """Absorbed columns j0..j1-1: lx = their unit-L values (C_Nj / d_j), and out[target[k]] -=
    l_a l_b d_j over their pairs (k from k0, in _pair_targets order).  ``out`` is this range's
    own buffer: other ranges write the same entries."""
    k = k0
    for j in range(j0, j1):
        dj = d[j]
        for y in range(Sp[j], Sp[j + 1]):
            lx[y] = data[src[y]] / dj
        for y in range(Sp[j], Sp[j + 1]):
            ly = lx[y] * dj
            for x in range(y, Sp[j + 1]):
                out[target[k]] -= ly * lx[x]
                k += 1


class AbsorbPlan:
    """Symbolic part of absorbing ``absorbed`` unknowns of a matrix with lower pattern ``lower``.

    After construction, ``reduced_lower(order)`` gives the pattern of the reduced matrix in a
    chosen order of the remaining unknowns, and :meth:`reduce` turns C's data into
    (absorbed L values, absorbed D, reduced data).
    """

    def __init__(self, lower: sp.csc_matrix, absorbed: np.ndarray):
        n = lower.shape[0]
        self.n = n
        self.absorbed = np.asarray(absorbed, dtype=np.int64)
        keep = np.ones(n, dtype=bool)
        keep[self.absorbed] = False
        self.rest = np.flatnonzero(keep)
        self.rank = np.full(n, -1, dtype=np.int64)  # unknown -> index among the rest
        self.rank[self.rest] = np.arange(self.rest.size)
        rows = lower.indices.astype(np.int64)
        cols = np.repeat(np.arange(n, dtype=np.int64), np.diff(lower.indptr))
        self._diag_pos = np.empty(n, dtype=np.int64)
        on = rows == cols
        self._diag_pos[rows[on]] = np.flatnonzero(on)
        # structure of each absorbed column: its neighbours (all in the rest), with C positions
        is_abs = ~keep
        e_abs_col = is_abs[cols] & ~on
        e_abs_row = is_abs[rows] & ~on
        j = np.concatenate([cols[e_abs_col], rows[e_abs_row]])
        nb = np.concatenate([rows[e_abs_col], cols[e_abs_row]])
        pos = np.concatenate([np.flatnonzero(e_abs_col), np.flatnonzero(e_abs_row)])
        slot = np.full(n, -1, dtype=np.int64)
        slot[self.absorbed] = np.arange(self.absorbed.size)
        self._S_owner = slot[j]
        self._S_nb = self.rank[nb]
        self._S_src = pos
        # the rest-rest part of C
        rr = keep[rows] & keep[cols]
        self._rr_rows, self._rr_cols = self.rank[rows[rr]], self.rank[cols[rr]]
        self._rr_src = np.flatnonzero(rr)

    def reduced_pattern(self) -> sp.csc_matrix:
        """Lower pattern of the reduced matrix, in the natural order of the remaining unknowns."""
        m = self.rest.size
        Cp, Ci = _reduced_lower(m, self.absorbed.size, self._S_owner, self._S_nb, self._rr_rows, self._rr_cols)
        pat = sp.csc_matrix((np.ones(Ci.size), Ci, Cp), shape=(m, m))
        pat.has_sorted_indices = True
        return pat

    def _structure(self, position: np.ndarray):
        """CSC-like (Sp, Si, src) of the absorbed columns with neighbours mapped by ``position``
        and sorted by it."""
        nb = position[self._S_nb]
        Sp, order = _by_owner_sorted(self._S_owner, nb, self.absorbed.size)
        return Sp, nb[order], self._S_src[order]

    def prepare(self, position: np.ndarray, reduced_lower: sp.csc_matrix) -> None:
        """Fix the order of the reduced unknowns: ``position[r]`` is where rest-unknown r sits in
        ``reduced_lower`` (the pattern handed to the sparse factorisation)."""
        self.Sp, self.Si, self.src = self._structure(position)
        Cp = reduced_lower.indptr.astype(np.int64)
        Ci = reduced_lower.indices.astype(np.int64)
        self.target = _pair_targets(self.Sp, self.Si, Cp, Ci, _pair_count(self.Sp))
        r, c = position[self._rr_rows], position[self._rr_cols]
        self.rr_target = _find_all(Cp, Ci, np.maximum(r, c), np.minimum(r, c))
        self.reduced_nnz = reduced_lower.nnz
        # absorbed columns in ranges of about equal pairs, one per thread, each with its own
        # buffer for the reduced data (ranges update the same entries)
        m = np.diff(self.Sp)
        pairs = np.concatenate([[0], np.cumsum(m * (m + 1) // 2)])
        self._ranges = [(a, b, int(pairs[a])) for a, b in work_ranges(pairs, get_num_threads(), cumulative=True)]
        self._bufs = [np.empty(self.reduced_nnz) for _ in self._ranges[1:]]

    def diagonal_positions(self) -> np.ndarray:
        """Where C's data holds the diagonal entry of each absorbed unknown."""
        return self._diag_pos[self.absorbed]

    def reduce(self, data: np.ndarray):
        """From C's lower-triangle data: absorbed unit-L values, absorbed D, reduced data."""
        d = data[self.diagonal_positions()]
        lx = np.empty(self.src.size)
        out = np.zeros(self.reduced_nnz)
        out[self.rr_target] = data[self._rr_src]
        for b in self._bufs:
            b[:] = 0.0
        args = (self.Sp, self.src, data, d, self.target, lx)
        in_parallel(_absorb_columns, [(j0, j1, k0, *args, buf)
                                      for (j0, j1, k0), buf in zip(self._ranges, [out] + self._bufs)])
        for b in self._bufs:
            out += b
        return lx, d, out
