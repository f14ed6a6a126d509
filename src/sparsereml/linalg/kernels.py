"""Compiled kernels on an LDL' factor: supernodes, triangular solves, and where the selected
inverse (``selinv.py``) holds each entry of C.

The factor is held as a unit lower-triangular L without its diagonal, in CSC form
with sorted row indices (``Lp``, ``Li``, ``Lx``), and the diagonal ``d``.  The
selected inverse Z = C^-1 on the pattern of L is held the same way: ``Zd`` (the
diagonal) and ``Zx`` (aligned with ``Li``).

The kernels that run in every iteration split their work between plain threads
(:func:`threads.in_parallel`), not numba's ``prange``: the OpenMP workers behind prange keep
spinning for milliseconds after a parallel region, and took a core from the threaded
absorption, leaves and LAPACK calls of the next factorisation (benchmarks/RESULTS.md).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .._compiled import find_sorted
from .threads import in_parallel, work_ranges


@njit(cache=True)
def supernodes(n, Lp, Li):
    """Fundamental supernodes: column j+1 joins j when struct(j) = {j+1} + struct(j+1)."""
    start = np.empty(n + 1, dtype=np.int64)
    ns = 0
    start[0] = 0
    for j in range(n - 1):
        cnt_j = Lp[j + 1] - Lp[j]
        cnt_k = Lp[j + 2] - Lp[j + 1]
        if not (cnt_j == cnt_k + 1 and cnt_j > 0 and Li[Lp[j]] == j + 1):
            ns += 1
            start[ns] = j + 1
    ns += 1
    start[ns] = n
    sn_start = start[: ns + 1].copy()
    col_sn = np.empty(n, dtype=np.int64)
    for s in range(ns):
        for c in range(sn_start[s], sn_start[s + 1]):
            col_sn[c] = s
    return sn_start, col_sn


@njit(cache=True)
def z_position(r, c, Lp, Li, sn_start, col_sn):
    """Position in Zx of entry (r, c), r > c, or -1 when (r, c) is outside the pattern."""
    s = col_sn[c]
    last = sn_start[s + 1] - 1
    if r <= last:
        return Lp[c] + (r - c - 1)
    base = Lp[c] + (last - c)
    k = find_sorted(Li, Lp[last], Lp[last + 1], r)
    if k < 0:
        return -1
    return base + (k - Lp[last])


@njit(cache=True)
def _unit_lower_inverse(Ljj):
    w = Ljj.shape[0]
    Linv = np.zeros((w, w))
    for t in range(w):
        Linv[t, t] = 1.0
        for i in range(t + 1, w):
            acc = 0.0
            for k in range(t, i):
                acc -= Ljj[i, k] * Linv[k, t]
            Linv[i, t] = acc
    return Linv


@njit(cache=True)
def scatter_dense_block(f, w, Lp, Zd, Zx, Zjj):
    """Write a dense w x w inverse block for supernode columns f..f+w-1 into (Zd, Zx)."""
    for t in range(w):
        Zd[f + t] = Zjj[t, t]
        for i in range(t + 1, w):
            Zx[Lp[f + t] + (i - t - 1)] = Zjj[i, t]


@njit(cache=True)
def scaled_copy(L, scale, out):
    """out = L diag(scale) on the lower triangle (F-ordered w x w arrays)."""
    w = L.shape[0]
    for t in range(w):
        st = scale[t]
        for i in range(t, w):
            out[i, t] = L[i, t] * st


@njit(cache=True)
def gather_dense_block(f, w, Lp, Lx, out):
    """Copy the unit lower triangle of supernode columns f..f+w-1 into a dense array."""
    for t in range(w):
        out[t, t] = 1.0
        for i in range(t + 1, w):
            out[i, t] = Lx[Lp[f + t] + (i - t - 1)]


@njit(cache=True, nogil=True)
def ldl_forward_block(stop, Lp, Li, Lx, X):
    """X <- L^-1 X over columns 0..stop-1 for a C-ordered block X (n x m), rows below stop
    updated, not solved (:func:`ldl_forward_vec` for several right-hand sides at once)."""
    m = X.shape[1]
    for j in range(stop):
        for p in range(Lp[j], Lp[j + 1]):
            i = Li[p]
            l = Lx[p]
            for k in range(m):
                X[i, k] -= l * X[j, k]


@njit(cache=True)
def ldl_solve_inplace(n, Lp, Li, Lx, d, X):
    """Solve (L D L') X = B in place for a C-ordered block X (n x m), permuted space."""
    m = X.shape[1]
    ldl_forward_block(n, Lp, Li, Lx, X)
    for j in range(n):
        inv = 1.0 / d[j]
        for k in range(m):
            X[j, k] *= inv
    for j in range(n - 1, -1, -1):
        for p in range(Lp[j], Lp[j + 1]):
            i = Li[p]
            l = Lx[p]
            for k in range(m):
                X[j, k] -= l * X[i, k]


@njit(cache=True)
def ldl_forward_vec(stop, Lp, Li, Lx, x):
    """x <- L^-1 x over columns 0..stop-1 (rows below stop are updated, not solved)."""
    for j in range(stop):
        xj = x[j]
        if xj != 0.0:
            for p in range(Lp[j], Lp[j + 1]):
                x[Li[p]] -= Lx[p] * xj


@njit(cache=True)
def ldl_backward_vec(stop, Lp, Li, Lx, d, x):
    """x <- L^-T D^-1 x over columns 0..stop-1, the entries from stop on being already solved."""
    ldl_backward_range(0, stop, Lp, Li, Lx, d, x)


@njit(cache=True, nogil=True)
def ldl_backward_range(j0, j1, Lp, Li, Lx, d, x):
    """x <- L^-T D^-1 x over columns j1-1 down to j0, every row they reference (below j1, or
    in columns no other range of this pass writes) being solved already."""
    for j in range(j1 - 1, j0 - 1, -1):
        acc = x[j] / d[j]
        for p in range(Lp[j], Lp[j + 1]):
            acc -= Lx[p] * x[Li[p]]
        x[j] = acc


def backward_plan(Lp, stages: list, threads: int) -> list:
    """How to split the backward solve over columns 0..stop-1 between threads.  ``stages`` lists,
    in the order the backward pass solves them, the column boundaries of independent blocks
    (blocks whose columns reference only their own rows and rows solved in earlier stages, e.g.
    the leaves of a star, then its absorbed columns one by one).  Returns one list of (j0, j1)
    ranges per stage, of about equal work."""
    plan = []
    for bounds in stages:
        bounds = np.asarray(bounds, dtype=np.int64)
        work = np.diff(Lp[bounds]) + np.diff(bounds)
        plan.append([(int(bounds[a]), int(bounds[b])) for a, b in work_ranges(work, threads)])
    return plan


def backward_split(plan: list, Lp, Li, Lx, d, x) -> None:
    """:func:`ldl_backward_vec` as ``plan`` (:func:`backward_plan`) splits it, stage by stage."""
    for ranges in plan:
        in_parallel(ldl_backward_range, [(a, b, Lp, Li, Lx, d, x) for a, b in ranges])


@njit(cache=True)
def ldl_solve_vec(n, Lp, Li, Lx, d, x):
    """Solve (L D L') x = b in place for one vector (permuted space)."""
    ldl_forward_vec(n, Lp, Li, Lx, x)
    ldl_backward_vec(n, Lp, Li, Lx, d, x)


@njit(cache=True, nogil=True)
def _positions_range(rows, cols, pinv, Lp, Li, sn_start, col_sn, dense_start, e0, e1, pos):
    """pattern_positions for entries e0..e1-1; returns how many lie outside the pattern."""
    n = pinv.shape[0]
    w = n - dense_start
    missing = 0
    for e in range(e0, e1):
        a = pinv[rows[e]]
        b = pinv[cols[e]]
        r, c = max(a, b), min(a, b)
        if a == b:
            pos[e] = -1 - a
        elif c >= dense_start:
            pos[e] = -1 - n - ((r - dense_start) + w * (c - dense_start))
        else:
            q = z_position(r, c, Lp, Li, sn_start, col_sn)
            pos[e] = q
            missing += q < 0
    return missing


def pattern_positions(rows, cols, pinv, Lp, Li, sn_start, col_sn, dense_start, threads: int = 2) -> np.ndarray:
    """For entries (rows[e], cols[e]) of C in natural order: where Z holds them.

    Returns ``pos`` with ``pos[e] >= 0`` an index into Zx, ``pos[e] = -1 - k`` for the
    diagonal entry k of Zd, and, for an entry inside the factor's dense block (columns
    ``dense_start`` on, held as a dense F-ordered inverse Zdense of width w = n - dense_start),
    ``pos[e] = -1 - n - (i + w j)`` with (i, j) its place in Zdense.  (On plain threads, like
    :func:`selinv`.)
    """
    pos = np.empty(rows.shape[0], dtype=np.int64)
    cut = np.linspace(0, rows.shape[0], threads + 1).astype(np.int64)
    args = (rows, cols, pinv, Lp, Li, sn_start, col_sn, dense_start)
    if sum(in_parallel(_positions_range, [(*args, int(a), int(b), pos) for a, b in zip(cut[:-1], cut[1:])])):
        raise ValueError("an entry of C lies outside the pattern of its factor")
    return pos


@njit(cache=True, nogil=True)
def _gather_range(pos, Zd, Zx, Zdense_flat, e0, e1, out):
    n = Zd.shape[0]
    for e in range(e0, e1):
        q = pos[e]
        if q >= 0:
            out[e] = Zx[q]
        elif q >= -n:
            out[e] = Zd[-1 - q]
        else:
            out[e] = Zdense_flat[-1 - n - q]


def gather_pattern(pos, Zd, Zx, Zdense_flat, threads: int = 2) -> np.ndarray:
    """Z on the entries of C, from the positions of :func:`pattern_positions` (on plain
    threads, like :func:`selinv`)."""
    out = np.empty(pos.shape[0])
    cut = np.linspace(0, pos.shape[0], threads + 1).astype(np.int64)
    in_parallel(_gather_range, [(pos, Zd, Zx, Zdense_flat, int(a), int(b), out)
                                for a, b in zip(cut[:-1], cut[1:])])
    return out
