"""Record-level results of a fit for its plots and report: per record the response, the factor the
overview plots by, the fitted value, the residual, the residual group and the position in the
group's grid; and the grids themselves (:class:`~sparsereml.fitresults.GridInfo`).

The functions take a :class:`~sparsereml.FittedModel` or a
:class:`~sparsereml.fitresults.FitResults` (which holds them as read from ``records.csv`` and
``fit.json``), so every plot draws the same from a model in memory and from written results.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .errors import ModelError
from .fitresults import FitResults, GridInfo

__all__ = ["record_table", "records_of", "level_codes", "grid_infos", "grid_positions", "grids_of", "structured_names", "grid_array"]

_NO_RECORDS = "records.csv"
PARTITIONED_WHY = ("the fit was to partitioned data, whose records stay in their partitions (no per-record values "
                   "on this node): m.write_records(dir) writes them per partition (command line: --records)")


def factor_levels(factor: pd.Series) -> tuple[np.ndarray, list]:
    """Integer codes (-1 for missing) and the labels of the levels present, in the factor's order
    (a categorical's categories, else the sorted distinct values)."""
    if isinstance(factor.dtype, pd.CategoricalDtype):
        cat = factor.cat.remove_unused_categories()
        return np.asarray(cat.cat.codes, dtype=np.int64), list(cat.cat.categories)
    codes, uniques = pd.factorize(factor, sort=True)
    return np.asarray(codes, dtype=np.int64), list(uniques)


def level_codes(column: pd.Series, levels: list) -> np.ndarray:
    """The position of each value of a record column among ``levels`` (compared as text; -1 for
    a value not among them).  A categorical column is recoded through its categories, without
    turning its values into text one by one."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        where = pd.Index([str(v) for v in levels], dtype=object).get_indexer(
            pd.Index([str(c) for c in column.cat.categories], dtype=object))
        codes = np.asarray(column.cat.codes, dtype=np.int64)
        return np.where(codes >= 0, where[codes] if where.size else -1, -1)
    return np.asarray(pd.Categorical(column.to_numpy(dtype=str), categories=levels).codes, dtype=np.int64)


def _overview_factor(model) -> tuple[str | None, str]:
    """The first factor of the first fixed term (what ``overview(model)`` plots by), or None and why."""
    spec = model.spec.fixed
    if not spec.terms:
        return None, (f"overview(model) draws the response by the first factor of the fixed formula, and "
                      f"{model.spec.formulas.get('fixed')!r} has none: call overview(data, response, by)")
    by = spec.terms[0][0].name
    if by not in model.design.data.columns:
        return None, (f"column {by!r} of the fixed formula is not among the model's columns: "
                      "call overview(data, response, by)")
    return by, ""


def record_table(model) -> tuple[pd.DataFrame | None, dict]:
    """Per record of ``model``: ``response``, ``by`` (the overview factor's value), ``fitted``,
    ``residual``, ``group`` (residual group label) and ``grid_row``/``grid_col`` (position in the
    group's two-dimensional grid, -1 without one); and a description (column names, or why
    there is no table: a multivariate model has no single residual per record)."""
    spec = model.spec.fixed
    if spec.multivariate:
        return None, {"why": "residual and overview plots draw one response; this model has several "
                             f"({', '.join(spec.responses)}): call overview(data, response, by) per trait"}
    res = model.design.residual
    if not model.design.holds_records:  # the records stayed in their partitions
        return None, {"why": PARTITIONED_WHY, "groups": list(res.labels)}
    by, why = _overview_factor(model)
    n = model.nobs
    fitted = model.fitted.to_numpy(dtype=float)
    frame = pd.DataFrame({"response": model.design.y, "fitted": fitted, "residual": model.design.y - fitted},
                         index=model.fitted.index)
    by_levels = None
    if by is not None:
        codes, levels = factor_levels(pd.Series(model.design.data.columns[by]).reset_index(drop=True))
        by_levels = [str(v) for v in levels]
        # categoricals: a column of 184,000 strings costs pandas 0.05 s to make, codes nothing
        frame.insert(1, "by", pd.Categorical.from_codes(codes, categories=pd.Index(by_levels, dtype=object)))
    frame["group"] = pd.Categorical.from_codes(np.asarray(res.record_group),
                                               categories=pd.Index(list(res.labels), dtype=object))
    frame["grid_row"], frame["grid_col"] = grid_positions(res.grids, n)
    return frame, {"response": spec.response, "by": by, "why_no_by": why, "by_levels": by_levels,
                   "groups": list(res.labels)}


def grid_positions(grids, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``n`` records' (row, column) in its residual group's two-dimensional grid, -1 off
    one (``grids``: the residual's, None for a group without a grid)."""
    rows, cols = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    for g in grids:
        if g is not None and len(g.shape) == 2:
            r, c = np.unravel_index(g.cells, g.shape)
            rows[g.records], cols[g.records] = r, c
    return rows, cols


def records_and_names(obj) -> tuple[pd.DataFrame | None, dict]:
    """The record table of a fitted model or of results and its description (see
    :func:`record_table`; ``why`` says why there is no table)."""
    if isinstance(obj, FitResults):
        meta = obj.info.get("records") or {}
        if obj.records is None and not meta.get("why"):
            meta = {"why": f"these results have no {_NO_RECORDS} (per record fitted values and residuals): "
                           f"fit again with --records or --report to draw it"}
        return obj.records, meta
    return record_table(obj)


def records_of(obj) -> pd.DataFrame:
    """The record table of a fitted model or of results (ModelError when there is none)."""
    frame, meta = records_and_names(obj)
    if frame is None:
        raise ModelError(meta["why"])
    return frame


def _ticks(model, grid, k: int) -> list[str]:
    """Labels of the positions along dimension k: the column's value where a record sits."""
    pos = np.unravel_index(grid.cells, grid.shape)[k]
    vals = np.asarray(model.design.data.columns[grid.dims[k].column])[grid.records]
    out = [""] * grid.shape[k]
    for p, v in zip(pos, vals):
        out[p] = str(v)
    return out


def grid_infos(model) -> dict:
    """Residual group label -> GridInfo, for the groups with a grid."""
    res = model.design.residual
    out = {}
    for label, grid in zip(res.labels, res.grids):
        if grid is None:
            continue
        flat = len(grid.shape) == 2 and all(lv is None for lv in grid.levels)
        out[label] = GridInfo(label=label, dims=[d.column for d in grid.dims],
                              structure=":".join(d.label for d in grid.dims), shape=list(grid.shape),
                              covariance=not flat, ticks=[_ticks(model, grid, k) for k in range(2)] if flat else [])
    return out


_AT_LEVEL = re.compile(r"^at\(.+?, (.+)\):units$")


def group_level(label: str) -> str | None:
    """The at() level of a residual group label (``"A"`` of ``"at(Trial, A):units"``), else None."""
    m = _AT_LEVEL.match(label)
    return m.group(1) if m else None


def grids_of(obj) -> tuple[list, dict]:
    """Every residual group label, and label -> GridInfo for those with a grid."""
    if isinstance(obj, FitResults):
        return list(obj.info.get("records", {}).get("groups") or obj.grids), obj.grids
    return list(obj.design.residual.labels), grid_infos(obj)


def grid_array(obj, info: GridInfo) -> np.ndarray:
    """The residuals of a group placed on its grid (rows = first dimension), NaN in empty cells."""
    rec = records_of(obj)
    on = (rec["group"].to_numpy() == info.label) & (rec["grid_row"].to_numpy() >= 0)
    A = np.full(tuple(info.shape), np.nan)
    A[rec["grid_row"].to_numpy()[on], rec["grid_col"].to_numpy()[on]] = rec["residual"].to_numpy(dtype=float)[on]
    return A


def structured_names(model) -> list[str]:
    """Residual covariance models of ``model`` (e.g. ``units`` for us(trait), ``at(F, a):units``)."""
    return model.residual_covariance_models
