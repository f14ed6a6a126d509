"""Aliased fixed-effect columns and OLS coefficients of a wide X without a dense X'X.

The dense check (``fixed.find_aliased``) drops a column when it is a linear combination of the
columns before it: the greedy basis in column order.  For thousands of columns (contemporary
groups, family as fixed) a dense p x p Cholesky costs O(p^3) time and O(p^2) memory, so here:

1. X'X is factorised sparsely (an up-looking LDL', as QDLDL's) with the columns of the widest
   term first: every term's columns are disjoint in their records, so its block of X'X is
   diagonal and eliminating it first fills only the (small) rest.  A pivot below the tolerance
   drops its column, and that column's row of L gives a null vector of X.
2. The null vectors are brought to echelon form from the right: the positions of their last
   nonzeros are exactly the columns the dense check drops in column order (a column depends on
   earlier ones iff some null vector ends there).
3. X'X is factorised again with exactly those columns dropped, and that factor solves for the
   OLS coefficients.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

from ..errors import ModelError
from ..linalg.ordering import etree_counts

__all__ = ["sparse_aliased"]

_MAX_FACTOR = 30_000_000  # nonzeros of L (240 MB) above which the fixed part is refused
_MAX_NULL = 50_000_000  # entries of the dense null-space matrix (aliased columns x columns)


@njit(cache=True)
def _ldl_drop(n, Ap, Ai, Ax, parent, lnz, tol, force):
    """Up-looking LDL' of the upper triangle (Ap, Ai, Ax) with pivot dropping.

    Row k is found by a sparse triangular solve along the elimination tree; when its pivot is
    at most ``tol`` (or ``force[k]``) column k is dropped: it gets no entries in L and its row
    (the coefficients on earlier kept columns) is kept apart in (Rp, Ri, Rx)."""
    Lp = np.zeros(n + 1, dtype=np.int64)
    for j in range(n):
        Lp[j + 1] = Lp[j] + lnz[j]
    Li = np.empty(Lp[n], dtype=np.int64)
    Lx = np.empty(Lp[n])
    fill = Lp[:n].copy()
    D = np.zeros(n)
    dropped = force.copy()
    Rp = np.zeros(n + 1, dtype=np.int64)
    Ri = np.empty(Lp[n], dtype=np.int64)  # a dropped row's entries take the room L kept for them
    Rx = np.empty(Lp[n])
    y = np.zeros(n)
    mark = np.full(n, -1, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    pattern = np.empty(n, dtype=np.int64)
    rowi = np.empty(n, dtype=np.int64)
    rowx = np.empty(n)
    nr = 0
    for k in range(n):
        mark[k] = k
        top = n
        d = 0.0
        for p in range(Ap[k], Ap[k + 1]):
            i = Ai[p]
            if i == k:
                d += Ax[p]
                continue
            y[i] += Ax[p]
            ln = 0
            while i != -1 and mark[i] != k:
                mark[i] = k
                stack[ln] = i
                ln += 1
                i = parent[i]
            while ln > 0:
                ln -= 1
                top -= 1
                pattern[top] = stack[ln]
        m = 0
        for t in range(top, n):
            i = pattern[t]
            yi = y[i]
            y[i] = 0.0
            if dropped[i]:
                continue
            for p in range(Lp[i], fill[i]):
                y[Li[p]] -= Lx[p] * yi
            lki = yi / D[i]
            d -= lki * yi
            rowi[m] = i
            rowx[m] = lki
            m += 1
        if dropped[k] or d <= tol:
            dropped[k] = True
            for a in range(m):
                Ri[nr] = rowi[a]
                Rx[nr] = rowx[a]
                nr += 1
        else:
            D[k] = d
            for a in range(m):
                i = rowi[a]
                Li[fill[i]] = k
                Lx[fill[i]] = rowx[a]
                fill[i] += 1
        Rp[k + 1] = nr
    return Lp, fill, Li, Lx, D, dropped, Rp, Ri[:nr], Rx[:nr]


@njit(cache=True)
def _null_vectors(n, Lp, Lend, Li, Lx, dropped, Rp, Ri, Rx):
    """One null vector of X per dropped column j: e_j - L^-T l_j on the columns before j
    (l_j: j's row of L; L^-T l_j are its coefficients on the kept columns), as rows of a
    dense (dropped x n) matrix in the factor's order."""
    cols = np.flatnonzero(dropped)
    out = np.zeros((cols.size, n))
    for r in range(cols.size):
        j = cols[r]
        w = out[r]
        for p in range(Rp[j], Rp[j + 1]):
            w[Ri[p]] = Rx[p]
        for i in range(j - 1, -1, -1):  # back substitution with L' (kept columns only)
            if dropped[i]:
                continue
            s = w[i]
            for p in range(Lp[i], Lend[i]):
                s -= Lx[p] * w[Li[p]]
            w[i] = s
        for i in range(j):
            w[i] = -w[i]
        w[j] = 1.0
    return out


@njit(cache=True)
def _ldl_solve(Lp, Lend, Li, Lx, D, dropped, b):
    """L D L' z = b on the kept columns (z = 0 on dropped ones)."""
    n = b.shape[0]
    z = b.copy()
    for i in range(n):
        if dropped[i]:
            z[i] = 0.0
            continue
        for p in range(Lp[i], Lend[i]):
            z[Li[p]] -= Lx[p] * z[i]
    for i in range(n - 1, -1, -1):
        if dropped[i]:
            continue
        s = z[i] / D[i]
        for p in range(Lp[i], Lend[i]):
            s -= Lx[p] * z[Li[p]]
        z[i] = s
    return z


@njit(cache=True)
def _last_nonzeros(N, rel):
    """Echelon form of the rows of N from the right (N is overwritten): the positions of the
    rows' last nonzeros, i.e. the columns that depend on earlier ones.  An entry counts as
    nonzero above ``rel`` times its row's largest magnitude."""
    k, m = N.shape
    tol = np.empty(k)
    last = np.full(k, -1, dtype=np.int64)
    for q in range(k):
        tol[q] = rel * np.abs(N[q]).max()
        for c in range(m - 1, -1, -1):
            if abs(N[q, c]) > tol[q]:
                last[q] = c
                break
    alive = np.ones(k, dtype=np.bool_)
    out = np.empty(k, dtype=np.int64)
    for step in range(k):
        r = -1
        for q in range(k):
            if alive[q] and (r < 0 or last[q] > last[r]):
                r = q
        c = last[r]
        out[step] = c
        alive[r] = False
        for q in range(k):  # only rows that reach column c change
            if not alive[q] or last[q] < c or abs(N[q, c]) <= tol[q]:
                continue
            f = N[q, c] / N[r, c]
            for j in range(c):
                N[q, j] -= f * N[r, j]
            N[q, c] = 0.0
            last[q] = -1
            for j in range(c - 1, -1, -1):
                if abs(N[q, j]) > tol[q]:
                    last[q] = j
                    break
    return out


def _factor(A: sp.csc_matrix, tol: float, force: np.ndarray, big: tuple):
    """The LDL' with pivot dropping of the upper-triangular CSC A, refused (naming the widest
    term ``big`` = (label, columns)) before L is allocated when L would be too large."""
    n = A.shape[0]
    Ap, Ai = A.indptr.astype(np.int64), A.indices.astype(np.int64)
    parent, counts = etree_counts(n, Ap, Ai)  # the upper triangle by columns is the lower by rows
    lnz = counts - 1  # below the diagonal
    if int(lnz.sum()) > _MAX_FACTOR:
        raise ModelError(f"the fixed effects are too entangled to check for aliasing ({n:,} columns, "
                         f"{int(lnz.sum()):,} factor entries); fit the largest term {big[0]!r} "
                         f"({big[1]:,} columns) as a random term")
    return _ldl_drop(n, Ap, Ai, A.data.astype(float), parent, lnz, tol, force)


def sparse_aliased(X: sp.csr_matrix, term_of: list, y: np.ndarray | None = None, tol: float = 1e-10):
    """Aliased columns of X (as ``find_aliased`` on X'X decides them) and the OLS coefficients
    of y on the other columns, with sparse factorisations of X'X only.

    Parameters
    ----------
    X : scipy.sparse.csr_matrix
        The fixed design, one column per name in ``term_of``.
    term_of : list of str
        The term of each column (the widest term is eliminated first).
    y : ndarray, optional
        The response.

    Returns
    -------
    aliased : ndarray of bool
    ols : ndarray or None
        Coefficients of the kept columns.
    """
    p = X.shape[1]
    d = np.asarray(X.multiply(X).sum(axis=0)).ravel()
    aliased = d <= 0
    live = np.flatnonzero(~aliased)
    label = np.asarray(term_of, dtype=object)[live]
    width: dict = {}
    for t in label.tolist():
        width[t] = width.get(t, 0) + 1
    # widest term first: its block of X'X is diagonal, so its elimination fills only the rest
    order = live[np.lexsort((live, [-width[t] for t in label]))]
    s = np.sqrt(d[order])
    Xo = X[:, order] @ sp.diags(1.0 / s)
    A = sp.triu(Xo.T @ Xo, format="csc")
    A.sort_indices()
    m = order.size
    big = max(width, key=width.get)
    Lp, Lend, Li, Lx, D, dropped, Rp, Ri, Rx = _factor(A, tol, np.zeros(m, dtype=np.bool_), (big, width[big]))
    k = int(dropped.sum())
    if k * m > _MAX_NULL:
        raise ModelError(f"the fixed effects have too many aliased columns to sort out ({k:,} of {m:,}); "
                         f"fit the largest term {big!r} ({width[big]:,} columns) as a random term")
    if k:
        N = _null_vectors(m, Lp, Lend, Li, Lx, dropped, Rp, Ri, Rx)
        by_column = np.argsort(order)  # the null vectors' entries in X's column order
        aliased[order[by_column][_last_nonzeros(np.ascontiguousarray(N[:, by_column]), 1e-8)]] = True
    ols = None
    if y is not None:
        force = aliased[order]
        Lp, Lend, Li, Lx, D, again, _, _, _ = _factor(A, -np.inf, force, (big, width[big]))
        if np.any(D[~again] <= tol):  # pragma: no cover - the same pivots as the first pass
            raise ModelError("the fixed effects are too close to aliased for their OLS fit; "
                             "rescale the covariates or drop a term")
        z = _ldl_solve(Lp, Lend, Li, Lx, D, again, np.asarray(Xo.T @ y, dtype=float))
        b = np.zeros(p)
        b[order] = z / s
        ols = b[~aliased]
    return aliased, ols
