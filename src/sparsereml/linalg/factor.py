"""SparseLDL: analyse once, refactor per iteration; solves, log|C|, selected inverse, T'C^-1T.

Analysis (once): absorb an independent set of low-degree unknowns (``absorb.py``), choose an
order for the reduced matrix by a cost model (``ordering.py``; CHOLMOD only, QDLDL orders
itself), and let the backend analyse the reduced pattern.  Each factorisation then forms the
reduced matrix, has the backend factor it, and joins the absorbed columns and the backend's
factor into one unit-lower L with diagonal D over all unknowns.  Everything after that (solves,
selected inverse, quadratic forms) runs on that joined factor with this package's kernels.

The *dense block* is the factor's last supernode when it is at least _LAPACK_WIDTH columns wide:
the crossed unknowns (mothers, trials) that fill makes dense, the star's centre when StarFactor
factors the equations.  LAPACK inverts it, and solves and quadratic forms treat it as one dense
triangle.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import get_num_threads
from scipy.linalg import blas, lapack, solve_triangular

from . import kernels, selinv
from .analysis import choose_absorption, choose_method
from .backends import LDL, NotPositiveDefinite, make_backend, resolve_backend
from .sparse_solve import DENSE_LIMIT, sparse_quadratic
from .star import StarFactor
from .threads import dense_threads, lapack_library

__all__ = ["SparseLDL", "STORAGE"]

# how the factor holds an unknown (SparseLDL.storage): codes are positions in this tuple
STORAGE = ("sparse", "absorbed", "star leaf", "dense block")

_LAPACK_WIDTH = 48  # supernodes at a root of the elimination tree at least this wide are inverted by LAPACK


def _positions(lower: sp.csc_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    n = lower.shape[0]
    keys = lower.indices.astype(np.int64) + n * np.repeat(np.arange(n, dtype=np.int64), np.diff(lower.indptr))
    return np.searchsorted(keys, rows.astype(np.int64) + n * cols.astype(np.int64))


_NO_DENSE = np.zeros((1, 1), order="F")  # stands for the dense block's inverse when there is none
# a star's dense block wider than this is inverted in place (no second copy of it in memory); a
# solve after that factorises again
_DENSE_COPY_MAX = 4096
# a rough selected inverse (``single=True``) inverts a dense block at least this wide in single
# precision: LAPACK's spotri beats dpotri once the block is wide enough for the conversions to
# and from float32 and the condition estimate to be small beside the inverse.  It does so only
# when LAPACK's estimate of the Cholesky factor's condition number (dtrcon, cheap beside the
# inverse) keeps float32's rounding of the inverse below ~1e-3 (cond(block) = cond(factor)^2 <=
# 1e4).  Measurements: benchmarks/RESULTS.md (2026-11-26, sixth session; 2026-12-07, issue 14).
SINGLE_DENSE_MIN = 512
_SINGLE_MAX_COND = 100.0


class SparseLDL:
    """Factor of a symmetric positive-definite matrix with a fixed pattern.

    Parameters
    ----------
    lower : scipy.sparse.csc_matrix
        Lower triangle (with the full diagonal) of the matrix; only its pattern is used here.
    backend : {"cholmod", "qdldl", "auto"}, optional
    groups : ndarray of int, optional
        A group label per unknown (e.g. the model term it belongs to, fixed effects last);
        used to propose orderings that keep groups together.
    absorb : bool
        Eliminate an independent set of low-degree unknowns first (exact).
    star : bool, optional
        Factor a star-shaped reduced matrix (dense leaves around the dense block) with dense
        kernels and LAPACK instead of the backend (default: yes, unless the environment variable
        ``SPARSEREML_STAR`` is 0).
    """

    def __init__(self, lower: sp.csc_matrix, backend: str | None = None, groups: np.ndarray | None = None,
                 absorb: bool = True, star: bool | None = None, **options):
        lower = sp.csc_matrix(lower)
        lower.sort_indices()
        self._analysed = (lower, groups, absorb, star, options)  # what a copy is analysed from again
        self.n = lower.shape[0]
        self._rows = lower.indices.astype(np.int64)
        self._cols = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(lower.indptr))
        self._plan, reduced, ordered = choose_absorption(lower, groups, absorb)
        rest = self._plan.rest if self._plan else np.arange(self.n)
        self.backend = resolve_backend(backend)
        order, opts, red_q, star, self.ordering_table, self.ordering = choose_method(
            reduced, rest, groups, dict(options), star, self.backend, ordered)
        self.method = "leaves + dense block (LAPACK)" if star is not None else self.backend
        self._rest_order = rest[order]  # reduced unknowns in the order handed to the backend
        qpos = np.empty(rest.size, dtype=np.int64)
        qpos[order] = np.arange(rest.size)
        if self._plan:
            self._plan.prepare(qpos, red_q)
        else:  # map C's data straight into the permuted pattern
            self._gather = _positions(red_q, np.maximum(qpos[self._rows], qpos[self._cols]),
                                      np.minimum(qpos[self._rows], qpos[self._cols]))
        self._red_nnz = red_q.nnz
        self._backend = star if star is not None else make_backend(red_q.astype(float), self.backend, **opts)
        self.ldl: LDL | None = None
        self._joined = False  # the joined factor's pattern is known after the first factorisation
        self._star_dense = False  # set with the joined pattern: the star's centre is the dense block
        self._dense_spent = False  # the dense block's Cholesky factor was overwritten by its inverse
        self._data = None  # the values of the last factorisation (to factorise again)
        self._dense_bufs = None
        self._dense32 = None  # float32 copy of the dense block for a rough selected inverse
        self.single_used = False  # the last selected inverse's dense block went through single precision

    def __reduce__(self):
        # the backends' numeric factors cannot be pickled: a copy is analysed again from the same
        # pattern (the same ordering) and holds no factorisation until its first factorize()
        lower, groups, absorb, star, options = self._analysed
        return (_analysed_again, (lower, self.backend, groups, absorb, star, options))

    # -- numeric factorisation --------------------------------------------------
    def factorize(self, data: np.ndarray) -> None:
        """Factor the matrix whose lower-triangle values (in the analysed pattern) are ``data``.

        The factor's arrays (``self.ldl``) are overwritten by the next factorisation."""
        data = np.asarray(data, dtype=float)
        self._data, self._dense_spent = data, False
        if self._plan:
            lx_a, d_a, rdata = self._plan.reduce(data)
            if np.any(d_a <= 0):
                raise NotPositiveDefinite("the mixed-model equations are not positive definite")
        else:
            rdata = np.empty(self._red_nnz)
            rdata[self._gather] = data
        k = self._plan.absorbed.size if self._plan else 0
        first = not self._joined
        if first:  # first factorisation: learn the joined pattern
            # buffers reused by every later factorisation (fresh pages cost more than the copy);
            # the star's pattern is known already, so it factorises straight into them
            star = isinstance(self._backend, StarFactor)
            if star:
                nA = int(self._plan.Sp[-1]) if self._plan else 0
                self._Lx_buf, self._d_buf = np.empty(nA + self._backend.Li.size), np.empty(self.n)
                red = self._backend.factorize(rdata, self._Lx_buf[nA:], self._d_buf[k:])
            else:
                red = self._backend.factorize(rdata)
            self._join_pattern(red)
            nA = int(self._Lp[k])
            if not star:
                self._Lx_buf, self._d_buf = np.empty(self._Li.size), np.empty(self.n)
                self._Lx_buf[nA:], self._d_buf[k:] = red.Lx, red.d
            self._Zd_buf, self._Zx_buf = np.empty(self.n), np.empty(self._Li.size)
            Lx, d = self._Lx_buf, self._d_buf
        else:
            nA = int(self._Lp[k])
            Lx, d = self._Lx_buf, self._d_buf
            if self._star_dense:  # the dense block is used through its Cholesky factor: no unit-L columns
                red = self._backend.factorize(rdata, Lx[nA:], d[k:], dense_columns=False)
            else:
                red = self._backend.factorize(rdata, Lx[nA:], d[k:])
            if not np.array_equal(red.Lp, self._red_Lp):  # pragma: no cover - fixed by the analysis
                raise RuntimeError("the factor's pattern changed between factorisations")
            if red.Lx.base is not Lx:  # the backend returned arrays of its own (QDLDL)
                Lx[nA:], d[k:] = red.Lx, red.d
        if self._plan:
            Lx[:nA] = lx_a if self._abs_sort is None else lx_a[self._abs_sort]
            d[:k] = d_a
        self.ldl = LDL(self._perm, self._pinv, self._Lp, self._Li, Lx, d)
        self._dense_ready = False
        self._dense_lx = first or not self._star_dense  # the dense block's columns of Lx are current

    def _full_lx(self) -> LDL:
        """The factor with the dense block's unit-L columns written into Lx (kernels that walk
        every column need them; its Cholesky factor serves everything else)."""
        if not self._dense_lx:
            self._dense_factor()  # factorises again if the selected inverse overwrote it
            k = self.n_absorbed
            nA = int(self._Lp[k])
            self._backend.write_dense_columns(self._Lx_buf[nA:], self._d_buf[k:])
            self._dense_lx = True
        return self.ldl

    def _join_pattern(self, red: LDL) -> None:
        """Pattern of the joined factor: absorbed columns first, then the backend's factor."""
        self._red_Lp = red.Lp.copy()
        self._joined = True
        k = self._plan.absorbed.size if self._plan else 0
        if self._plan:
            plan = self._plan
            # rows of absorbed columns in joined positions, sorted within each column
            rows = k + red.pinv[plan.Si]
            col = np.repeat(np.arange(k), np.diff(plan.Sp))
            same_col = np.diff(col) == 0
            if np.all(np.diff(rows)[same_col] > 0):  # the backend kept the order: rows already sorted
                self._abs_sort = None
            else:
                self._abs_sort = np.lexsort((rows, col))
                rows = rows[self._abs_sort]
            Li = np.empty(rows.size + red.Li.size, dtype=np.int64)
            Li[:rows.size] = rows
            np.add(red.Li, k, out=Li[rows.size:])
            Lp = np.concatenate([plan.Sp, red.Lp[1:] + plan.Sp[-1]])
            perm = np.concatenate([plan.absorbed, self._rest_order[red.perm]])
        else:
            Lp, Li = red.Lp, red.Li
            perm = self._rest_order[red.perm]
        self._Lp, self._Li = Lp.astype(np.int64, copy=False), Li.astype(np.int64, copy=False)
        self._perm = perm.astype(np.int64)
        self._pinv = np.empty_like(self._perm)
        self._pinv[self._perm] = np.arange(self.n)
        self.sn_start, self.col_sn = kernels.supernodes(self.n, self._Lp, self._Li)
        last = self.sn_start[1:] - 1
        below = self._Lp[last + 1] - self._Lp[last]
        widths = np.diff(self.sn_start)
        self._lapack_supernodes = np.flatnonzero((below == 0) & (widths >= _LAPACK_WIDTH))
        self._done = np.zeros(widths.size, dtype=np.bool_)
        self._done[self._lapack_supernodes] = True
        self._levels = selinv.supernode_levels(self._Lp, self._Li, self.sn_start, self.col_sn)
        fused, self._kids = selinv.fused_children(self._Lp, self._Li, self.sn_start, self.col_sn, self._done)
        self._skip = self._done | fused  # done before the recursion, or with their parent
        self._selinv_plan = selinv.selinv_plan(self._Lp, self.sn_start, self._skip, *self._levels,
                                                get_num_threads(), kids=self._kids)
        s = self.sn_start
        final = self._lapack_supernodes[self._lapack_supernodes == widths.size - 1]
        self._dense_start = int(s[final[0]]) if final.size else self.n  # first column of the dense block
        # the star's centre is the dense block: solves and the inverse use its Cholesky factor
        star = isinstance(self._backend, StarFactor)
        self._star_dense = star and self._dense_start == k + self._backend.dense_start
        if self._star_dense:  # the backward solve below the dense block, by leaves, then absorbed columns
            stages = [k + self._backend.leaf_start, np.arange(k + 1)]
            self._backward = kernels.backward_plan(self._Lp, stages, get_num_threads())
        self._zpos = self._z_positions()

    def _z_positions(self) -> np.ndarray:
        """Where Z holds each entry of C (those inside the dense block: in its dense inverse).
        An absorbed column's entries are known from the absorption's layout (its column of L
        holds them in that order); the rest are looked up in the factor's pattern."""
        if not self._plan:
            return kernels.pattern_positions(self._rows, self._cols, self._pinv, self._Lp, self._Li,
                                             self.sn_start, self.col_sn, self._dense_start, get_num_threads())
        plan, k = self._plan, self.n_absorbed
        pos = np.empty(self._rows.size, dtype=np.int64)
        known = np.zeros(self._rows.size, dtype=bool)
        slot = np.arange(plan.src.size, dtype=np.int64)  # entry y of the layout sits at Lx[y]
        if self._abs_sort is not None:
            slot[self._abs_sort] = slot.copy()
        pos[plan.src], known[plan.src] = slot, True
        diag = plan.diagonal_positions()  # absorbed column j is column j of the joined factor
        pos[diag], known[diag] = -1 - np.arange(k, dtype=np.int64), True
        rest = np.flatnonzero(~known)
        pos[rest] = kernels.pattern_positions(self._rows[rest], self._cols[rest], self._pinv, self._Lp, self._Li,
                                              self.sn_start, self.col_sn, self._dense_start, get_num_threads())
        return pos

    # -- results of the factorisation -----------------------------------------------
    @property
    def nnz_factor(self) -> int:
        return int(self.ldl.Lp[-1]) + self.n

    @property
    def largest_supernode(self) -> int:
        return int(np.diff(self.sn_start).max())

    @property
    def n_absorbed(self) -> int:
        return self._plan.absorbed.size if self._plan else 0

    @property
    def dense_block_size(self) -> int:
        """Columns of the factor's dense block (0 when it has none); known after the first
        factorisation."""
        self._require_joined()
        return self.n - self._dense_start

    def storage(self) -> np.ndarray:
        """How the factor holds each unknown, in the matrix's own (natural) order.

        Returns
        -------
        ndarray of int8
            A code per unknown, ``STORAGE[code]`` its name: 1 "absorbed" (eliminated before the
            backend, ``absorb.py``), 2 "star leaf" (in a leaf of the star, ``star.py``), 3
            "dense block" (the factor's trailing dense supernode, factorised and inverted by
            LAPACK), 0 "sparse" (anywhere else in the backend's supernodal factor).

        Raises
        ------
        RuntimeError
            Before the first factorisation (the dense block is found in the joined factor).
        """
        self._require_joined()
        k = self.n_absorbed
        code = np.zeros(self.n, dtype=np.int8)  # in the joined factor's order
        code[:k] = STORAGE.index("absorbed")
        if isinstance(self._backend, StarFactor):
            code[k:k + self._backend.dense_start] = STORAGE.index("star leaf")
            code[k + self._backend.dense_start:] = STORAGE.index("dense block")
        code[self._dense_start:] = STORAGE.index("dense block")
        out = np.empty_like(code)
        out[self._perm] = code
        return out

    def _require_joined(self) -> None:
        if not self._joined:
            raise RuntimeError("the factor's layout is known after its first factorisation (factorize())")

    def logdet(self) -> float:
        """log |C| = sum log d."""
        return float(np.sum(np.log(self.ldl.d)))

    def solve(self, b: np.ndarray) -> np.ndarray:
        """C^-1 b for a vector or a matrix b (natural order)."""
        f = self.ldl
        b = np.asarray(b, dtype=float)
        if b.ndim == 1:
            x = b[f.perm]
            c = self._dense_factor()
            if c is not None:  # the dense block's part with LAPACK on its Cholesky factor
                t = self._dense_start
                kernels.ldl_forward_vec(t, f.Lp, f.Li, f.Lx, x)
                x[t:] = lapack.dpotrs(c, x[t:], lower=1)[0]  # c is a positive-definite factor
                kernels.backward_split(self._backward, f.Lp, f.Li, f.Lx, f.d, x)
            else:
                kernels.ldl_solve_vec(f.n, f.Lp, f.Li, f.Lx, f.d, x)
            out = np.empty_like(x)
            out[f.perm] = x
            return out
        f = self._full_lx()
        X = np.ascontiguousarray(b[f.perm])
        kernels.ldl_solve_inplace(f.n, f.Lp, f.Li, f.Lx, f.d, X)
        out = np.empty_like(X)
        out[f.perm] = X
        return out

    def _gather_columns(self, a: int, b: int) -> np.ndarray:
        f = self._full_lx()
        Lc = np.zeros((b - a, b - a), order="F")
        kernels.gather_dense_block(a, b - a, f.Lp, f.Lx, Lc)
        return Lc

    def _dense_buffers(self) -> tuple[np.ndarray, np.ndarray]:
        """Two buffers as wide as the dense block, kept across factorisations (fresh pages for
        them at every iteration cost more than the work done in them)."""
        if self._dense_bufs is None:
            w = self.n - self._dense_start
            self._dense_bufs = (np.zeros((w, w), order="F"), np.zeros((w, w), order="F"))
        return self._dense_bufs

    def _dense_block(self) -> np.ndarray:
        """The dense block's unit-lower triangle of L (gathered once per factorisation)."""
        Lr = self._dense_buffers()[0]
        if not self._dense_ready:
            f = self._full_lx()
            kernels.gather_dense_block(self._dense_start, self.n - self._dense_start, f.Lp, f.Lx, Lr)
            self._dense_ready = True
        return Lr

    def _dense_factor(self) -> np.ndarray | None:
        """The Cholesky factor of the dense block (c = L_b D_b^1/2) when the star backend's
        centre is the dense block, else None."""
        if not self._star_dense:
            return None
        if self._dense_spent:  # inverted in place by the selected inverse: factorise again
            self.factorize(self._data)
        return self._backend.dense_factor()

    def selected_inverse(self, single: bool = False) -> np.ndarray:
        """Entries of C^-1 on the analysed pattern of C (aligned with its lower-triangle data).

        Parameters
        ----------
        single : bool
            Allow a wide, well-conditioned dense block to be inverted in single
            precision: its entries then carry relative errors of about 1e-7 times its condition
            number, which is harmless for a Newton step far from the optimum, not for a final
            answer.
        """
        f = self.ldl
        Zd, Zx = self._Zd_buf, self._Zx_buf
        self.single_used = False  # whether this inverse went through single precision
        Zdense = _NO_DENSE  # the dense block's inverse, read by the recursion as a dense array
        for s in self._lapack_supernodes:
            a, b = self.sn_start[s], self.sn_start[s + 1]
            inv = self._supernode_inverse(a, b, single)
            if a == self._dense_start:
                Zdense = inv
                Zd[a:b] = np.diagonal(inv)
            else:
                kernels.scatter_dense_block(a, b - a, f.Lp, Zd, Zx, inv)
        selinv.selinv(f.Lp, f.Li, f.Lx, f.d, self.sn_start, self.col_sn, self._skip, self._levels[1],
                       self._selinv_plan, Zd, Zx, self._dense_start, Zdense, self._kids)
        return kernels.gather_pattern(self._zpos, Zd, Zx, Zdense.ravel(order="F"), get_num_threads())

    def _supernode_inverse(self, a: int, b: int, single: bool) -> np.ndarray:
        """The inverse (lower triangle) of the wide root supernode of columns a:b, from its
        Cholesky factor: in single precision when asked for and it fits, else LAPACK dpotri."""
        c = self._dense_factor() if a == self._dense_start else None
        keep = b - a <= _DENSE_COPY_MAX  # the factor stays intact (later solves use it)
        if single and c is not None and self._single_fits(c):
            inv = self._single_inverse(c, self._dense_buffers()[1] if keep else None)
            if inv is not None:
                self.single_used = True
                self._dense_spent = self._dense_spent or inv is c
                return inv
        if c is not None and not keep:
            Lc, self._dense_spent = c, True  # inverted in place
        elif a == self._dense_start:  # the inverse goes to a buffer
            Lc = self._dense_buffers()[1]
            if c is not None:
                np.copyto(Lc, c)
            else:
                kernels.scaled_copy(self._dense_block(), np.sqrt(self.ldl.d[a:b]), Lc)
        else:
            Lc = self._gather_columns(a, b)
            Lc *= np.sqrt(self.ldl.d[a:b])[None, :]
        with dense_threads(lapack_library()):
            inv, info = lapack.dpotri(Lc, lower=1, overwrite_c=1)
        if info != 0:  # pragma: no cover - the factor is positive definite
            raise NotPositiveDefinite("dense block of the factor is singular")
        return inv

    def _single_fits(self, c: np.ndarray) -> bool:
        """Whether the dense block's Cholesky factor ``c`` is wide enough for single precision to pay,
        its entries within float32's range, and its condition number small enough."""
        if c.shape[0] < SINGLE_DENSE_MIN:
            return False
        diag = np.diagonal(c)  # (the inverse's diagonal, which bounds its entries, is checked after)
        if not (float(diag.min()) > 1e-15 and float(diag.max()) < 1e15):
            return False
        rcond, info = lapack.dtrcon(c, norm="1", uplo="L", diag="N")
        return info == 0 and rcond * _SINGLE_MAX_COND >= 1.0

    def _single_inverse(self, c: np.ndarray, out: np.ndarray | None) -> np.ndarray | None:
        """The inverse from the Cholesky factor ``c`` by LAPACK spotri, written into ``out``
        (into ``c`` itself when None; lower triangle, double precision) through a float32 buffer
        kept across calls.  None, with ``c`` untouched, if float32 could not invert it."""
        w = c.shape[0]
        if self._dense32 is None or self._dense32.shape[0] != w:
            self._dense32 = np.empty((w, w), dtype=np.float32, order="F")
        np.copyto(self._dense32, c, casting="same_kind")
        with dense_threads(lapack_library()):
            inv32, info = lapack.spotri(self._dense32, lower=1, overwrite_c=1)
        if info != 0 or not np.isfinite(np.diagonal(inv32)).all():
            return None
        out = c if out is None else out
        np.copyto(out, inv32)
        return out

    def inverse_quadratic(self, T) -> np.ndarray:
        """T' C^-1 T for a sparse (or dense) n x m matrix T, exploiting a sparse T's sparsity.

        A mostly nonzero T is solved as a dense array in one pass over the factor; otherwise
        forward substitution follows only the elimination-tree paths of T's nonzeros.  The
        factor's dense block is solved for all columns at once with BLAS.
        """
        f = self.ldl
        d0 = self._dense_start  # first column of the dense block (n when there is none)
        m = T.shape[1]
        dense = not sp.issparse(T) and f.n * m <= DENSE_LIMIT
        T = np.asarray(T, dtype=float) if dense else sp.csc_matrix(T)
        scale = 1.0 / np.sqrt(f.d[:d0])
        if dense or (T.nnz > 0.25 * f.n * m and f.n * m <= DENSE_LIMIT):
            # mostly nonzero (e.g. W'R^-1 times working variates): one dense forward pass
            X = np.ascontiguousarray((T if dense else T.toarray())[f.perm])
            kernels.ldl_forward_block(d0, f.Lp, f.Li, f.Lx, X)
            Yd = X[:d0] * scale[:, None]
            out = blas.dsyrk(1.0, Yd, trans=1, lower=0)
            out = np.triu(out) + np.triu(out, 1).T
            R = X[d0:]
        else:
            out, R = sparse_quadratic(f, d0, T, scale)
        if d0 < f.n:
            c = self._dense_factor()
            if c is not None:  # c^-1 R = D^-1/2 L^-1 R: no unit-L block to gather
                Y = solve_triangular(c, R, lower=True, check_finite=False)
                out += Y.T @ Y
            else:
                Lb = self._dense_block()
                Y = solve_triangular(Lb, R, lower=True, unit_diagonal=True, check_finite=False)
                out += (Y / f.d[d0:, None]).T @ Y
        return out


def _analysed_again(lower, backend, groups, absorb, star, options) -> SparseLDL:
    """Unpickling a SparseLDL: the same analysis, with the same backend where it is installed."""
    from .backends import available_backends

    return SparseLDL(lower, backend if backend in available_backends() else None, groups, absorb, star, **options)
