"""Factor coding: data columns -> integer codes with level labels in R's order."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Factor", "encode", "combine", "is_factor_column", "ColumnSet"]


@dataclass(frozen=True)
class Factor:
    """A factor: ``codes[i]`` in ``0..len(levels)-1`` is the level of row i."""

    name: str
    codes: np.ndarray
    levels: tuple

    @property
    def n_levels(self) -> int:
        return len(self.levels)


def is_factor_column(series: pd.Series) -> bool:
    """A column is a factor unless it is numeric (booleans count as factors)."""
    return pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series)


def _labels(values) -> tuple:
    vals = np.asarray(values)
    if vals.dtype.kind == "f" and np.all(np.isfinite(vals)) and np.all(vals == np.round(vals)):
        return tuple(str(int(v)) for v in vals)
    return tuple(str(v) for v in vals)


def encode(series: pd.Series, name: str) -> Factor:
    """Code a column as a factor.

    Levels are sorted (numbers numerically, text alphabetically) as R's ``factor()``
    does; a categorical column keeps its own category order.  Levels that do not
    occur are dropped.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.int64)
        seen = codes >= 0  # -1: missing
        used = np.flatnonzero(np.bincount(codes[seen], minlength=len(series.cat.categories)))
        remap = np.full(len(series.cat.categories), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        return Factor(name, np.where(seen, remap[codes], -1), _labels(series.cat.categories[used]))
    try:
        codes, uniques = pd.factorize(series, sort=True)
    except TypeError:  # mixed types that cannot be ordered: order by their text
        codes, uniques = pd.factorize(series.astype(str), sort=True)
    return Factor(name, codes.astype(np.int64, copy=False), _labels(uniques))


def combine(factors: list[Factor], name: str | None = None) -> Factor:
    """The interaction of factors: one level per combination that occurs.

    Levels are ordered by the first factor, then the second, ... and labelled
    ``a:b``.  Rows where any factor has code -1 get code -1.
    """
    if len(factors) == 1:
        f = factors[0]
        return f if name is None else Factor(name, f.codes, f.levels)
    acc = factors[0]
    for nxt in factors[1:]:
        missing = (acc.codes < 0) | (nxt.codes < 0)
        key = acc.codes * nxt.n_levels + nxt.codes
        key[missing] = -1
        codes, uniq = pd.factorize(key, sort=True)
        if missing.any():  # factorize puts -1 first as an ordinary value: move it out
            has = uniq >= 0
            shift = np.cumsum(has) - 1
            codes = np.where(missing, -1, shift[codes])
            uniq = uniq[has]
        left, right = np.divmod(uniq, nxt.n_levels)
        levels = tuple(f"{acc.levels[a]}:{nxt.levels[b]}" for a, b in zip(left, right))
        acc = Factor(f"{acc.name}:{nxt.name}", codes.astype(np.int64, copy=False), levels)
    return Factor(name or acc.name, acc.codes, acc.levels)


class ColumnSet(dict):
    """Data columns by name; :meth:`factor` codes a column once and remembers it."""

    def factor(self, name: str) -> Factor:
        cache = self.__dict__.setdefault("_factors", {})
        if name not in cache:
            cache[name] = encode(self[name], name)
        return cache[name]
