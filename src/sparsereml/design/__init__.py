"""Design stage: from a model specification and data to X, Z and residual groups.

``build_design(spec, data)`` is usable on its own: it returns a :class:`Design`
holding everything later stages need, with no reference back to the data frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numba import get_num_threads, njit

from .._warmup import kind_of, prepare
from ..data import ModelData, prepare_data
from ..formula.spec import ModelSpec
from ..linalg.threads import in_parallel
from .coding import ColumnSet, Factor, combine, encode
from .fixed import FixedDesign, find_aliased, fixed_design
from .groups import check_groups
from .random import ColumnBlock, RandomBlock, check_separable, random_block
from .residual import GridLayout, ResidualGroups, residual_groups

__all__ = ["Design", "response_summary", "build_design", "Factor", "encode", "combine", "find_aliased",
           "RandomBlock", "ColumnBlock", "ResidualGroups", "GridLayout", "FixedDesign"]


def response_summary(y) -> np.ndarray:
    """(values, sum of y, sum of y^2) of a response: what fits to the same records share."""
    y = np.asarray(y, dtype=float).ravel()
    return np.array([y.size, y.sum(), y @ y])


@dataclass
class Design:
    """The coded model: response, fixed design, random terms and residual groups.

    The mixed-model unknowns are ordered fixed effects first, then the random
    terms in the order written; ``offsets[k]`` is the first column of random term k.
    """

    spec: ModelSpec
    data: ModelData
    fixed: FixedDesign
    random: list
    residual: ResidualGroups
    _W: sp.csr_matrix | None = field(default=None, repr=False, compare=False)

    @property
    def y(self) -> np.ndarray:
        return self.data.y

    @property
    def n(self) -> int:
        return len(self.data.y)

    @property
    def p(self) -> int:
        return self.fixed.X.shape[1]

    @property
    def offsets(self) -> list[int]:
        out, start = [], self.p
        for rb in self.random:
            out.append(start)
            start += rb.size
        return out

    @property
    def n_columns(self) -> int:
        return self.p + sum(rb.size for rb in self.random)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_W": None}  # built again when first asked for

    def group_counts(self) -> np.ndarray:
        """Records per residual group."""
        return np.bincount(self.residual.record_group, minlength=self.residual.n_groups)

    #: whether the records are in this process (a partitioned design's stay in their partitions)
    holds_records = True

    def response_summary(self) -> np.ndarray:
        """(values, sum of y, sum of y^2) of the response used: what two fits to the same records
        share, also when the records stay in partitions (where the whole response is not at hand)."""
        return response_summary(self.y)

    def W(self) -> sp.csr_matrix:
        """W = [X Z] as a CSR matrix with sorted column indices (one row per record), built once."""
        if self._W is None:
            self._W = self._build_W()
        return self._W

    def _build_W(self) -> sp.csr_matrix:
        X = self.fixed.rows if self.fixed.rows is not None else sp.csr_matrix(self.fixed.X)
        X.sort_indices()
        # one row of codes (and values) per entry a record has in a term: one for most terms,
        # one per coefficient for a random regression
        codes, values, offsets = [], [], []
        plain = all(rb.values is None for rb in self.random)
        for rb, off in zip(self.random, self.offsets):
            c = np.atleast_2d(rb.record_column)
            codes.append(c)
            if not plain:
                values.append(rb.values if rb.values is not None else np.ones(c.shape))
            offsets += [off] * c.shape[0]
        rows = len(self.data.y)  # records (cells for a partitioned design)
        codes = np.vstack(codes) if codes else np.empty((0, rows), np.int64)
        values = np.vstack(values) if values else np.empty((0, 0))
        indptr, indices, data = _rows_of_w(X.indptr.astype(np.int64), X.indices.astype(np.int64),
                                           X.data.astype(float), np.ascontiguousarray(codes, dtype=np.int64),
                                           np.ascontiguousarray(values, dtype=float),
                                           np.asarray(offsets, dtype=np.int64), plain)
        W = sp.csr_matrix((data, indices, indptr), shape=(rows, self.n_columns))
        W.has_sorted_indices = True
        return W


def _rows_of_w(Xp, Xi, Xx, codes, values, offsets, plain: bool):
    """CSR of [X Z]: each row's X entries, then one entry per row of ``codes`` it has a level of
    (1 for a plain term, the covariate for a random regression; with ``plain`` every term is
    plain and ``values`` is not read).  Ranges of rows are written by plain threads (nogil
    kernels, not prange: cheaper to compile for the first fit)."""
    n = Xp.shape[0] - 1
    cut = np.linspace(0, n, get_num_threads() + 1).astype(np.int64)
    rows = [(cut[t], cut[t + 1]) for t in range(cut.size - 1)]
    count = np.empty(n, dtype=np.int64)
    in_parallel(_row_counts, [(Xp, codes, a, b, count) for a, b in rows])
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(count, out=indptr[1:])
    indices = np.empty(indptr[n], dtype=np.int64)
    data = np.empty(indptr[n])
    in_parallel(_fill_rows, [(Xp, Xi, Xx, codes, values, offsets, plain, a, b, indptr, indices, data)
                             for a, b in rows])
    return indptr, indices, data


@njit(cache=True, nogil=True)
def _row_counts(Xp, codes, r0, r1, count):
    """Entries of rows r0..r1-1 of [X Z]."""
    for i in range(r0, r1):
        c = Xp[i + 1] - Xp[i]
        for k in range(codes.shape[0]):
            if codes[k, i] >= 0:
                c += 1
        count[i] = c


@njit(cache=True, nogil=True)
def _fill_rows(Xp, Xi, Xx, codes, values, offsets, plain, r0, r1, indptr, indices, data):
    """Columns and values of rows r0..r1-1 of [X Z]."""
    for i in range(r0, r1):
        q = indptr[i]
        for p in range(Xp[i], Xp[i + 1]):
            indices[q] = Xi[p]
            data[q] = Xx[p]
            q += 1
        for k in range(codes.shape[0]):
            if codes[k, i] >= 0:
                indices[q] = offsets[k] + codes[k, i]
                data[q] = 1.0 if plain else values[k, i]
                q += 1


def build_design(spec: ModelSpec, data, na_action: str = "error", matrices: dict | None = None,
                 factors=None, backend: str | None = None) -> Design:
    """Code the data for a model.

    Parameters
    ----------
    spec : ModelSpec
        From :func:`sparsereml.formula.model_spec`.
    data : DataFrame or path
    na_action : {"error", "drop"}
    matrices : dict, optional
        Relationship matrices for ``vm(id, name)`` terms, by name.
    factors : list of str, optional
        Numeric columns to use as factors (see :func:`sparsereml.data.prepare_data`).
    backend : str, optional
        The factorisation backend the fit will use: on the first fit after installing, its
        kernels are compiled ahead, in parallel (``sparsereml._warmup``).

    Returns
    -------
    Design
    """
    md = data if isinstance(data, ModelData) else prepare_data(spec, data, na_action, factors)
    prepare(kind_of(spec), backend)  # the first fit after installing compiles its kernels in parallel
    n = len(md.y)
    columns = ColumnSet(md.columns)  # each column coded as a factor at most once
    check_groups(spec, matrices)  # a vm() on a pedigree with groups says how to fit them
    fx = fixed_design(spec.fixed, columns, n, md.y, matrices)
    blocks = [random_block(t, columns, n, matrices) for t in spec.random]
    groups = residual_groups(spec.residual, columns, n)
    check_separable(blocks, groups, n)
    return Design(spec, md, fx, blocks, groups)
