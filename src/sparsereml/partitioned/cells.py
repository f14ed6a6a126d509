"""The first pass over the partitions: the cells of the data and their statistics.

A cell is a distinct combination of the values of the model's factor columns.  For a model of
factors only, every record of a cell has the same row of W = [X Z] and the same residual group,
so the cells give every factor level and interaction level that occurs (in the order the
in-memory design gives them), X'X and X'y for the OLS centring, and the variance of y within
cells for the start values; per cell: the count, the mean of y and the sum of squared deviations
from it (merged across partitions by Chan et al.'s pairwise formula, which keeps its digits)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data import is_factor_column
from ..errors import DataError

__all__ = ["RowFilter", "Cells", "partition_cells", "merge_cells", "ONE"]

ONE = "(all records)"  # the cell column of a model without factors


@dataclass(frozen=True)
class RowFilter:
    """Which records of a partition a model uses, as the in-memory ``prepare_data`` decides: a
    missing response drops the record; a missing or infinite predictor (or infinite response) is
    an error naming the column and the partition, or (``na_action="drop"``) drops it."""

    response: str
    columns: tuple  # the factor columns
    na_action: str
    as_factors: tuple = ()  # factors=: numeric columns taken as factors (not checked for infinities)
    covariates: tuple = ()  # numeric columns of the model that are no factor: checked, not a cell's key
    whole: str | None = None  # a structured residual's at() factor (or ONE): which partitions hold each group

    @property
    def keys(self) -> list:
        """The factor columns: a cell is one combination of their values."""
        return [c for c in self.columns if c not in self.covariates]

    def apply(self, df: pd.DataFrame, name: str, used: tuple | None = None) -> tuple[pd.DataFrame, np.ndarray, dict]:
        """The used rows' factor columns, their response and the rows dropped by reason (from
        ``used``, :meth:`used`'s answer for ``df``, when the caller has it already)."""
        keep, y, dropped = self.used(df, name) if used is None else used
        if not self.columns:
            return pd.DataFrame({ONE: np.zeros(int(keep.sum()), dtype=np.int64)}), y[keep], dropped
        return df.loc[keep, list(self.columns)], y[keep], dropped

    def used(self, df: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray, dict]:
        """Which rows of ``df`` the model uses (a bool mask), the response of every row and the
        rows dropped by reason (the per-record outputs need the mask: a record's row number)."""
        for col in (self.response, *self.columns):
            if col not in df.columns:
                raise DataError(f"column {col!r} is not in {name}; every partition needs the model's columns "
                                f"(check its spelling and that partition's header)")
        yser = df[self.response]
        if len(df) and (pd.api.types.is_bool_dtype(yser) or not pd.api.types.is_numeric_dtype(yser)):
            raise DataError(f"the response {self.response!r} must be numeric; it has dtype {yser.dtype} in {name}")
        y = yser.to_numpy(dtype=float, na_value=np.nan)
        keep = ~np.isnan(y)
        dropped = {"response": int((~keep).sum()), "predictors": 0, "infinite": 0}
        bad = np.isinf(y)
        for col in self.columns:
            s = df[col]
            if col not in self.as_factors and not is_factor_column(s):
                bad |= np.isinf(s.to_numpy(dtype=float, na_value=np.nan))
        bad &= keep
        if bad.any() and self.na_action == "error":
            raise DataError(f"{int(bad.sum())} record(s) of {name} have an infinite response or predictor; fix them, "
                            f"or pass na_action='drop' to drop those rows")
        keep &= ~bad
        dropped["infinite"] = int(bad.sum())
        miss = np.zeros(len(df), dtype=bool)
        for col in self.columns:
            m = df[col].isna().to_numpy() & keep
            if m.any() and self.na_action == "error":
                raise DataError(f"column {col!r} has {int(m.sum())} missing value(s) in rows with a response in "
                                f"{name}; fill them or pass na_action='drop' to drop those rows")
            miss |= m
        keep &= ~miss
        dropped["predictors"] = int(miss.sum())
        return keep, y, dropped


def _kind(series: pd.Series) -> str:
    """'number' or 'text', looking through a categorical to its categories."""
    values = series.cat.categories if isinstance(series.dtype, pd.CategoricalDtype) else series
    return "number" if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) else "text"


@dataclass
class Cells:
    """Cell statistics of some partitions: ``frame`` (the factor columns, ``n``, ``mean``, ``m2``),
    the records dropped by reason, the records read, and per column its kind (number or text)
    and the first partition that showed it."""

    frame: pd.DataFrame
    dropped: dict
    n_read: int
    kinds: dict = field(default_factory=dict)
    groups_in: dict = field(default_factory=dict)  # RowFilter.whole's value -> the partitions holding it
    sizes: list = field(default_factory=list)  # per partition (name, rows, bytes of its frame as read): the forecast


def _size(df: pd.DataFrame, name: str) -> list:
    """The partition's rows and its frame's bytes (shallow: no pass over text values)."""
    return [(name, len(df), int(df.memory_usage(index=False, deep=False).sum()))]


def partition_cells(df: pd.DataFrame, name: str, rows: RowFilter) -> Cells:
    """The cells of one partition (a pandas DataFrame named ``name`` in messages)."""
    cols, y, dropped = rows.apply(df, name)
    names = [c for c in cols.columns if c not in rows.covariates]
    cols = cols[names] if names else pd.DataFrame({ONE: np.zeros(len(cols), dtype=np.int64)})
    names = list(cols.columns)
    kinds = {c: (_kind(cols[c]), str(cols[c].dtype), name) for c in names} if len(cols) else {}
    if not len(cols):
        frame = cols.iloc[:0].assign(n=np.zeros(0, np.int64), mean=np.zeros(0), m2=np.zeros(0))
        return Cells(frame, dropped, len(df), kinds, sizes=_size(df, name))
    g = cols.assign(__y=y).groupby(names, observed=True, sort=False, dropna=False)["__y"]
    stats = g.agg(["count", "mean", "var"]).reset_index()
    n = stats["count"].to_numpy(dtype=np.int64)
    m2 = np.nan_to_num(stats["var"].to_numpy() * (n - 1))  # one record: no deviation
    frame = stats[names].assign(n=n, mean=stats["mean"].to_numpy(dtype=float), m2=m2)
    where = {}
    if rows.whole is not None:
        values = [ONE] if rows.whole == ONE else pd.unique(cols[rows.whole].astype(str))
        where = {str(v): [name] for v in values}
    return Cells(frame, dropped, len(df), kinds, groups_in=where, sizes=_size(df, name))


def _check_kinds(a: dict, b: dict) -> dict:
    out = dict(a)
    for col, (kind, dtype, name) in b.items():
        if col in out and out[col][0] != kind:
            k0, d0, n0 = out[col]
            raise DataError(f"column {col!r} holds {k0}s ({d0}) in {n0} but {kind}s ({dtype}) in {name}: its levels "
                            f"would not match across partitions; write it with one type in every partition (e.g. "
                            f"as text) or read the partitions with dtype={{{col!r}: str}}")
        out.setdefault(col, (kind, dtype, name))
    return out


def merge_cells(a: Cells, b: Cells) -> Cells:
    """The cells of two sets of partitions together."""
    kinds = _check_kinds(a.kinds, b.kinds)
    dropped = {k: a.dropped[k] + b.dropped[k] for k in a.dropped}
    frames = [f for f in (a.frame, b.frame) if len(f)] or [a.frame]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    names = [c for c in frame.columns if c not in ("n", "mean", "m2")]
    if len(frames) > 1:
        key = frame.groupby(names, observed=True, sort=False, dropna=False).ngroup().to_numpy()
        n_i, mean_i = frame["n"].to_numpy(), frame["mean"].to_numpy()
        n = np.bincount(key, weights=n_i)
        mean = np.bincount(key, weights=n_i * mean_i) / n
        m2 = np.bincount(key, weights=frame["m2"].to_numpy() + n_i * (mean_i - mean[key]) ** 2)
        first = np.unique(key, return_index=True)[1]
        frame = frame[names].iloc[first].reset_index(drop=True).assign(n=n.astype(np.int64), mean=mean, m2=m2)
    where = {k: a.groups_in.get(k, []) + b.groups_in.get(k, []) for k in {**a.groups_in, **b.groups_in}}
    return Cells(frame, dropped, a.n_read + b.n_read, kinds, where, a.sizes + b.sizes)
