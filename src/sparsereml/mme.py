"""MME stage: assemble C(theta), the right-hand side and y'R^-1y from cached cross-products.

    C   = sum_k c_k W_k'W_k + blockdiag(0_p, G^-1(theta))
    rhs = sum_k c_k W_k'y_k,   y'R^-1 y = sum_k c_k y_k'y_k

over the residual components k (a group with independent records: c = 1/s2_g; a structured
group: one component per basis matrix of its R^-1, see structures/residual.py).  C is held as
the data of a lower-triangle CSC matrix on a fixed pattern; each iteration only recomputes
that data vector.  The per-component quantities the REML scores and average information
need (s'r_k, s'C_k s, tr(C^-1 C_k), r_k - C_k s) come from the same cached products, never
from the records.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import get_num_threads, njit

from ._compiled import counting_sort
from .crossprod import CrossProducts, column_matrix
from .linalg.threads import in_parallel, work_ranges
from .structures import Structure

__all__ = ["MixedModelEquations"]

_SPLIT_WORK = 400_000  # entries x columns of a product worth splitting between threads


@njit(cache=True, nogil=True)
def _symmetric_range(Cp, Ci, data, X, c0, c1, out):
    """out += (columns c0..c1-1 of A and their transposes) @ X, for symmetric A stored as its
    lower triangle (CSC) and dense X (n x m)."""
    m = X.shape[1]
    for c in range(c0, c1):
        for p in range(Cp[c], Cp[c + 1]):
            r = Ci[p]
            v = data[p]
            for k in range(m):
                out[r, k] += v * X[c, k]
            if r != c:
                for k in range(m):
                    out[c, k] += v * X[r, k]


def _symmetric_product(Cp, Ci, data, X):
    """A @ X for symmetric A stored as its lower triangle (CSC) and dense X (n x m).  A large
    product is split by ranges of A's columns between threads, each into its own output (their
    writes would collide), then summed."""
    n, m = X.shape
    parts = get_num_threads() if Cp[-1] * m >= _SPLIT_WORK else 1
    ranges = work_ranges(np.diff(Cp), parts) or [(0, n)]
    outs = [np.zeros((n, m)) for _ in ranges]
    in_parallel(_symmetric_range, [(Cp, Ci, data, X, a, b, o) for (a, b), o in zip(ranges, outs)])
    for o in outs[1:]:
        outs[0] += o
    return outs[0]


@njit(cache=True)
def _weighted_pair_sums(grp, w, val, x, i, y, j, G):
    """sum over entries e of component grp[e] of w[e] val[e] x[i[e]] y[j[e]] (one pass, no
    temporaries)."""
    out = np.zeros(G)
    for e in range(grp.shape[0]):
        out[grp[e]] += w[e] * val[e] * x[i[e]] * y[j[e]]
    return out


@njit(cache=True)
def _weighted_sums(grp, w, val, x, i, G):
    """sum over entries e of component grp[e] of w[e] val[e] x[i[e]]."""
    out = np.zeros(G)
    for e in range(grp.shape[0]):
        out[grp[e]] += w[e] * val[e] * x[i[e]]
    return out


@njit(cache=True)
def _residual_rhs_data(nnz, r, rval, a, b, val, row, col, s):
    """Values of [r_k - C_k s] on its pattern: W_k'y_k less each entry of C_k times s, on both
    sides of the diagonal (b[e] < 0 marks a diagonal entry)."""
    data = np.zeros(nnz)
    for q in range(r.shape[0]):
        data[r[q]] += rval[q]
    for e in range(a.shape[0]):
        data[a[e]] -= val[e] * s[col[e]]
        if b[e] >= 0:
            data[b[e]] -= val[e] * s[row[e]]
    return data


@njit(cache=True)
def _component_pattern(G, N, e_grp, e_row, e_col, r_grp, r_row):
    """Per component k: the sorted unknowns of its entries (e_row, e_col) and right-hand side
    (r_row), as CSC (indptr, indices); and the position in ``indices`` of every entry's row
    (a), column (b) and right-hand-side row (r)."""
    ep, eo = counting_sort(e_grp, G)
    rp, ro = counting_sort(r_grp, G)
    stamp = np.full(N, -1, dtype=np.int64)
    where = np.empty(N, dtype=np.int64)
    indices = np.empty(2 * e_grp.shape[0] + r_grp.shape[0], dtype=np.int64)
    indptr = np.zeros(G + 1, dtype=np.int64)
    a = np.empty(e_grp.shape[0], dtype=np.int64)
    b = np.empty(e_grp.shape[0], dtype=np.int64)
    r = np.empty(r_grp.shape[0], dtype=np.int64)
    total = 0
    for g in range(G):
        first = total
        for q in range(ep[g], ep[g + 1]):
            e = eo[q]
            for u in (e_row[e], e_col[e]):
                if stamp[u] != g:
                    stamp[u] = g
                    indices[total] = u
                    total += 1
        for q in range(rp[g], rp[g + 1]):
            u = r_row[ro[q]]
            if stamp[u] != g:
                stamp[u] = g
                indices[total] = u
                total += 1
        indices[first:total] = np.sort(indices[first:total])
        for k in range(first, total):
            where[indices[k]] = k
        for q in range(ep[g], ep[g + 1]):
            e = eo[q]
            a[e] = where[e_row[e]]
            b[e] = where[e_col[e]]
        for q in range(rp[g], rp[g + 1]):
            r[ro[q]] = where[r_row[ro[q]]]
        indptr[g + 1] = total
    return indptr, indices[:total].copy(), a, b, r


def _positions(lower: sp.csc_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Index into ``lower.data`` of each (row, col) entry with row >= col."""
    n = lower.shape[0]
    keys = lower.indices.astype(np.int64) + n * np.repeat(np.arange(n, dtype=np.int64), np.diff(lower.indptr))
    want = rows.astype(np.int64) + n * cols.astype(np.int64)
    pos = np.searchsorted(keys, want)
    if np.any(pos >= keys.size) or np.any(keys[np.minimum(pos, keys.size - 1)] != want):
        raise RuntimeError("entry outside the MME pattern")  # pragma: no cover - pattern built to hold them
    return pos


class MixedModelEquations:
    """C(theta) and friends for a design whose cross-products are cached.

    Parameters
    ----------
    cp : CrossProducts
    p : int
        Number of fixed-effect columns (the first p unknowns).
    offsets : list of int
        First column of each random term.
    structures : list of Structure
        One per random term, in the same order as ``offsets``.
    """

    def __init__(self, cp: CrossProducts, p: int, offsets: list[int], structures: list[Structure]):
        self.cp = cp
        self.p = p
        self.offsets = list(offsets)
        self.structures = list(structures)
        self.lower = cp.lower
        self.N = cp.lower.shape[0]
        self.rows = cp.lower.indices.astype(np.int64)
        self.cols = np.repeat(np.arange(self.N, dtype=np.int64), np.diff(cp.lower.indptr))
        self.offdiag_weight = np.where(self.rows == self.cols, 1.0, 2.0)
        self.ginv_pos = []
        for off, st in zip(self.offsets, self.structures):
            r, c = st.pattern()
            self.ginv_pos.append(_positions(self.lower, r + off, c + off))
        # per-group products as triplets, and where r_g - C_g s lands in a fixed sparse pattern
        coo = cp.WtW.tocoo()
        self._e_pos, self._e_grp, self._e_val = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
        self._e_row, self._e_col = self.rows[self._e_pos], self.cols[self._e_pos]
        self._e_w = self.offdiag_weight[self._e_pos]
        self._t = None  # where r_g - C_g s lands, built on first use
        self._one = None  # W'W, W'y and trace weights as dense vectors when there is one group
        self._ws = None  # (s, W'W s) for the last s, one group

    def _residual_pattern(self):
        """Fixed sparse pattern of the N x K matrix [r_k - C_k s] and where each product lands.

        Column k is nonzero on the unknowns that appear in component k's entries or right-hand
        side."""
        G, N = self.cp.n_components, self.N
        wty = self.cp.Wty.tocoo()
        indptr, indices, a, b, r = _component_pattern(G, N, self._e_grp, self._e_row, self._e_col,
                                                       wty.col.astype(np.int64), wty.row.astype(np.int64))
        pat = sp.csc_matrix((np.ones(indices.size), indices, indptr), shape=(N, G))
        off = self._e_row != self._e_col
        # b is kept for every entry (-1 on the diagonal, whose column is its row)
        self._t = {"pattern": pat, "a": a, "b": np.where(off, b, -1), "r": r, "rval": wty.data}

    @property
    def n_components(self) -> int:
        return self.cp.n_components

    def data_part(self, coef: np.ndarray) -> np.ndarray:
        """Values of H = W'R^-1W = sum_k c_k W_k'W_k on the pattern."""
        return self.cp.WtW @ coef

    def assemble(self, theta_terms: list[np.ndarray], coef: np.ndarray):
        """Return (C data, H data, rhs, y'R^-1y) at these parameters (``coef``: the residual
        components' coefficients c_k)."""
        H = self.data_part(coef)
        C = H.copy()
        for pos, st, th in zip(self.ginv_pos, self.structures, theta_terms):
            C[pos] += st.ginv(th)
        return C, H, self.cp.Wty @ coef, float(self.cp.yty @ coef)

    def matvec(self, data: np.ndarray, x):
        """(symmetric matrix with lower-triangle ``data``) @ x, for a vector, a matrix or a sparse
        matrix x (then the result is sparse too)."""
        if sp.issparse(x) and x.nnz < 0.1 * x.shape[0] * x.shape[1]:
            # sparse columns (e.g. one per at() level): sparse products keep time and memory
            # in proportion to their nonzeros
            low = sp.csc_matrix((data, self.lower.indices, self.lower.indptr), shape=(self.N, self.N))
            diag = np.zeros(self.N)
            on = self.rows == self.cols
            diag[self.rows[on]] = data[on]
            return (low @ x + low.T @ x - sp.diags(diag) @ x).tocsc()
        X = x.toarray() if sp.issparse(x) else np.asarray(x, dtype=float)
        X2 = np.ascontiguousarray(X.reshape(X.shape[0], -1), dtype=float)
        out = _symmetric_product(self.lower.indptr.astype(np.int64), self.rows, np.asarray(data, dtype=float), X2)
        if sp.issparse(x):
            return sp.csc_matrix(out)
        return out.reshape(X.shape)

    def h_products(self, H: np.ndarray, coef: np.ndarray, beta: sp.csc_matrix, s: np.ndarray) -> sp.csc_matrix:
        """H beta for H = sum_k c_k W_k'W_k, sparse for a sparse beta (as :meth:`matvec` gives
        it).  With one residual component and a mostly nonzero beta, H is c W'W and H beta is
        dense; W'W s, which the scores need too, comes from the same pass over W'W and is kept."""
        if self.n_components != 1 or beta.nnz < 0.1 * beta.shape[0] * beta.shape[1]:
            return self.matvec(H, beta)
        P = self.matvec(self._one_group()[0], np.column_stack([beta.toarray(), s]))
        self._ws = (s.copy(), P[:, -1].copy())
        return coef[0] * P[:, :-1]  # dense: beta is mostly nonzero here

    def _one_group(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """W'W (lower-triangle data), W'y (dense) and the weights of tr(C^-1 W'W) on the
        pattern (2 off the diagonal), when there is a single residual component."""
        if self._one is None:
            wtw = self.cp.WtW[:, 0].toarray().ravel()
            self._one = (wtw, self.cp.Wty[:, 0].toarray().ravel(), wtw * self.offdiag_weight)
        return self._one

    def _one_product(self, s: np.ndarray) -> np.ndarray:
        """W'W s for a single component, kept for the last s (scores and AI both need it)."""
        if self._ws is None or not np.array_equal(self._ws[0], s):
            self._ws = (s.copy(), self.matvec(self._one_group()[0], s))
        return self._ws[1]

    def component_sr_scs(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """s'r_k and s'C_k s for every residual component."""
        if self.n_components == 1:
            return np.array([float(self._one_group()[1] @ s)]), np.array([float(s @ self._one_product(s))])
        sr = self.cp.Wty.T @ s
        scs = _weighted_pair_sums(self._e_grp, self._e_w, self._e_val, s, self._e_row, s, self._e_col,
                                  self.n_components)
        return np.asarray(sr).ravel(), scs

    def component_trace(self, zc: np.ndarray) -> np.ndarray:
        """tr(C^-1 C_k) for every component, from the selected inverse on the pattern."""
        if self.n_components == 1:
            return np.array([float(self._one_group()[2] @ zc)])
        return _weighted_sums(self._e_grp, self._e_w, self._e_val, zc, self._e_pos, self.n_components)

    def component_residual_rhs(self, s: np.ndarray) -> sp.csc_matrix:
        """(N x K) sparse: column k is r_k - C_k s = W_k'B_k(y - W s)."""
        if self.n_components == 1:  # r - W'W s
            return column_matrix(self._one_group()[1] - self._one_product(s))
        if self._t is None:
            self._residual_pattern()
        t = self._t
        data = _residual_rhs_data(t["pattern"].nnz, t["r"], t["rval"], t["a"], t["b"], self._e_val, self._e_row,
                                  self._e_col, s)
        out = t["pattern"].copy()
        out.data = data
        return out
