"""Factor coding: data columns -> integer codes with level labels in R's order."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data import is_factor_column

__all__ = ["Factor", "PairLabels", "encode", "combine", "is_factor_column", "ColumnSet"]


@dataclass(frozen=True)
class Factor:
    """A factor: ``codes[i]`` in ``0..len(levels)-1`` is the level of row i."""

    name: str
    codes: np.ndarray
    levels: Sequence  # a tuple, or PairLabels for an interaction

    @property
    def n_levels(self) -> int:
        return len(self.levels)


class PairLabels(Sequence):
    """The level labels ``a:b`` of an interaction, made when first read (a fit of a large
    interaction never reads most of them; the BLUP table reads them all, once)."""

    def __init__(self, left: Sequence, right: Sequence, left_idx: np.ndarray, right_idx: np.ndarray):
        self._parts = (left, right, left_idx, right_idx)
        self._n = int(left_idx.size)
        self._done: tuple | None = None

    def _all(self) -> tuple:
        if self._done is None:
            left, right, li, ri = self._parts
            self._done = tuple(f"{left[a]}:{right[b]}" for a, b in zip(li.tolist(), ri.tolist()))
        return self._done

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice) or self._done is not None:
            return self._all()[i]
        left, right, li, ri = self._parts
        return f"{left[li[i]]}:{right[ri[i]]}"

    def __iter__(self):
        return iter(self._all())

    def __contains__(self, x) -> bool:
        return x in self._all()

    def index(self, x, *args) -> int:
        return self._all().index(x, *args)

    def __eq__(self, other) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return repr(self._all())


def _codes_of_keys(key: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..k-1 of non-negative integer keys below ``n_keys`` in increasing key order, and
    the keys that occur (pd.factorize(key, sort=True), by a count over the key range when that
    range is not much larger than the data)."""
    if n_keys <= 4 * key.size + 1024:
        seen = np.bincount(key, minlength=n_keys) > 0
        code_of = np.cumsum(seen) - 1
        return code_of[key], np.flatnonzero(seen)
    codes, uniq = pd.factorize(key, sort=True)
    return codes, uniq


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
        n_cat = len(series.cat.categories)
        if codes.min(initial=0) >= 0:  # no missing value
            used = np.flatnonzero(np.bincount(codes, minlength=n_cat))
            if used.size == n_cat:  # every category occurs: the codes are the factor's
                return Factor(name, codes, _labels(series.cat.categories))
        seen = codes >= 0  # -1: missing
        used = np.flatnonzero(np.bincount(codes[seen], minlength=n_cat))
        remap = np.full(n_cat, -1, dtype=np.int64)
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
        if missing.any():
            codes, uniq = _codes_of_keys(np.where(missing, 0, key), acc.n_levels * nxt.n_levels)
            # key 0 stands for the missing rows too: a level only if some complete row has it
            if not np.any(key[~missing] == 0) and uniq.size and uniq[0] == 0:
                codes, uniq = codes - 1, uniq[1:]
            codes = np.where(missing, -1, codes)
        else:
            codes, uniq = _codes_of_keys(key, acc.n_levels * nxt.n_levels)
        left, right = np.divmod(uniq, nxt.n_levels)
        levels = PairLabels(acc.levels, nxt.levels, left, right)
        acc = Factor(f"{acc.name}:{nxt.name}", codes.astype(np.int64, copy=False), levels)
    return Factor(name or acc.name, acc.codes, acc.levels)


class ColumnSet(dict):
    """Data columns by name; :meth:`factor` codes a column once and remembers it."""

    def has_factor(self, name: str) -> bool:
        """Whether column ``name`` is coded already."""
        return name in self.__dict__.get("_factors", {})

    def factor(self, name: str) -> Factor:
        cache = self.__dict__.setdefault("_factors", {})
        if name not in cache:
            cache[name] = encode(self[name], name)
        return cache[name]


def factor_of(columns: dict, name: str) -> Factor:
    """Column ``name`` coded as a factor: once per :class:`ColumnSet` (shared by the terms that
    use it), afresh from a plain dict of columns."""
    return columns.factor(name) if isinstance(columns, ColumnSet) else encode(columns[name], name)
