"""Compiled kernels on an LDL' factor: supernodes, selected inverse, triangular solves.

The factor is held as a unit lower-triangular L without its diagonal, in CSC form
with sorted row indices (``Lp``, ``Li``, ``Lx``), and the diagonal ``d``.  The
selected inverse Z = C^-1 on the pattern of L is held the same way: ``Zd`` (the
diagonal) and ``Zx`` (aligned with ``Li``).

Columns with identical structure below a diagonal block form a supernode; the
Takahashi recursion is done a supernode at a time so that large ones use BLAS:

    T    = L_SJ L_JJ^-1
    Z_SJ = -Z_SS T
    Z_JJ = L_JJ^-T D_J^-1 L_JJ^-1 + T' Z_SS T

where S is the structure below supernode J.  Z_SS lies inside the pattern of L
(the filled pattern is closed under this), so nothing outside it is needed.

The kernels that run in every iteration split their work between plain threads
(:func:`threads.in_parallel`), not numba's ``prange``: the OpenMP workers behind prange keep
spinning for milliseconds after a parallel region, and took a core from the threaded
absorption, leaves and LAPACK calls of the next factorisation (each 20-40% slower on m2).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .._compiled import find_sorted, gallop
from .threads import in_parallel, work_ranges

_BLAS_WORK = 4096  # m*m*w above which a supernode update calls BLAS
_PARALLEL_WORK = 2e5  # work of a level (about m^2 w per supernode) worth splitting between threads


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
def _window(c, Lp, sn_start, col_sn):
    """Where column c keeps Z: the last column of its supernode, the slice of that column's rows
    below the supernode, and the offset that turns a position in that slice into one in column c."""
    s = col_sn[c]
    last = sn_start[s + 1] - 1
    lo = Lp[last]
    return last, lo, Lp[last + 1], Lp[c] + (last - c) - lo


@njit(cache=True)
def _gather_zss(S, m, Zd, Zx, Lp, Li, sn_start, col_sn, out, tail, Zr):
    for b in range(m):
        c = S[b]
        out[b, b] = Zd[c]
        if c >= tail:  # rows are sorted: the rest of the column lies in the dense root
            cc = c - tail
            for a in range(b + 1, m):
                v = Zr[S[a] - tail, cc]
                out[a, b] = v
                out[b, a] = v
            continue
        last, lo, hi, base = _window(c, Lp, sn_start, col_sn)
        for a in range(b + 1, m):
            r = S[a]
            if r <= last:
                v = Zx[Lp[c] + (r - c - 1)]
            else:  # rows increase with a: search from the last hit
                k = gallop(Li, lo, hi, r)
                if k < 0:
                    raise ValueError("selected inverse: factor pattern is not closed")
                v = Zx[base + k]
                lo = k + 1
            out[a, b] = v
            out[b, a] = v


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
def _matmul(A, B):
    """A @ B, with BLAS when the work is large enough to pay for the call."""
    m, k = A.shape
    w = B.shape[1]
    if m * k * w > _BLAS_WORK:
        return np.dot(np.ascontiguousarray(A), np.ascontiguousarray(B))
    out = np.zeros((m, w))
    for a in range(m):
        for b in range(k):
            z = A[a, b]
            if z != 0.0:
                for t in range(w):
                    out[a, t] += z * B[b, t]
    return out


@njit(cache=True)
def _singleton(f, p0, m, Li, Lx, d, Zd, Zx, Lp, sn_start, col_sn, y, tail, Zr):
    """Z_Sj = -Z_SS l and Z_jj = 1/d_j + l'Z_SS l for one column, reading each Z_ab (a >= b) once."""
    for a in range(m):
        y[a] = 0.0
    for b in range(m):
        c = Li[p0 + b]
        lb = Lx[p0 + b]
        y[b] += Zd[c] * lb
        if c >= tail:  # rows are sorted: the rest of the column lies in the dense root
            cc = c - tail
            for a in range(b + 1, m):
                z = Zr[Li[p0 + a] - tail, cc]
                y[a] += z * lb
                y[b] += z * Lx[p0 + a]
            continue
        last, lo, hi, base = _window(c, Lp, sn_start, col_sn)
        for a in range(b + 1, m):
            r = Li[p0 + a]
            if r <= last:
                z = Zx[Lp[c] + (r - c - 1)]
            else:
                k = gallop(Li, lo, hi, r)
                if k < 0:
                    raise ValueError("selected inverse: factor pattern is not closed")
                z = Zx[base + k]
                lo = k + 1
            y[a] += z * lb
            y[b] += z * Lx[p0 + a]
    acc = 1.0 / d[f]
    for a in range(m):
        Zx[p0 + a] = -y[a]
        acc += Lx[p0 + a] * y[a]
    Zd[f] = acc


@njit(cache=True)
def _supernode(s, Lp, Li, Lx, d, sn_start, col_sn, Zd, Zx, tail, Zr, y):
    """Selected inverse of the columns of supernode s, given Z on all its ancestors (those from
    column ``tail`` on in the dense ``Zr``); ``y`` is scratch space of at least the rows below
    the supernode."""
    f = sn_start[s]
    last = sn_start[s + 1] - 1
    w = last - f + 1
    m = Lp[last + 1] - Lp[last]
    if w == 1:  # a single column: the scalar Takahashi recursion on the lower half of Z_SS
        _singleton(f, Lp[f], m, Li, Lx, d, Zd, Zx, Lp, sn_start, col_sn, y, tail, Zr)
        return
    Ljj = np.zeros((w, w))
    for t in range(w):
        Ljj[t, t] = 1.0
        for i in range(t + 1, w):
            Ljj[i, t] = Lx[Lp[f + t] + (i - t - 1)]
    Linv = _unit_lower_inverse(Ljj)
    LinvD = np.empty((w, w))  # D^-1 L^-1
    for i in range(w):
        for j in range(w):
            LinvD[i, j] = Linv[i, j] / d[f + i]
    Zjj = _matmul(Linv.T.copy(), LinvD)
    if m > 0:
        Lsj = np.empty((m, w))
        for t in range(w):
            p0 = Lp[f + t] + (last - f - t)
            for a in range(m):
                Lsj[a, t] = Lx[p0 + a]
        T = _matmul(Lsj, Linv)
        Zss = np.empty((m, m))
        _gather_zss(Li[Lp[last]: Lp[last + 1]], m, Zd, Zx, Lp, Li, sn_start, col_sn, Zss, tail, Zr)
        Y = _matmul(Zss, T)
        TY = _matmul(T.T.copy(), Y)
        for t in range(w):
            p0 = Lp[f + t] + (last - f - t)
            for a in range(m):
                Zx[p0 + a] = -Y[a, t]
        Zjj += TY
    for t in range(w):
        Zd[f + t] = Zjj[t, t]
        for i in range(t + 1, w):
            Zx[Lp[f + t] + (i - t - 1)] = Zjj[i, t]


@njit(cache=True)
def supernode_levels(Lp, Li, sn_start, col_sn):
    """Supernodes grouped by depth in the supernodal elimination tree (roots at depth 0).

    Supernodes of one depth only read Z of their ancestors, so they can be done in parallel.
    Returns (level pointers, supernodes ordered by depth).
    """
    ns = sn_start.shape[0] - 1
    depth = np.zeros(ns, dtype=np.int64)
    for s in range(ns - 1, -1, -1):
        last = sn_start[s + 1] - 1
        if Lp[last + 1] > Lp[last]:
            depth[s] = depth[col_sn[Li[Lp[last]]]] + 1
    order = np.argsort(depth, kind="mergesort")
    nlev = depth.max() + 1 if ns else 0
    ptr = np.zeros(nlev + 1, dtype=np.int64)
    for s in range(ns):
        ptr[depth[s] + 1] += 1
    for k in range(nlev):
        ptr[k + 1] += ptr[k]
    return ptr, order


@njit(cache=True, nogil=True)
def selinv_range(Lp, Li, Lx, d, sn_start, col_sn, done, order, k0, k1, Zd, Zx, tail, Zr):
    """Selected inverse of supernodes order[k0:k1], one after another, given Z on all their
    ancestors.  Supernodes with ``done[s]`` set (dense roots inverted with LAPACK beforehand)
    are skipped.  ``Zd`` and ``Zx`` are filled in place; the entries of a dense trailing root
    (columns ``tail`` on; ``tail = n`` when there is none) are read from ``Zr``, its inverse as
    a dense (lower, F-ordered) array, and not written to ``Zx``."""
    y = np.empty(Zd.shape[0])
    for k in range(k0, k1):
        s = order[k]
        if not done[s]:
            _supernode(s, Lp, Li, Lx, d, sn_start, col_sn, Zd, Zx, tail, Zr, y)


def selinv_plan(Lp, sn_start, done, level_ptr, level_order, threads: int, min_work: float = _PARALLEL_WORK) -> list:
    """How :func:`selinv` runs the levels of the supernodal tree (``level_order`` lists the
    supernodes level by level from the roots): a level with work enough for it is split into
    ``threads`` ranges of about equal work, run on plain threads (numba's OpenMP workers would
    spin afterwards and slow the LAPACK and threaded kernels that follow); the levels between are
    runs of supernodes done in order on one thread.  Returns a list of segments, each a list of
    (k0, k1) ranges of ``level_order`` run at once."""
    last = sn_start[1:] - 1
    m = (Lp[last + 1] - Lp[last]).astype(float)
    w = np.diff(sn_start).astype(float)
    work = np.where(done, 0.0, m * m * w + m * w * w + m + 1.0)[level_order]  # in level order
    plan, start = [], 0
    for lev in range(level_ptr.size - 1):
        a, b = int(level_ptr[lev]), int(level_ptr[lev + 1])
        lev_work = work[a:b]
        if threads > 1 and b - a >= 2 and lev_work.sum() >= min_work:
            if start < a:
                plan.append([(start, a)])
            plan.append([(a + c0, a + c1) for c0, c1 in work_ranges(lev_work, threads)])
            start = b
    if start < level_ptr[-1]:
        plan.append([(start, int(level_ptr[-1]))])
    return plan


def selinv(Lp, Li, Lx, d, sn_start, col_sn, done, level_order, plan, Zd, Zx, tail, Zr) -> None:
    """Selected inverse on the pattern of L, level by level from the roots down, as ``plan``
    (:func:`selinv_plan`) says; see :func:`selinv_range` for the arguments."""
    args = (Lp, Li, Lx, d, sn_start, col_sn, done, level_order)
    for seg in plan:
        in_parallel(selinv_range, [(*args, k0, k1, Zd, Zx, tail, Zr) for k0, k1 in seg])


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
    for j in range(stop):
        x[j] /= d[j]
    for j in range(stop - 1, -1, -1):
        acc = x[j]
        for p in range(Lp[j], Lp[j + 1]):
            acc -= Lx[p] * x[Li[p]]
        x[j] = acc


@njit(cache=True)
def ldl_solve_vec(n, Lp, Li, Lx, d, x):
    """Solve (L D L') x = b in place for one vector (permuted space)."""
    ldl_forward_vec(n, Lp, Li, Lx, x)
    ldl_backward_vec(n, Lp, Li, Lx, d, x)


@njit(cache=True, nogil=True)
def _positions_range(rows, cols, pinv, Lp, Li, sn_start, col_sn, tail, e0, e1, pos):
    """pattern_positions for entries e0..e1-1; returns how many lie outside the pattern."""
    n = pinv.shape[0]
    w = n - tail
    missing = 0
    for e in range(e0, e1):
        a = pinv[rows[e]]
        b = pinv[cols[e]]
        r, c = max(a, b), min(a, b)
        if a == b:
            pos[e] = -1 - a
        elif c >= tail:
            pos[e] = -1 - n - ((r - tail) + w * (c - tail))
        else:
            q = z_position(r, c, Lp, Li, sn_start, col_sn)
            pos[e] = q
            missing += q < 0
    return missing


def pattern_positions(rows, cols, pinv, Lp, Li, sn_start, col_sn, tail, threads: int = 2) -> np.ndarray:
    """For entries (rows[e], cols[e]) of C in natural order: where Z holds them.

    Returns ``pos`` with ``pos[e] >= 0`` an index into Zx, ``pos[e] = -1 - k`` for the
    diagonal entry k of Zd, and, for an entry inside the dense trailing root (columns ``tail``
    on, held as a dense F-ordered inverse Zr of width w = n - tail),
    ``pos[e] = -1 - n - (i + w j)`` with (i, j) its place in Zr.  (On plain threads, like
    :func:`selinv`.)
    """
    pos = np.empty(rows.shape[0], dtype=np.int64)
    cut = np.linspace(0, rows.shape[0], threads + 1).astype(np.int64)
    args = (rows, cols, pinv, Lp, Li, sn_start, col_sn, tail)
    if sum(in_parallel(_positions_range, [(*args, int(a), int(b), pos) for a, b in zip(cut[:-1], cut[1:])])):
        raise ValueError("an entry of C lies outside the pattern of its factor")
    return pos


@njit(cache=True, nogil=True)
def _gather_range(pos, Zd, Zx, Zr_flat, e0, e1, out):
    n = Zd.shape[0]
    for e in range(e0, e1):
        q = pos[e]
        if q >= 0:
            out[e] = Zx[q]
        elif q >= -n:
            out[e] = Zd[-1 - q]
        else:
            out[e] = Zr_flat[-1 - n - q]


def gather_pattern(pos, Zd, Zx, Zr_flat, threads: int = 2) -> np.ndarray:
    """Z on the entries of C, from the positions of :func:`pattern_positions` (on plain
    threads, like :func:`selinv`)."""
    out = np.empty(pos.shape[0])
    cut = np.linspace(0, pos.shape[0], threads + 1).astype(np.int64)
    in_parallel(_gather_range, [(pos, Zd, Zx, Zr_flat, int(a), int(b), out) for a, b in zip(cut[:-1], cut[1:])])
    return out
