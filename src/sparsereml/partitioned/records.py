"""The data pass of a model with covariates: record by record in each partition.

A covariate's value differs between the records of a cell, so the cells cannot hold the rows of
W = [X Z].  They still fix which columns a record has (its levels, hence its row of W's pattern):
the design is built on the cells with every covariate set to 1, and a record's row is its cell's
row with each entry multiplied by the record's covariates of that entry's term, in the order the
in-memory design multiplies them (so the values are those of W in memory, bit for bit).  A pass
then forms each partition's X'X and X'y (the aliasing and OLS of the whole data), and another its
W'W, W'y, y'y per residual group with ``crossprod.cross_products``, with what the start values
need of the records (:class:`RecordStats`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..crossprod import cross_products
from ..errors import DataError
from .cells import Cells, merge_cells
from .products import CellCoder, _pairs, merge_products

__all__ = ["Multipliers", "RecordCoder", "RecordStats", "partition_gram", "partition_records", "merge_records",
           "merge_gram"]


@dataclass(frozen=True)
class Multipliers:
    """Per covariate set, the columns of W whose entries a record multiplies by those covariates
    (``masks``: bool over W's columns), and which of W's columns are fixed (X: a zero drops the
    entry there, as in memory, while a random term keeps it)."""

    sets: tuple  # tuples of covariate names, in the order of the term's variables
    masks: tuple  # bool arrays over W's columns, one per set
    p: int  # X's columns come first


@dataclass
class RecordCoder:
    """What a worker needs to code a partition's records: the cells (their rows of W with the
    covariates at 1), the multipliers, the OLS coefficients, and what to gather for the start."""

    cells: CellCoder
    mult: Multipliers
    ols: np.ndarray
    terms: tuple = ()  # per random term needing record statistics: (index, codes per cell (k x cells), columns)
    regressions: tuple = ()  # per random regression: (index, k, covariate names or "1", units, column per cell)
    within: bool = False  # gather the records' cells of identical rows of W (within-cell variance)


def record_rows(df: pd.DataFrame, name: str, cells: CellCoder, mult: Multipliers, used: tuple | None = None):
    """The used records' rows of W (CSR, sorted columns), their response, residual group and
    cell, and their covariate columns (``used`` as :meth:`RowFilter.apply` takes it)."""
    cols, y, _ = cells.rows.apply(df, name, used)
    cov = {}
    for c in cells.rows.covariates:
        s = cols[c]
        if len(s) and (pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s)):
            raise DataError(f"column {c!r} is a covariate of the model but holds {s.dtype} values in {name}; write "
                            f"it as numbers in every partition (or make it a factor with C({c}) / factors=)")
        cov[c] = s.to_numpy(dtype=float)
    keys = cells.rows.keys
    cell = cells.cells(cols[keys], name) if keys else np.zeros(y.size, dtype=np.int64)
    W = cells.W[cell]
    W.sort_indices()
    row = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    drop = np.zeros(W.nnz, dtype=bool)
    for names, mask in zip(mult.sets, mult.masks):
        hit = np.flatnonzero(mask[W.indices])
        v = np.ones(hit.size)
        for c in names:
            v = v * cov[c][row[hit]]
        W.data[hit] = W.data[hit] * v
        drop[hit] = (v == 0) & (W.indices[hit] < mult.p)  # X has no entry where a covariate is 0
    if drop.any():
        keep = ~drop
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row[keep], minlength=W.shape[0]))])
        W = sp.csr_matrix((W.data[keep], W.indices[keep], indptr), shape=W.shape)
        W.has_sorted_indices = True
    return W, y, cells.group[cell], cell, cov


def partition_gram(df: pd.DataFrame, name: str, cells: CellCoder, mult: Multipliers):
    """X'X (dense) and X'y of one partition's records (None when it has none)."""
    X, y, _, _, _ = record_rows(df, name, cells, mult)
    if y.size == 0:
        return None
    from ..design.fixed import _row_gram

    X = X.tocsr()
    return _row_gram(X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data.astype(float),
                     X.shape[1]), X.T @ y


def merge_gram(a, b):
    """The sum of two partitions' X'X and X'y."""
    if a is None or b is None:
        return a if b is None else b
    return a[0] + b[0], a[1] + b[1]


@dataclass
class RecordStats:
    """What the start values need of the records, summed over partitions: per random term that
    is not an indicator (``terms``: records, sum of e, sum of e^2 and records per residual group
    of each column), per random regression (``regressions``: per unit A'A, A'e and records; the
    sum of each coefficient's squared covariate), and the cells of identical rows of W
    (``within``, as :class:`~.cells.Cells` keyed by the row's hash and group)."""

    terms: dict = field(default_factory=dict)
    regressions: dict = field(default_factory=dict)
    within: Cells | None = None


def partition_records(df: pd.DataFrame, name: str, coder: RecordCoder):
    """The cross-products of one partition's records and their :class:`RecordStats`."""
    W, y, group, cell, cov = record_rows(df, name, coder.cells, coder.mult)
    if y.size == 0:
        return None
    p = coder.mult.p
    e = y - (W[:, :p] @ coder.ols if p else 0.0)
    K = coder.cells.n_groups
    cp = cross_products(W, e, group, K)
    stats = RecordStats()
    for t, codes, size in coder.terms:
        rc = np.atleast_2d(codes)[:, cell]
        ok = rc >= 0
        c, ee = rc[ok], np.broadcast_to(e, rc.shape)[ok]
        stats.terms[t] = (np.bincount(c, minlength=size).astype(float), np.bincount(c, ee, minlength=size),
                          np.bincount(c, ee * ee, minlength=size),
                          np.bincount(c * K + np.broadcast_to(group, rc.shape)[ok], minlength=size * K))
    for t, k, names, q, column in coder.regressions:
        stats.regressions[t] = _regression_sums(column[cell] // k, q, names, cov, e)
    if coder.within:
        from ..reml.start import _row_hashes

        h = _row_hashes(W.indptr.astype(np.int64), W.indices.astype(np.int64),
                        np.ascontiguousarray(W.data, dtype=np.float64).view(np.uint64), group.astype(np.int64))
        g = pd.DataFrame({"h": h.view(np.int64), "g": group, "y": y}).groupby(["h", "g"], sort=False)["y"]
        agg = g.agg(["count", "mean", "var"]).reset_index()
        n = agg["count"].to_numpy(dtype=np.int64)
        frame = pd.DataFrame({"h": agg["h"].to_numpy(), "g": agg["g"].to_numpy(), "n": n,
                              "mean": agg["mean"].to_numpy(float),
                              "m2": np.nan_to_num(agg["var"].to_numpy() * (n - 1))})
        stats.within = Cells(frame, {"response": 0, "predictors": 0, "infinite": 0}, int(y.size))
    return _pairs(cp, W.shape[1]), stats


def _regression_sums(unit: np.ndarray, q: int, names: tuple, cov: dict, e: np.ndarray) -> tuple:
    """Per unit: A'A (k x k), A'e and records, where A's columns are the regression's covariates
    (1 for the intercept); and sum over records of each column squared."""
    A = np.vstack([np.ones(e.size) if c == "1" else cov[c] for c in names])
    k = A.shape[0]
    ata = np.stack([np.bincount(unit, A[a] * A[b], minlength=q) for a in range(k) for b in range(k)], axis=1)
    ate = np.stack([np.bincount(unit, A[a] * e, minlength=q) for a in range(k)], axis=1)
    return ata.reshape(q, k, k), ate, np.bincount(unit, minlength=q).astype(float), (A * A).sum(axis=1)


def _add(a: tuple, b: tuple) -> tuple:
    return tuple(x + y for x, y in zip(a, b))


def merge_records(a, b):
    """The sum of two partitions' (or sets of partitions') products and statistics."""
    if a is None or b is None:
        return a if b is None else b
    sa, sb = a[1], b[1]
    stats = RecordStats({t: _add(v, sb.terms[t]) for t, v in sa.terms.items()},
                        {t: _add(v, sb.regressions[t]) for t, v in sa.regressions.items()},
                        merge_cells(sa.within, sb.within) if sa.within is not None else None)
    return merge_products(a[0], b[0]), stats
