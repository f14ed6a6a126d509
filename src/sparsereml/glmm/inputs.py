"""What a GLMM fit reads besides the formulas: cbind(successes, failures) responses, trials or
prior weights, offsets; and the checks made before any fitting (separated fixed-effect levels)."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.fixed import _is_factor as is_factor  # the fixed formula's own rule
from ..errors import DataError, FormulaError, ModelError
from ..formula.terms import Groups
from .families import Binomial, Family

__all__ = ["ResponseSpec", "split_response", "record_values", "counts_and_trials", "check_separation"]

_CBIND = re.compile(r"^\s*cbind\s*\((?P<args>.*)\)\s*~(?P<rest>.*)$", re.S)
_NAME = re.compile(r"^[A-Za-z_.][\w.]*$")


@dataclass(frozen=True)
class ResponseSpec:
    """The binomial response as written: successes, and failures or trials less successes."""

    successes: str
    failures: str | None = None  # a column of failures
    trials: str | None = None  # a column of trials (cbind(s, n - s))


def split_response(fixed: str, family: Family) -> tuple[str, ResponseSpec | None]:
    """The fixed formula with a ``cbind(s, f)`` or ``cbind(s, n - s)`` response replaced by
    ``s``, and how to read the failures; other formulas unchanged (None)."""
    m = _CBIND.match(fixed)
    if m is None:
        return fixed, None
    args = [a.strip() for a in m.group("args").split(",")]
    if not isinstance(family, Binomial) or len(args) != 2:
        raise FormulaError(f"{fixed!r}: a GLMM's cbind() response is cbind(successes, failures) with the "
                           f"binomial family")
    s, f = args
    if not _NAME.match(s):
        raise FormulaError(f"{fixed!r}: the successes in cbind() must be a column name; got {s!r}")
    rest = m.group("rest")
    if _NAME.match(f):
        return f"{s} ~{rest}", ResponseSpec(s, failures=f)
    parts = [p.strip() for p in f.split("-")]
    if len(parts) == 2 and _NAME.match(parts[0]) and parts[1] == s:
        return f"{s} ~{rest}", ResponseSpec(s, trials=parts[0])
    raise FormulaError(f"{fixed!r}: the failures in cbind() must be a column or 'trials - {s}'; got {f!r}")


def record_values(values, name: str, df: pd.DataFrame, rows: np.ndarray, *, nonnegative: bool = False,
                  positive: bool = False) -> np.ndarray:
    """``values`` (a column name, or one number per row of the data) at the rows fitted."""
    if isinstance(values, str):
        if values not in df.columns:
            raise DataError(f"{name}: the data have no column {values!r}")
        ser = df[values]
        if not pd.api.types.is_numeric_dtype(ser) or pd.api.types.is_bool_dtype(ser):
            raise DataError(f"{name}: column {values!r} must be numeric; it has dtype {ser.dtype}")
        arr, label = ser.to_numpy(dtype=float, na_value=np.nan), f"column {values!r}"
    else:
        try:
            arr = np.asarray(values, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ModelError(f"{name} must be a column name or one number per row of the data; got "
                             f"{type(values).__name__}") from None
        if arr.size != len(df):
            raise ModelError(f"{name} must hold one value per row of the data ({len(df):,}); got {arr.size:,}")
        label = name
    out = arr[rows]
    bad = ~np.isfinite(out) | ((out < 0) if nonnegative else False) | ((out <= 0) if positive else False)
    if bad.any():
        what = "positive" if positive else "non-negative" if nonnegative else "finite"
        i = int(rows[np.flatnonzero(bad)[0]])
        raise DataError(f"{name}: {label} must be {what} and not missing where the response is; row {i} "
                        f"(0-based) is {arr[i]!r}; {int(bad.sum()):,} such rows")
    return out


def counts_and_trials(family: Family, y: np.ndarray, response: str, spec: ResponseSpec | None, weights,
                      df: pd.DataFrame, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Successes (or counts) and binomial trials (or Poisson prior weights) per record fitted."""
    if spec is not None:
        if weights is not None:
            raise ModelError("give the binomial trials either by cbind(successes, failures) or by weights, not both")
        if spec.failures is not None:
            n = y + record_values(spec.failures, "cbind() failures", df, rows, nonnegative=True)
        else:
            n = record_values(spec.trials, "cbind() trials", df, rows, nonnegative=True)
        family.check(y, n, response)
        return y, n
    w = np.ones(y.size) if weights is None else record_values(weights, "weights", df, rows, positive=True)
    if isinstance(family, Binomial) and weights is not None:
        if np.any((y < 0) | (y > 1)):
            i = int(np.flatnonzero((y < 0) | (y > 1))[0])
            raise DataError(f"binomial response {response!r} with weights must be a proportion in [0, 1] (the "
                            f"weights are the trials); record {i} is {y[i]:g}")
        y = y * w
    family.check(y, w, response)
    return y, w


def check_separation(design, y: np.ndarray, n: np.ndarray, family: Family) -> None:
    """Refuse a fixed factor level (or combination) whose binomial records are all successes or
    all failures, or whose Poisson counts are all zero: its estimate is infinite."""
    cols = design.data.columns
    for term in design.spec.fixed.terms:
        if any(isinstance(v, Groups) for v in term):  # fractions of genes, not a factor's levels
            continue
        names = [v.name for v in term]
        if not names or not all(is_factor(v, cols[nm]) for nm, v in zip(names, term)):
            continue
        keys = pd.MultiIndex.from_arrays([np.asarray(cols[nm]) for nm in names]) if len(names) > 1 else \
            pd.Index(np.asarray(cols[names[0]]))
        codes, levels = pd.factorize(keys)
        ys = np.bincount(codes, weights=y)
        ns = np.bincount(codes, weights=n)
        count = np.bincount(codes)
        low = ys <= 0
        high = (ys >= ns) if isinstance(family, Binomial) else np.zeros_like(low)
        for j in np.flatnonzero(low | high):
            lv = levels[j] if len(names) == 1 else ":".join(map(str, levels[j]))
            label = ":".join(names)
            what = ("all successes" if high[j] else "all failures") if isinstance(family, Binomial) else "all zero"
            raise DataError(f"fixed term {label!r}, level {lv}: its {count[j]:,} records are {what}, so its effect "
                            f"is infinite on the link scale (complete separation); drop these records, merge the "
                            f"level with another, or make {label!r} a random term")
