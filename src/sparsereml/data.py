"""Read the data a model needs and check it, without modifying what the user passed in."""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import CovariateWarning, DataError, warn_user
from .formula.spec import ModelSpec
from .formula.terms import RECORD, TRAIT, Groups, Units, quote_name

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
            return read_csv(path, sep="\t" if low.endswith(".tsv") else ",")
        raise DataError(f"cannot tell the format of {path!r}: use a .csv or .parquet file")
    to_pandas = getattr(data, "to_pandas", None)
    if callable(to_pandas) and type(data).__module__.startswith("polars"):
        return to_pandas()
    raise DataError(f"data must be a pandas or polars DataFrame or a file path, got {type(data).__name__}")


def read_csv(path: str, sep: str = ",", decimal: str = ".") -> pd.DataFrame:
    """Read a delimited text file (NA, empty and '.' are missing values); a file that cannot be
    read, is empty, or reads as one column whose name holds another separator is a DataError."""
    try:
        df = pd.read_csv(path, sep=sep, decimal=decimal, na_values=["NA", "", "."], keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {path!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"data file {path!r} cannot be read as a table separated by {sep!r}: {exc}") from None
    if df.shape[1] == 1:
        other = next((c for c in (";", "\t", "|", ",") if c != sep and c in str(df.columns[0])), None)
        if other is not None:
            raise DataError(
                f"data file {path!r} reads as one column named {str(df.columns[0])[:60]!r}: its fields seem to be "
                f"separated by {other!r}, not {sep!r}. Read it with pandas.read_csv({path!r}, sep={other!r}) "
                f"and pass the DataFrame (command line: --sep {other!r}"
                + ("; add --decimal ',' for decimal commas)" if decimal == "." else ")"))
    return df


def _unknown_column(name: str, columns, prefix: str = "") -> DataError:
    cols = [str(c) for c in columns]
    close = difflib.get_close_matches(name, cols, n=1, cutoff=0.5)
    if not close:
        lower = {c.lower(): c for c in cols}
        close = [lower[name.lower()]] if name.lower() in lower else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return DataError(f"{prefix}column {name!r} is not in the data{hint}")


@dataclass
class ModelData:
    """The rows and columns a model uses.

    Attributes
    ----------
    y : ndarray
        The response, float64, without missing values.
    columns : dict
        Column name -> pandas Series restricted to the rows kept (a view of the caller's data
        where pandas allows; never written to; a categorical copy for a column named in ``factors``).
    rows : ndarray
        Positions (0-based) of the kept rows in the original table.
    index : pandas.Index
        The original table's index labels of the kept rows.
    n_dropped : int
        Rows dropped because the response was missing.
    n_dropped_predictors : int
        Rows dropped because a predictor was missing (only with ``na_action="drop"``).
    n_dropped_infinite : int
        Rows dropped because the response or a predictor was infinite (only with ``na_action="drop"``).
    """

    response: str
    y: np.ndarray
    columns: dict
    rows: np.ndarray
    index: pd.Index
    n_total: int
    n_dropped: int
    n_dropped_predictors: int
    n_dropped_infinite: int = 0


# an integer-valued covariate with this many distinct values or fewer (and at least 3) draws a
# CovariateWarning: trial, block and year numbers are factors far more often than slopes
FEW_VALUES = 50


def is_factor_column(series: pd.Series) -> bool:
    """A column is a factor unless it is numeric (booleans count as factors)."""
    return pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series)


def _factor_names(factors, df: pd.DataFrame) -> list[str]:
    """Check ``factors`` (a column name or a list of them) against the data."""
    if factors is None:
        return []
    names = [factors] if isinstance(factors, str) else factors
    if not isinstance(names, (list, tuple)) or not all(isinstance(f, str) for f in names):
        raise DataError(f"factors must be a list of column names, e.g. factors=['Trial', 'Block']; got {factors!r}")
    for name in names:
        if name not in df.columns:
            raise _unknown_column(name, df.columns, "factors: ")
    return list(dict.fromkeys(names))


def _factor_uses(spec: ModelSpec) -> dict:
    """Columns that the random and residual formulas use as factors, with the term that does
    (not the x of ``Mother:lin(x)``: a covariate there)."""
    uses: dict = {}
    for r in spec.random:
        names = [r.at.factor] if r.at else []
        if r.struct is not None and r.struct.covariates is None:
            names.append(r.struct.factor)
        names += [f.name for f in r.factors if not isinstance(f, Units) and not getattr(f, "as_covariate", False)]
        for name in names:
            uses.setdefault(name, r.label)
    for sec in spec.residual.sections:
        names = ([sec.at.factor] if sec.at else []) + [d.column for d in sec.dims if not d.coordinates]
        for name in names:
            uses.setdefault(name, f"residual {sec.label}")
    return uses


def _numeric_uses(spec: ModelSpec) -> set:
    """Columns that the random and residual formulas use as numbers (regression covariates, ar1
    coordinates): a slope on them in the fixed formula is what the user means."""
    names = {c for r in spec.random if r.struct is not None and r.struct.covariates for c in r.struct.covariates}
    return names | {d.column for sec in spec.residual.sections for d in sec.dims if d.coordinates}


def _check_roles(spec: ModelSpec, cols: dict) -> None:
    """A numeric column is a covariate in the fixed formula unless written C(x); refuse one that
    another formula uses as a factor, and warn about whole numbers with few distinct values."""
    uses = _factor_uses(spec)
    numeric = _numeric_uses(spec)
    for t in spec.fixed.terms:
        for v in t:
            series = cols.get(v.name)
            if isinstance(v, Groups) or v.as_factor or series is None or is_factor_column(series):  # groups(): ids
                continue
            q = quote_name(v.name)
            if v.name in uses and not v.as_covariate:
                raise DataError(
                    f"column {v.name!r} holds numbers, so the fixed formula {spec.formulas.get('fixed')!r} uses it as "
                    f"a covariate (one slope), while {uses[v.name]!r} uses it as a factor. For a factor write C({q}) "
                    f"in the fixed formula or pass factors=[{v.name!r}] (command line: --factors {v.name}); if a "
                    f"slope is meant, write lin({q})")
            if v.as_covariate or v.name in numeric:
                continue
            x = series.to_numpy(dtype=float, na_value=np.nan)
            x = x[np.isfinite(x)]
            if x.size and np.all(x == np.round(x)):
                k = np.unique(x).size
                if 3 <= k <= FEW_VALUES:
                    warn_user(
                        f"column {v.name!r} holds {k} distinct whole numbers and is used as a covariate (one slope) "
                        f"in {spec.formulas.get('fixed')!r}. If its values are labels (trials, blocks, years), write "
                        f"C({q}) or pass factors=[{v.name!r}]; write lin({q}) to keep the slope without this warning",
                        CovariateWarning)


def _non_finite(df: pd.DataFrame, names: list, keep: np.ndarray, na_action: str) -> np.ndarray:
    """Rows (among ``keep``) with an infinite value in a numeric column of ``names``: an error
    naming the column and the count, or (``na_action="drop"``) the rows to drop."""
    bad = np.zeros(len(df), dtype=bool)
    for name in names:
        series = df[name]
        if is_factor_column(series):
            continue
        inf = np.isinf(series.to_numpy(dtype=float, na_value=np.nan)) & keep
        if inf.any() and na_action == "error":
            raise DataError(f"column {name!r} has {int(inf.sum())} infinite value(s) (the first in data row "
                            f"{int(np.flatnonzero(inf)[0]) + 1}); fix them, or pass na_action='drop' to drop those rows")
        bad |= inf
    return bad


def _check_scale(name: str, y: np.ndarray) -> None:
    """Sums of squares of values beyond about 1e150 (or spreads below 1e-150) over- or underflow:
    refuse them rather than print a log-likelihood of nothing."""
    with np.errstate(over="ignore", under="ignore"):
        spread = float(np.std(y))
        largest = float(np.max(np.abs(y)))
    if not (1e-150 < spread and largest < 1e150 and np.isfinite(spread)):
        raise DataError(f"the response {name!r} spans {np.min(y):.3g} to {np.max(y):.3g}: sums of its squares cannot be "
                        f"formed in double precision; rescale it (e.g. to thousands or millions of its units)")


def _collinear_traits(spec: ModelSpec, df: pd.DataFrame) -> None:
    """Traits that are linear functions of each other on the records that have them all."""
    names = list(spec.fixed.responses)
    Y = df[names].to_numpy(dtype=float, na_value=np.nan)
    Y = Y[np.all(np.isfinite(Y), axis=1)]
    if Y.shape[0] <= len(names):
        return
    Y = (Y - Y.mean(axis=0)) / np.maximum(Y.std(axis=0), 1e-300)
    s = np.linalg.svd(Y, compute_uv=False)
    if s[-1] <= 1e-8 * s[0]:
        raise DataError(f"the traits {', '.join(map(repr, names))} are linear functions of each other on the "
                        f"{Y.shape[0]} records that have them all: their covariance cannot be estimated; leave out "
                        f"the derived trait")


def prepare_data(spec: ModelSpec, data, na_action: str = "error", factors=None) -> ModelData:
    """Check the columns a model needs and drop rows with a missing response.

    Parameters
    ----------
    spec : ModelSpec
    data : DataFrame or path
    na_action : {"error", "drop"}
        What to do with missing or infinite predictor values and infinite responses: raise an
        error that names the column and the number of rows (default), or drop those rows.
    factors : list of str, optional
        Numeric columns to use as factors everywhere (as ``C(x)`` in every formula).
    """
    if na_action not in ("error", "drop"):
        raise DataError(f"na_action must be 'error' or 'drop', got {na_action!r}")
    df = load_table(data)
    factor_names = _factor_names(factors, df)
    original = None
    if spec.fixed.multivariate:
        original = df
        if na_action == "error":  # named by trait and row of the data (dropped from the long table)
            _non_finite(df, [r for r in spec.fixed.responses if r in df.columns], np.ones(len(df), dtype=bool),
                        na_action)
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
    if resp in factor_names:
        raise DataError(f"factors: the response {resp!r} cannot be a factor")
    y_all = yser.to_numpy(dtype=float, na_value=np.nan)
    keep = ~np.isnan(y_all)
    if not keep.any():
        raise DataError(f"the response {resp!r} has no non-missing values")
    n_dropped = int((~keep).sum())
    parents = set(spec.overlay_variables())  # missing there: no such parent, not a missing value
    infinite = _non_finite(df, [resp] + [n for n in names[1:] if n not in factor_names and n not in parents],
                           keep, na_action)
    keep &= ~infinite
    miss_pred = np.zeros(len(df), dtype=bool)
    for name in (n for n in names[1:] if n not in parents):
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
    _check_scale(resp, y)
    all_rows = len(rows) == len(df)
    cols = {name: (df[name] if all_rows else df[name].iloc[rows]) for name in names[1:]}
    for name in factor_names:
        if name in cols and not isinstance(cols[name].dtype, pd.CategoricalDtype):
            cols[name] = cols[name].astype("category")  # a copy: the caller's column is not touched
    _check_roles(spec, cols)
    index = df.index if all_rows else df.index[rows]
    if original is not None:  # positions and labels of the original rows, one per trait record
        rows = df[RECORD].to_numpy()[rows]
        index = original.index[rows]
    return ModelData(resp, np.ascontiguousarray(y), cols, rows, index, len(df), n_dropped, int(miss_pred.sum()),
                     int(infinite.sum()))


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
    _collinear_traits(spec, df)
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
