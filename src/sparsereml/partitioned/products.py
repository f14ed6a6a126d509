"""The second pass over the partitions: the cross-products, with the in-memory kernels.

Each partition's records are matched to their cells (:mod:`.cells`), which gives their rows of
W = [X Z] (the cell's row), their residual group and their OLS fit; ``crossprod.cross_products``
then forms the partition's W_g'W_g, W_g'y_g, y_g'y_g and counts, exactly as for data in memory.
The partitions' products are kept as (key, value) pairs, keyed by their place in the equations,
and summed by a tree of pairwise merges; the node then lays the sum out on the pattern of the
equations.  What travels between workers and the node is the size of the equations, not of the
records."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..crossprod import CrossProducts, _on_pattern, cross_products, lower_pattern
from ..errors import DataError
from .cells import RowFilter

__all__ = ["CellCoder", "Products", "partition_products", "merge_products", "assemble"]


@dataclass
class CellCoder:
    """What a worker needs to code a partition: the cells' values per factor column (as an index
    of its distinct values and each cell's position in it), their rows of W, OLS fit and group."""

    rows: RowFilter
    levels: list  # per column: pd.Index of its distinct values
    strides: np.ndarray  # mixed-radix place of each column in a cell's key
    sorted_keys: np.ndarray  # the cells' keys, sorted
    cell_of_key: np.ndarray  # the cell of each sorted key
    W: sp.csr_matrix  # one row per cell
    xb: np.ndarray  # X b per cell (b: the OLS coefficients)
    group: np.ndarray  # residual group per cell
    n_groups: int

    @classmethod
    def build(cls, rows: RowFilter, frame: pd.DataFrame, W: sp.csr_matrix, xb: np.ndarray, group: np.ndarray,
              n_groups: int) -> "CellCoder":
        names = list(frame.columns[: len(frame.columns) - 3])  # all but n, mean, m2
        levels = [pd.Index(pd.unique(_values(frame[c]))) for c in names]
        sizes = np.array([max(len(lv), 1) for lv in levels], dtype=float)
        if np.prod(sizes) >= 2.0 ** 62:
            raise DataError(f"the factor columns {', '.join(names)} have too many combinations of levels "
                            f"({np.prod(sizes):.3g}) to key the cells by one integer; fit fewer factor columns")
        strides = np.ones(len(names), dtype=np.int64)
        for j in range(len(names) - 2, -1, -1):
            strides[j] = strides[j + 1] * int(sizes[j + 1])
        coder = cls(rows, levels, strides, np.zeros(0, np.int64), np.zeros(0, np.int64), W, xb, group, n_groups)
        keys = coder.keys(frame[names], "the cells")
        order = np.argsort(keys, kind="stable")
        coder.sorted_keys, coder.cell_of_key = keys[order], order
        return coder

    def with_rows(self, W: sp.csr_matrix, xb: np.ndarray) -> "CellCoder":
        """The same cells' keys with other rows of W and X b per cell (no second pass over the
        cells' levels)."""
        return replace(self, W=W, xb=xb)

    def keys(self, cols: pd.DataFrame, name: str) -> np.ndarray:
        key = np.zeros(len(cols), dtype=np.int64)
        for j, (c, lv) in enumerate(zip(cols.columns, self.levels)):
            s = cols[c]
            if isinstance(s.dtype, pd.CategoricalDtype):  # through the categories: no pass over values
                where = lv.get_indexer(pd.Index(_values(pd.Series(s.cat.categories))))
                code = np.where(s.cat.codes.to_numpy() >= 0, where[s.cat.codes.to_numpy()], -1)
            else:
                code = lv.get_indexer(_values(s))
            if (code < 0).any():
                raise DataError(f"{name}: column {c!r} has a value the first pass did not see "
                                f"({s.iloc[int(np.flatnonzero(code < 0)[0])]!r}); was the partition changed "
                                f"during the fit?")
            key += code.astype(np.int64) * self.strides[j]
        return key

    def cells(self, cols: pd.DataFrame, name: str) -> np.ndarray:
        """The cell of each record (rows of ``cols``, the factor columns)."""
        key = self.keys(cols, name)
        pos = np.searchsorted(self.sorted_keys, key)
        pos = np.minimum(pos, self.sorted_keys.size - 1)
        if not np.array_equal(self.sorted_keys[pos], key):
            raise DataError(f"{name}: a combination of levels the first pass did not see; was the partition "
                            f"changed during the fit?")
        return self.cell_of_key[pos]


def _values(s: pd.Series) -> np.ndarray:
    """A column's values to match on: categoricals as their values, numbers as floats (an int
    column in one partition and a float one in another hold the same levels)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(s.cat.categories.dtype)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=float)
    return s.to_numpy(dtype=object)


@dataclass
class Products:
    """Summed cross-products of some partitions as (key, value) pairs: ``total`` W'W keyed by
    row + N col (lower triangle), ``wtw`` by that key times K plus the group, ``wty`` by column
    times K plus the group; ``yty`` and ``counts`` per group."""

    total: tuple
    wtw: tuple
    wty: tuple
    yty: np.ndarray
    counts: np.ndarray
    cells: dict = field(default_factory=dict)  # grid group -> (W, y) on its grid (structured residuals)
    group_yty: np.ndarray | None = None  # with grids (yty is then per component): y_g'y_g per group


def partition_products(df: pd.DataFrame, name: str, coder: CellCoder, grids=None) -> Products | None:
    """The cross-products of one partition (None when no record of it is used); ``grids``, a
    :class:`~.grids.GridPlan`, forms those of the structured residual groups it holds."""
    cols, y, _ = coder.rows.apply(df, name)
    if y.size == 0:
        return None
    cell = coder.cells(cols, name)
    W = coder.W[cell]
    W.sort_indices()
    if grids is not None:
        return grids.products(W, y - coder.xb[cell], coder.group[cell], cell, name)
    cp = cross_products(W, y - coder.xb[cell], coder.group[cell], coder.n_groups)
    return _pairs(cp, coder.W.shape[1])


def _pairs(cp: CrossProducts, N: int) -> Products:
    low = cp.lower
    K = cp.WtW.shape[1]
    key = low.indices.astype(np.int64) + N * np.repeat(np.arange(N, dtype=np.int64), np.diff(low.indptr))
    wtw = cp.WtW.tocsc()
    wtw_key = key[wtw.indices] * K + np.repeat(np.arange(K, dtype=np.int64), np.diff(wtw.indptr))
    wty = cp.Wty.tocsc()
    wty_key = wty.indices.astype(np.int64) * K + np.repeat(np.arange(K, dtype=np.int64), np.diff(wty.indptr))
    return Products((key, np.asarray(cp.total, float)), _summed(wtw_key, wtw.data), _summed(wty_key, wty.data),
                    np.asarray(cp.yty, float), np.asarray(cp.counts, float))


def _summed(keys: np.ndarray, values: np.ndarray) -> tuple:
    uniq, inv = np.unique(keys, return_inverse=True)
    return uniq, np.bincount(inv.ravel(), weights=values, minlength=uniq.size)


def merge_products(a: Products | None, b: Products | None) -> Products | None:
    """The sum of two partitions' (or sets of partitions') products."""
    if a is None or b is None:
        return a if b is None else b
    both = [_summed(np.concatenate([x[0], y[0]]), np.concatenate([x[1], y[1]]))
            for x, y in ((a.total, b.total), (a.wtw, b.wtw), (a.wty, b.wty))]
    gy = None if a.group_yty is None else a.group_yty + b.group_yty
    return Products(*both, a.yty + b.yty, a.counts + b.counts, {**a.cells, **b.cells}, gy)


def assemble(p: Products, N: int, extra: list, grids=None) -> CrossProducts:
    """The summed products on the pattern of the equations, as ``cross_products`` lays out those
    of records in memory (W'W's structural lower triangle, its diagonal and the ``extra``
    entries; with ``grids``, a :class:`~.grids.GridPlan`, the grid components' entries too)."""
    K = p.yty.size
    if grids is not None:
        N, extra = grids.N, list(extra) + grids.pattern(p.wtw[0])
    key, val = p.total
    gram = sp.csc_matrix((val, (key % N, key // N)), shape=(N, N))
    gram.sum_duplicates()
    gram.sort_indices()
    Cp, Ci = gram.indptr, gram.indices
    has_diag = np.all(np.diff(Cp) > 0) and np.all(Ci[Cp[:-1]] == np.arange(N))
    if has_diag and not extra:
        lower = sp.csc_matrix((np.zeros(Ci.size), Ci.copy(), Cp.copy()), shape=(N, N))
        total = gram.data.copy()
    else:
        lower = lower_pattern(gram, extra)
        total = _on_pattern(lower, gram)
    low_key = lower.indices.astype(np.int64) + N * np.repeat(np.arange(N, dtype=np.int64), np.diff(lower.indptr))
    wkey, wval = p.wtw
    pos = np.searchsorted(low_key, wkey // K)
    WtW = sp.csc_matrix((wval, (pos, wkey % K)), shape=(lower.nnz, K))
    rkey, rval = p.wty
    Wty = sp.csc_matrix((rval, (rkey // K, rkey % K)), shape=(N, K))
    if grids is None:
        return CrossProducts(lower, WtW, Wty, p.yty.copy(), p.counts.copy(), total)
    return CrossProducts(lower, WtW, Wty, p.yty.copy(), p.counts.copy(), total, grids.group_of, dict(p.cells))
