"""Fill-reducing orderings chosen by a cost model of the supernodal factorisation.

Generic minimum-degree orderings minimise fill, but on mixed-model equations they tend to
eliminate a crossed factor (mothers, say) as many narrow columns that each update a large dense
block, which is slow even when the fill is small.  Orderings that keep the levels of one term
together form wide supernodes that run at BLAS speed.  We compare candidates with a symbolic
factorisation (elimination tree and column counts, O(nnz(L))) and a simple time model:

    time = sum over supernodes of  flops / rate(width)  +  scatter(m^2)

with BLAS speed for wide supernodes and scalar speed for narrow ones.
"""
from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
from numba import njit

from .threads import in_parallel

__all__ = ["symbolic_counts", "predicted_cost", "candidate_orders", "choose_order", "etree_counts"]

_BLAS_RATE, _SCALAR_RATE, _SCATTER_RATE = 25e9, 0.5e9, 2e8


@njit(cache=True, nogil=True)
def _etree_counts(n, Up, Ui):
    """Elimination tree and column counts (with diagonal) of the Cholesky factor.

    (Up, Ui): the lower triangle stored by rows, i.e. row i holds the k <= i with A[i, k] != 0.
    """
    parent = np.full(n, -1, dtype=np.int64)
    ancestor = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        for p in range(Up[i], Up[i + 1]):
            k = Ui[p]
            while k != -1 and k < i:
                nxt = ancestor[k]
                ancestor[k] = i
                if nxt == -1:
                    parent[k] = i
                k = nxt
    counts = np.ones(n, dtype=np.int64)
    mark = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        mark[i] = i
        for p in range(Up[i], Up[i + 1]):
            j = Ui[p]
            while j != -1 and j < i and mark[j] != i:
                mark[j] = i
                counts[j] += 1
                j = parent[j]
    return parent, counts


etree_counts = _etree_counts  # for other stages (the aliasing check of a wide X)


@njit(cache=True, nogil=True)
def _relax_ok(width, zeros, total):
    """CHOLMOD's default relaxed amalgamation rule (nrelax 4/16/48, zrelax 0.8/0.1/0.05)."""
    if width <= 4:
        return True
    frac = zeros / max(total, 1.0)
    if width <= 16:
        return frac < 0.8
    if width <= 48:
        return frac < 0.1
    return frac < 0.05


@njit(cache=True, nogil=True)
def relaxed_supernode(parent, counts, f):
    """The supernode that starts at column ``f`` as CHOLMOD's relaxed amalgamation merges the
    chain of the elimination tree there: (its last column, the entries it stores, explicit zeros
    included)."""
    n = parent.shape[0]
    j = f
    stored = float(counts[j])  # entries of the trapezoid, explicit zeros included
    nz = float(counts[j])  # true nonzeros
    while j + 1 < n and parent[j] == j + 1:
        # columns f..j+1 stored over struct(j+1): each old column gains the rows struct(j)
        # lacks, and column j+1 adds counts[j+1]
        grow = counts[j + 1] + 1 - counts[j]
        ts = stored + (j + 1 - f) * grow + counts[j + 1]
        tn = nz + counts[j + 1]
        if not _relax_ok(j + 2 - f, ts - tn, ts):
            break
        stored, nz = ts, tn
        j += 1
    return j, stored


@njit(cache=True, nogil=True)
def _cost(parent, counts, blas_rate, scalar_rate, scatter_rate):
    """Predicted time of a supernodal factorisation plus selected inverse.

    Supernodes are chains of the elimination tree merged as CHOLMOD's relaxed amalgamation
    would (a few explicit zeros are allowed for wider, BLAS-friendly blocks).
    """
    n = parent.shape[0]
    total = 0.0
    j = 0
    while j < n:
        f = j
        j, _ = relaxed_supernode(parent, counts, f)
        w = j - f + 1
        m = counts[j] - 1
        flops = w * w * w / 3.0 + w * w * m + w * m * m
        rate = blas_rate if w >= 8 else scalar_rate
        total += 3.0 * flops / rate + m * m / scatter_rate  # factor plus the selected inverse
        j += 1
    return total


@njit(cache=True, nogil=True)
def permuted_rows(Cp, Ci, pos):
    """Row-wise lower structure of P A P' (row pos[r] of the result is row r of A): for each
    row i, the columns k < i with an entry (unsorted; the tree and the counts do not need it)."""
    n = Cp.shape[0] - 1
    Up = np.zeros(n + 1, dtype=np.int64)
    for c in range(n):
        for p in range(Cp[c], Cp[c + 1]):
            a, b = pos[Ci[p]], pos[c]
            if a != b:
                Up[max(a, b) + 1] += 1
    for i in range(n):
        Up[i + 1] += Up[i]
    Ui = np.empty(Up[n], dtype=np.int64)
    fill = Up[:-1].copy()
    for c in range(n):
        for p in range(Cp[c], Cp[c + 1]):
            a, b = pos[Ci[p]], pos[c]
            if a != b:
                i = max(a, b)
                Ui[fill[i]] = min(a, b)
                fill[i] += 1
    return Up, Ui


@njit(cache=True, nogil=True)
def _symbolic_cost(Cp, Ci, pos, blas_rate, scalar_rate, scatter_rate):
    """Elimination tree, column counts and predicted cost of the factor in the order ``pos``."""
    Up, Ui = permuted_rows(Cp, Ci, pos)
    parent, counts = _etree_counts(Cp.shape[0] - 1, Up, Ui)
    return parent, counts, _cost(parent, counts, blas_rate, scalar_rate, scatter_rate)


def _position(order: np.ndarray) -> np.ndarray:
    """Where each unknown goes in ``order`` (the inverse permutation)."""
    pos = np.empty(order.size, dtype=np.int64)
    pos[order] = np.arange(order.size, dtype=np.int64)
    return pos


def symbolic_counts(lower: sp.csc_matrix, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Elimination tree and column counts of the factor of the matrix with this lower pattern,
    taken in ``order`` (column k is ``order[k]`` of the matrix) when given."""
    n = lower.shape[0]
    pos = np.arange(n, dtype=np.int64) if order is None else _position(np.asarray(order, dtype=np.int64))
    Up, Ui = permuted_rows(lower.indptr.astype(np.int64), lower.indices.astype(np.int64), pos)
    return _etree_counts(n, Up, Ui)


def predicted_cost(lower: sp.csc_matrix, order: np.ndarray | None = None) -> float:
    """Predicted seconds for one factorisation and selected inverse in this order."""
    n = lower.shape[0]
    pos = np.arange(n, dtype=np.int64) if order is None else _position(np.asarray(order, dtype=np.int64))
    return float(_symbolic_cost(lower.indptr.astype(np.int64), lower.indices.astype(np.int64), pos, _BLAS_RATE,
                                _SCALAR_RATE, _SCATTER_RATE)[2])


@njit(cache=True)
def _permuted_csc(Cp, Ci, pos):
    """CSC (sorted rows) of the lower pattern of P A P': the row lists of the permuted matrix
    (from permuted_rows) turned into columns, which receive their rows in increasing order."""
    n = Cp.shape[0] - 1
    Up, Ui = permuted_rows(Cp, Ci, pos)
    diag = np.zeros(n, dtype=np.int64)
    for c in range(n):
        for p in range(Cp[c], Cp[c + 1]):
            if Ci[p] == c:
                diag[pos[c]] = 1
    Qp = np.zeros(n + 1, dtype=np.int64)
    for k in range(n):
        Qp[k + 1] = diag[k]
    for q in range(Ui.shape[0]):
        Qp[Ui[q] + 1] += 1
    for k in range(n):
        Qp[k + 1] += Qp[k]
    Qi = np.empty(Qp[n], dtype=np.int64)
    fill = Qp[:-1].copy()
    for k in range(n):  # the diagonal leads its column
        if diag[k]:
            Qi[fill[k]] = k
            fill[k] += 1
    for i in range(n):
        for q in range(Up[i], Up[i + 1]):
            k = Ui[q]
            Qi[fill[k]] = i
            fill[k] += 1
    return Qp, Qi


def permute_lower(lower: sp.csc_matrix, order: np.ndarray) -> sp.csc_matrix:
    """Lower pattern (sorted rows) of P A P' where row/column k of the result is ``order[k]`` of A."""
    n = lower.shape[0]
    pos = _position(np.asarray(order, dtype=np.int64))
    Qp, Qi = _permuted_csc(lower.indptr.astype(np.int64), lower.indices.astype(np.int64), pos)
    out = sp.csc_matrix((np.ones(Qi.size), Qi, Qp), shape=(n, n))
    out.has_sorted_indices = True
    return out


def candidate_orders(groups: np.ndarray | None, max_perm_groups: int = 3, small: float = 0.02,
                     degree: np.ndarray | None = None) -> list[np.ndarray]:
    """Orders that keep each group (term) together, with the group of the largest label (the
    fixed effects) last.  Groups smaller than ``small`` of all unknowns go first in every
    candidate; the others are permuted (all orders for up to ``max_perm_groups`` of them, else
    increasing and decreasing label order and, given each unknown's ``degree``, increasing mean
    degree: terms nested in a few levels of another, such as contemporary groups within trials,
    before terms that cross them all)."""
    if groups is None:
        return []
    groups = np.asarray(groups)
    labels, sizes = np.unique(groups, return_counts=True)
    members = {g: np.flatnonzero(groups == g) for g in labels}
    last = labels[-1]
    lead = [g for g, k in zip(labels[:-1], sizes[:-1]) if k < small * groups.size]
    movable = [g for g, k in zip(labels[:-1], sizes[:-1]) if k >= small * groups.size]
    if len(movable) <= max_perm_groups:
        perms = list(itertools.permutations(movable))
    else:
        perms = [tuple(movable), tuple(reversed(movable))]
        if degree is not None:
            by_degree = tuple(sorted(movable, key=lambda g: float(degree[members[g]].mean())))
            if by_degree not in perms:
                perms.append(by_degree)
    return [np.concatenate([members[g] for g in lead + list(p) + [last]]) for p in perms]


def choose_order(lower: sp.csc_matrix, groups: np.ndarray | None, extra: list | None = None):
    """Pick the cheapest of the grouped candidate orders and any ``extra`` ones (e.g. AMD).

    Returns (order, predicted seconds, table of (name, cost), (parent, counts) of the factor in
    that order).
    """
    degree = None
    if groups is not None:
        Cp = lower.indptr.astype(np.int64)
        degree = np.diff(Cp) + np.bincount(lower.indices, minlength=lower.shape[0])  # with the diagonal twice
    cands = [(f"groups{i}", o) for i, o in enumerate(candidate_orders(groups, degree=degree))]
    cands += list(extra or [])
    if not cands:
        n = lower.shape[0]
        return np.arange(n), float("nan"), [], symbolic_counts(lower)
    Cp, Ci = lower.indptr.astype(np.int64), lower.indices.astype(np.int64)
    # the candidates' symbolic factorisations are independent: one per thread (compiled, no GIL)
    done = in_parallel(_symbolic_cost, [(Cp, Ci, _position(np.asarray(o, dtype=np.int64)), _BLAS_RATE, _SCALAR_RATE,
                                         _SCATTER_RATE) for _, o in cands])
    table = [(name, float(cost), o, (parent, counts)) for (name, o), (parent, counts, cost) in zip(cands, done)]
    best = min(table, key=lambda t: t[1])
    return best[2], best[1], [(t[0], t[1]) for t in table], best[3]
