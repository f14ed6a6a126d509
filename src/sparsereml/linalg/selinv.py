"""Selected inverse: the Takahashi recursion on the pattern of an LDL' factor.

Z = C^-1 on the pattern of L is held like the factor (see ``kernels.py``): ``Zd`` (the
diagonal) and ``Zx`` (aligned with ``Li``).  Columns with identical structure below a diagonal
block form a supernode; the recursion is done a supernode at a time so that large ones use BLAS:

    T    = L_SJ L_JJ^-1
    Z_SJ = -Z_SS T
    Z_JJ = L_JJ^-T D_J^-1 L_JJ^-1 + T' Z_SS T

where S is the structure below supernode J.  Z_SS lies inside the pattern of L (the filled
pattern is closed under this), so nothing outside it is needed.  A single column whose parent
is a wider supernode is done right after it, from that supernode's dense blocks of Z
(:func:`fused_children`): on a network of trials these are the absorbed Trial:Mother cells
under each trial's blocks, and reading Z there spares a search of the pattern for every entry
such a column reads (measured: benchmarks/RESULTS.md, 2026-11-26, fifth session).

Supernodes of one depth of the supernodal tree read only Z of their ancestors, so each level is
split between plain threads (:func:`threads.in_parallel`, see ``kernels.py`` for why not
numba's prange).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .._compiled import counting_sort, find_sorted, gallop
from .kernels import _unit_lower_inverse
from .threads import in_parallel, work_ranges

_BLAS_WORK = 4096  # m*m*w above which a supernode update calls BLAS
_PARALLEL_WORK = 2e5  # work of a level (about m^2 w per supernode) worth splitting between threads
# the work of a supernode, in units of its BLAS product's m^2 w: gathering Z_SS costs about
# m^2 _GATHER and each single column done with it about _KID times its rows squared (fitted to
# measured times of a star's leaves, so that the threads' shares of a level come out even)
_GATHER = 28.0
_KID = 38.0


@njit(cache=True)
def _window(c, Lp, sn_start, col_sn):
    """Where column c keeps Z: the last column of its supernode, the slice of that column's rows
    below the supernode, and the offset that turns a position in that slice into one in column c."""
    s = col_sn[c]
    last = sn_start[s + 1] - 1
    lo = Lp[last]
    return last, lo, Lp[last + 1], Lp[c] + (last - c) - lo


@njit(cache=True)
def _gather_zss(S, m, Zd, Zx, Lp, Li, sn_start, col_sn, out, dense_start, Zdense):
    for b in range(m):
        c = S[b]
        out[b, b] = Zd[c]
        if c >= dense_start:  # rows are sorted: the rest of the column lies in the dense block
            cc = c - dense_start
            for a in range(b + 1, m):
                v = Zdense[S[a] - dense_start, cc]
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
def _singleton(f, p0, m, Li, Lx, d, Zd, Zx, Lp, sn_start, col_sn, y, dense_start, Zdense):
    """Z_Sj = -Z_SS l and Z_jj = 1/d_j + l'Z_SS l for one column, reading each Z_ab (a >= b) once."""
    for a in range(m):
        y[a] = 0.0
    for b in range(m):
        c = Li[p0 + b]
        lb = Lx[p0 + b]
        y[b] += Zd[c] * lb
        if c >= dense_start:  # rows are sorted: the rest of the column lies in the dense block
            cc = c - dense_start
            for a in range(b + 1, m):
                z = Zdense[Li[p0 + a] - dense_start, cc]
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
def _supernode(s, Lp, Li, Lx, d, sn_start, col_sn, Zd, Zx, dense_start, Zdense, y, kids):
    """Selected inverse of the columns of supernode s, given Z on all its ancestors (those in the
    dense block, from column ``dense_start`` on, in the dense array ``Zdense``); ``y`` is scratch
    space of at least the rows below the supernode."""
    f = sn_start[s]
    last = sn_start[s + 1] - 1
    w = last - f + 1
    m = Lp[last + 1] - Lp[last]
    if w == 1:  # a single column: the scalar Takahashi recursion on the lower half of Z_SS
        _singleton(f, Lp[f], m, Li, Lx, d, Zd, Zx, Lp, sn_start, col_sn, y, dense_start, Zdense)
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
    Zss, Y = np.empty((0, 0)), np.empty((0, w))
    if m > 0:
        Lsj = np.empty((m, w))
        for t in range(w):
            p0 = Lp[f + t] + (last - f - t)
            for a in range(m):
                Lsj[a, t] = Lx[p0 + a]
        T = _matmul(Lsj, Linv)
        Zss = np.empty((m, m))
        _gather_zss(Li[Lp[last]: Lp[last + 1]], m, Zd, Zx, Lp, Li, sn_start, col_sn, Zss, dense_start,
                    Zdense)
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
    kid_ptr, kid_col, code_ptr, codes = kids
    if kid_ptr[s + 1] > kid_ptr[s]:
        Yt = Y.T.copy()  # the children read Y by columns of the supernode
        for q in range(kid_ptr[s], kid_ptr[s + 1]):
            _child(kid_col[q], codes[code_ptr[q]:code_ptr[q + 1]], w, Lp, Lx, d, Zd, Zx, Zjj, Yt, Zss, y)


@njit(cache=True)
def _child(j, code, w, Lp, Lx, d, Zd, Zx, Zjj, Yt, Zss, y):
    """The scalar recursion for a single column j whose rows all lie in its parent supernode's
    columns or rows, with Z_SS read from that supernode's dense blocks: ``code`` gives each row
    of j as a column t < w of the supernode (Z in Zjj) or w + a for its row a (Z in Zss; Z
    between the two is -Yt[t, a]).  Codes increase with the row, so the first h are columns.
    ``y`` is scratch space for 2 m values."""
    p0 = Lp[j]
    m = code.shape[0]
    h = 0
    while h < m and code[h] < w:
        h += 1
    acc_y = y[:m]
    lv = y[m:2 * m]
    for a in range(m):
        acc_y[a] = 0.0
        lv[a] = Lx[p0 + a]
    for b in range(h):  # Z_ab with row b among the supernode's columns
        cb = code[b]
        lb = lv[b]
        zrow = Zjj[cb]
        yrow = Yt[cb]
        yb = zrow[cb] * lb
        for a in range(b + 1, h):
            z = zrow[code[a]]
            acc_y[a] += z * lb
            yb += z * lv[a]
        for a in range(h, m):
            z = yrow[code[a] - w]  # = -Z_ab
            acc_y[a] -= z * lb
            yb -= z * lv[a]
        acc_y[b] += yb
    for b in range(h, m):  # both rows below the supernode
        rb = code[b] - w
        lb = lv[b]
        zrow = Zss[rb]
        yb = zrow[rb] * lb
        for a in range(b + 1, m):
            z = zrow[code[a] - w]
            acc_y[a] += z * lb
            yb += z * lv[a]
        acc_y[b] += yb
    acc = 1.0 / d[j]
    for a in range(m):
        Zx[p0 + a] = -acc_y[a]
        acc += lv[a] * acc_y[a]
    Zd[j] = acc


@njit(cache=True)
def fused_children(Lp, Li, sn_start, col_sn, done):
    """Single columns done with their parent supernode: those whose parent has several columns
    and is not done already (a wide root supernode inverted by LAPACK).  All rows of such a
    column lie in the parent's columns and rows (the pattern is closed), so its recursion reads
    only the parent's dense blocks of Z, while they are at hand, instead of looking each entry
    up in the pattern.

    Returns (fused: a flag per supernode, kids = (pointers per parent, child columns, pointers
    into codes, codes of each child's rows as :func:`_child` reads them))."""
    ns = sn_start.shape[0] - 1
    fused = np.zeros(ns, dtype=np.bool_)
    parent = np.full(ns, -1, dtype=np.int64)
    kid_ptr = np.zeros(ns + 1, dtype=np.int64)
    n_codes = 0
    for s in range(ns):
        j = sn_start[s]
        if sn_start[s + 1] - j != 1 or done[s] or Lp[j + 1] == Lp[j]:
            continue
        p = col_sn[Li[Lp[j]]]
        if sn_start[p + 1] - sn_start[p] > 1 and not done[p]:
            fused[s] = True
            parent[s] = p
            kid_ptr[p + 1] += 1
            n_codes += Lp[j + 1] - Lp[j]
    for s in range(ns):
        kid_ptr[s + 1] += kid_ptr[s]
    kid_col = np.empty(kid_ptr[ns], dtype=np.int64)
    code_ptr = np.zeros(kid_ptr[ns] + 1, dtype=np.int64)
    codes = np.empty(n_codes, dtype=np.int64)
    fill = kid_ptr[:ns].copy()
    for s in range(ns):
        if fused[s]:
            q = fill[parent[s]]
            fill[parent[s]] += 1
            kid_col[q] = sn_start[s]
            code_ptr[q + 1] = Lp[sn_start[s] + 1] - Lp[sn_start[s]]
    for q in range(kid_col.shape[0]):
        code_ptr[q + 1] += code_ptr[q]
    for q in range(kid_col.shape[0]):
        j = kid_col[q]
        p = col_sn[Li[Lp[j]]]
        f, last = sn_start[p], sn_start[p + 1] - 1
        w = last - f + 1
        for k in range(Lp[j + 1] - Lp[j]):
            r = Li[Lp[j] + k]
            if r <= last:
                codes[code_ptr[q] + k] = r - f
            else:
                codes[code_ptr[q] + k] = w + find_sorted(Li, Lp[last], Lp[last + 1], r) - Lp[last]
    return fused, (kid_ptr, kid_col, code_ptr, codes)


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
    nlev = 0
    for s in range(ns):
        nlev = max(nlev, depth[s] + 1)
    return counting_sort(depth, nlev)  # stable: as argsort(kind="mergesort"), cheaper to compile


@njit(cache=True, nogil=True)
def selinv_range(Lp, Li, Lx, d, sn_start, col_sn, done, order, k0, k1, Zd, Zx, dense_start, Zdense, kids):
    """Selected inverse of supernodes order[k0:k1], one after another, given Z on all their
    ancestors.  Supernodes with ``done[s]`` set (wide root supernodes inverted with LAPACK
    beforehand) are skipped.  ``Zd`` and ``Zx`` are filled in place; the entries of the factor's
    dense block (columns ``dense_start`` on; ``dense_start = n`` when there is none) are read
    from ``Zdense``, its inverse as a dense (lower, F-ordered) array, and not written to ``Zx``."""
    y = np.empty(2 * Zd.shape[0])  # scratch: 2 m values for a fused column (_child)
    for k in range(k0, k1):
        s = order[k]
        if not done[s]:
            _supernode(s, Lp, Li, Lx, d, sn_start, col_sn, Zd, Zx, dense_start, Zdense, y, kids)


def selinv_plan(Lp, sn_start, done, level_ptr, level_order, threads: int, min_work: float = _PARALLEL_WORK,
                kids=None) -> list:
    """How :func:`selinv` runs the levels of the supernodal tree (``level_order`` lists the
    supernodes level by level from the roots): a level with work enough for it is split into
    ``threads`` ranges of about equal work, run on plain threads (numba's OpenMP workers would
    spin afterwards and slow the LAPACK and threaded kernels that follow); the levels between are
    runs of supernodes done in order on one thread.  Returns a list of segments, each a list of
    (k0, k1) ranges of ``level_order`` run at once.  With ``kids`` (:func:`fused_children`) a
    supernode's work includes that of the single columns done with it (``done`` set for them)."""
    last = sn_start[1:] - 1
    m = (Lp[last + 1] - Lp[last]).astype(float)
    w = np.diff(sn_start).astype(float)
    work = np.where(done, 0.0, m * m * (w + _GATHER) + m * w * w + m + 1.0)
    if kids is not None:
        kid_ptr, _, code_ptr, _ = kids
        kid_work = _KID * np.diff(code_ptr).astype(float) ** 2 + 1.0
        parent = np.repeat(np.arange(kid_ptr.size - 1), np.diff(kid_ptr))
        work += np.bincount(parent, weights=kid_work, minlength=kid_ptr.size - 1)
    work = work[level_order]  # in level order
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


def selinv(Lp, Li, Lx, d, sn_start, col_sn, done, level_order, plan, Zd, Zx, dense_start, Zdense, kids) -> None:
    """Selected inverse on the pattern of L, level by level from the roots down, as ``plan``
    (:func:`selinv_plan`) says; see :func:`selinv_range` for the arguments."""
    args = (Lp, Li, Lx, d, sn_start, col_sn, done, level_order)
    for seg in plan:
        in_parallel(selinv_range, [(*args, k0, k1, Zd, Zx, dense_start, Zdense, kids) for k0, k1 in seg])
