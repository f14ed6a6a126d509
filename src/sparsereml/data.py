"""Read the data a model needs and check it, without modifying what the user passed in."""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError
from .formula.spec import ModelSpec
from .formula.terms import RECORD, TRAIT

__all__ = ["load_table", "ModelData", "prepare_data"]


def load_table(data) -> pd.DataFrame:
    """Return a pandas DataFrame for a DataFrame, a polars DataFrame or a CSV/Parquet path.

    A pandas DataFrame is returned as is (it is only read, never modified).
    """
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.exists(path):
            raise DataError(f"data file {path!r} does not exist")
        low = path.lower()
        if low.endswith((".parquet", ".pq")) or os.path.isdir(path):
            try:
                return pd.read_parquet(path)
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise DataError(f"reading {path!r} needs pyarrow: pip install pyarrow") from exc
        if low.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
            sep = "\t" if low.endswith(".tsv") else ","
            return pd.read_csv(path, sep=sep, na_values=["NA", "", "."], keep_default_na=True)
        raise DataError(f"cannot tell the format of {path!r}: use a .csv or .parquet file")
    to_pandas = getattr(data, "to_pandas", None)
    if callable(to_pandas) and type(data).__module__.startswith("polars"):
        return to_pandas()
    raise DataError(f"data must be a pandas or polars DataFrame or a file path, got {type(data).__name__}")


def _unknown_column(name: str, columns) -> DataError:
    cols = [str(c) for c in columns]
    close = difflib.get_close_matches(name, cols, n=1, cutoff=0.5)
    if not close:
        lower = {c.lower(): c for c in cols}
        close = [lower[name.lower()]] if name.lower() in lower else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return DataError(f"column {name!r} is not in the data{hint}")


@dataclass
class ModelData:
    """The rows and columns a model uses.

    Attributes
    ----------
    y : ndarray
        The response, float64, without missing values.
    columns : dict
        Column name -> pandas Series restricted to the rows kept (a view of the caller's data
        where pandas allows; never written to).
    rows : ndarray
        Positions (0-based) of the kept rows in the original table.
    index : pandas.Index
        The original table's index labels of the kept rows.
    n_dropped : int
        Rows dropped because the response was missing.
    n_dropped_predictors : int
        Rows dropped because a predictor was missing (only with ``na_action="drop"``).
    """

    response: str
    y: np.ndarray
    columns: dict
    rows: np.ndarray
    index: pd.Index
    n_total: int
    n_dropped: int
    n_dropped_predictors: int


def prepare_data(spec: ModelSpec, data, na_action: str = "error") -> ModelData:
    """Check the columns a model needs and drop rows with a missing response.

    Parameters
    ----------
    spec : ModelSpec
    data : DataFrame or path
    na_action : {"error", "drop"}
        What to do with missing predictor values: raise an error that names the
        column and the number of rows (default), or drop those rows.
    """
    if na_action not in ("error", "drop"):
        raise DataError(f"na_action must be 'error' or 'drop', got {na_action!r}")
    df = load_table(data)
    original = None
    if spec.fixed.multivariate:
        original = df
        df = _stack_traits(spec, df)
    names = spec.variables()
    for name in names:
        if name not in df.columns:
            raise _unknown_column(name, df.columns)
    resp = spec.fixed.response
    yser = df[resp]
    if isinstance(yser, pd.DataFrame):
        raise DataError(f"the data have more than one column named {resp!r}")
    if pd.api.types.is_bool_dtype(yser) or not pd.api.types.is_numeric_dtype(yser):
        raise DataError(f"the response {resp!r} must be numeric; it has dtype {yser.dtype}")
    y_all = yser.to_numpy(dtype=float, na_value=np.nan)
    keep = np.isfinite(y_all)
    if not keep.any():
        raise DataError(f"the response {resp!r} has no non-missing values")
    n_dropped = int((~keep).sum())
    miss_pred = np.zeros(len(df), dtype=bool)
    for name in names[1:]:
        miss = df[name].isna().to_numpy() & keep
        if miss.any():
            if na_action == "error":
                raise DataError(
                    f"column {name!r} has {int(miss.sum())} missing value(s) in rows with a response; "
                    f"fill them or pass na_action='drop' to drop those rows")
            miss_pred |= miss
    keep &= ~miss_pred
    if not keep.any():
        raise DataError("no rows are left after dropping rows with missing values")
    rows = np.flatnonzero(keep)
    y = y_all[rows]
    if np.ptp(y) == 0:
        raise DataError(f"the response {resp!r} is constant (every value is {y[0]:g}); there is nothing to estimate")
    all_rows = len(rows) == len(df)
    cols = {name: (df[name] if all_rows else df[name].iloc[rows]) for name in names[1:]}
    index = df.index if all_rows else df.index[rows]
    if original is not None:  # positions and labels of the original rows, one per trait record
        rows = df[RECORD].to_numpy()[rows]
        index = original.index[rows]
    return ModelData(resp, np.ascontiguousarray(y), cols, rows, index, len(df), n_dropped, int(miss_pred.sum()))


def _stack_traits(spec: ModelSpec, df: pd.DataFrame) -> pd.DataFrame:
    """Long format for cbind(a, b, ...): one row per record and trait, the traits' values in one
    response column, ``trait`` (levels in cbind order) and ``units`` (the original row)."""
    for name in spec.fixed.responses:
        if name not in df.columns:
            raise _unknown_column(name, df.columns)
        if pd.api.types.is_bool_dtype(df[name]) or not pd.api.types.is_numeric_dtype(df[name]):
            raise DataError(f"the response {name!r} must be numeric; it has dtype {df[name].dtype}")
    for name in (TRAIT, RECORD):
        if name in df.columns:
            raise DataError(f"a multivariate model makes a column {name!r}; rename the data's column {name!r}")
    empty = [name for name in spec.fixed.responses if df[name].isna().all()]
    if empty:
        raise DataError(f"the response {empty[0]!r} has no non-missing values; leave it out of cbind()")
    k, n = len(spec.fixed.responses), len(df)
    others = [v for v in spec.variables()[1:] if v not in (TRAIT, RECORD)]
    for name in others:
        if name not in df.columns:
            raise _unknown_column(name, df.columns)
    take = np.repeat(np.arange(n), k)
    long = {name: df[name].iloc[take].reset_index(drop=True) for name in others}
    values = np.column_stack([df[name].to_numpy(dtype=float, na_value=np.nan) for name in spec.fixed.responses])
    long[spec.fixed.response] = values.ravel()
    long[TRAIT] = pd.Categorical.from_codes(np.tile(np.arange(k), n), categories=list(spec.fixed.responses))
    long[RECORD] = take
    return pd.DataFrame(long)
