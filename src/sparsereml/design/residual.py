"""Residual coding: each record's residual group and, for structured residuals, its cell in the
group's grid.

A grid is the Kronecker layout of the residual's dimensions (C order, first dimension
outermost).  ``ar1`` dimensions span the positions from the group's smallest to its largest
coordinate (a numeric column on an equally spaced grid, or a factor's level index); ``id``
dimensions the levels present in the group; covariance-model dimensions (``us``, ...) every
level of their factor.  Cells without a record are missing values: the REML stage gives each
one a fixed effect, which is the same as deleting it from V.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError, ModelError
from ..formula.residual import ResidualDim, ResidualSection, ResidualSpec
from ..registry import residual_dim
from .coding import Factor, factor_of, is_factor_column
from .random import check_cov_levels

__all__ = ["ResidualGroups", "GridLayout", "residual_groups"]

_MAX_EMPTY = 1.0  # at most this many missing cells per record in a grid (catches wrong coordinates)


@dataclass
class GridLayout:
    """Where the records of one residual group sit in its grid.

    Attributes
    ----------
    dims : tuple of ResidualDim
    shape : tuple of int
        Positions along each dimension.
    records : ndarray
        The group's records (indices into the data).
    cells : ndarray
        The cell (C order) of each of those records.
    levels : list
        Per dimension, the level labels for a covariance-model dimension, else None.
    """

    dims: tuple
    shape: tuple
    records: np.ndarray
    cells: np.ndarray
    levels: list

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.shape))

    @property
    def missing(self) -> np.ndarray:
        """Cells without a record."""
        has = np.zeros(self.n_cells, dtype=bool)
        has[self.cells] = True
        return np.flatnonzero(~has)


@dataclass
class ResidualGroups:
    """Residual groups: one variance (and structure) per level of F, or one for all records."""

    spec: ResidualSpec
    record_group: np.ndarray  # residual group of each record
    labels: list
    grids: list  # per group: GridLayout, or None for independent records

    @property
    def n_groups(self) -> int:
        return len(self.labels)

    @property
    def n_missing_cells(self) -> int:
        return sum(g.missing.size for g in self.grids if g is not None)


def _section_of_levels(spec: ResidualSpec, f: Factor) -> list[ResidualSection]:
    """The residual section that applies to each level of the at() factor."""
    if len(spec.sections) == 1:
        return [spec.sections[0]] * f.n_levels
    owner: list = [None] * f.n_levels
    for sec in spec.sections:
        for lv in sec.at.levels:
            text = str(lv)
            if text in f.levels:
                k = f.levels.index(text)
            elif isinstance(lv, int) and 1 <= lv <= f.n_levels:
                k = lv - 1
            else:
                raise DataError(f"residual {sec.label}: {lv!r} is not a level of {sec.at.factor!r}")
            if owner[k] is not None:
                raise ModelError(f"level {f.levels[k]} of {sec.at.factor!r} is in two residual sections")
            owner[k] = sec
    missing = [f.levels[k] for k, o in enumerate(owner) if o is None]
    if missing:
        raise ModelError(f"every record needs a residual: level(s) {', '.join(missing[:5])} of "
                         f"{spec.sections[0].at.factor!r} are in no residual section")
    return owner


def _numeric_positions(series) -> np.ndarray | None:
    """Coordinates of an ar1 dimension: a numeric column, or text whose every value reads as a
    number ('1', '2', ..., '10': not ordered as text); None for a true factor (level order)."""
    if not is_factor_column(series):
        return series.to_numpy(dtype=float)
    if isinstance(series.dtype, pd.CategoricalDtype):
        cats = series.cat.categories
        if pd.api.types.is_numeric_dtype(cats) and not pd.api.types.is_bool_dtype(cats):
            return series.to_numpy(dtype=float)  # numbers made a factor (factors=[...]): still coordinates
        return None  # the categories' own order
    num = pd.to_numeric(series.astype("string"), errors="coerce")
    return None if num.isna().any() else num.to_numpy(dtype=float)


def _coordinate(columns, dim: ResidualDim, idx: np.ndarray, group: str) -> tuple[np.ndarray, int, tuple | None]:
    """Position of the records ``idx`` along one dimension, its length, and its levels."""
    name = dim.column
    series = columns[name]
    kind = residual_dim(dim.model)  # how records lie along it (class attributes of the registered dimension)
    x = _numeric_positions(series) if kind.coordinates else None
    if x is not None:
        x = x[idx]
        steps = np.diff(np.unique(x))  # within this group: groups may differ in spacing
        step = float(steps.min()) if steps.size else 1.0
        pos = (x - x.min()) / step
        if np.any(np.abs(pos - np.round(pos)) > 1e-6):
            raise DataError(f"{dim.model}({name}) in {group}: the values of {name!r} are not equally spaced (smallest step "
                            f"{step:g}); use a factor for irregular positions")
        pos = np.round(pos).astype(np.int64)
        return pos, int(pos.max()) + 1, None
    f = factor_of(columns, name)
    codes = f.codes[idx]
    if kind.coordinates:  # factor levels in order: the level index is the position
        return codes - codes.min(), int(codes.max() - codes.min()) + 1, None
    if kind.independent:
        uniq, pos = np.unique(codes, return_inverse=True)
        return pos.astype(np.int64), int(uniq.size), None
    check_cov_levels(dim.model, dim.args, f.levels, f"residual {dim.label} in {group}", name)
    absent = np.setdiff1d(np.arange(f.n_levels), codes)
    if absent.size:
        raise DataError(f"residual {dim.label} in {group}: no records have {name} = {f.levels[absent[0]]}")
    return codes.astype(np.int64), f.n_levels, f.levels


def _grid(columns, dims: tuple, idx: np.ndarray, group: str, independent: bool = False) -> GridLayout:
    coords = [_coordinate(columns, d, idx, group) for d in dims]
    shape = tuple(c[1] for c in coords)
    for d, (_, m, _) in zip(dims, coords):
        if m < residual_dim(d.model).min_positions:
            raise DataError(f"residual {group}: {d.column!r} has one position only, so the correlation "
                            f"of {d.model}({d.column}) cannot be estimated")
    cells = np.ravel_multi_index(tuple(c[0] for c in coords), shape)
    order = np.argsort(cells, kind="stable")
    cells, records = cells[order], idx[order]
    dup = np.flatnonzero(cells[1:] == cells[:-1])
    if dup.size:
        i, j = records[dup[0]], records[dup[0] + 1]
        where = ", ".join(f"{d.column} = {columns[d.column].iloc[i]}" for d in dims)
        raise DataError(f"two records share one grid position in the residual {group}: {where} "
                        f"(records {i + 1} and {j + 1} of those used); each cell of "
                        f"{':'.join(d.label for d in dims)} may hold one record")
    n_cells = int(np.prod(shape))
    if not independent and n_cells - idx.size > _MAX_EMPTY * idx.size + 100:
        raise DataError(f"residual {group}: the grid {' x '.join(map(str, shape))} has {n_cells} cells for "
                        f"{idx.size} records; check the coordinates of {', '.join(d.column for d in dims)}")
    return GridLayout(tuple(dims), shape, records, cells, [c[2] for c in coords])


def residual_groups(spec: ResidualSpec, columns: dict, n: int) -> ResidualGroups:
    """Code the residual: group of each record and, for structured residuals, the grids."""
    if spec.at is None:
        sec = spec.sections[0]
        grid = _section_grid(columns, sec, np.arange(n), sec.label)
        return ResidualGroups(spec, np.zeros(n, dtype=np.int64), ["units"], [grid])
    f = factor_of(columns, spec.at.factor)
    counts = np.bincount(f.codes, minlength=f.n_levels)
    labels = [spec.level_label(lv) for lv in f.levels]
    small = [f.levels[i] for i in np.flatnonzero(counts < 2)]
    if small:
        raise DataError(f"{labels[f.levels.index(small[0])]}: level {small[0]} of {spec.at.factor!r} has fewer "
                        f"than two records; its residual variance cannot be estimated")
    owner = _section_of_levels(spec, f)
    order = np.argsort(f.codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    grids = []
    for k, sec in enumerate(owner):
        idx = np.sort(order[starts[k]:starts[k + 1]])
        grids.append(_section_grid(columns, sec, idx, labels[k]))
    return ResidualGroups(spec, f.codes, labels, grids)


def _section_grid(columns, sec: ResidualSection, idx: np.ndarray, group: str) -> GridLayout | None:
    """The grid of a group's records, or None for independent records (no dimensions, or only
    id() ones: those are checked to give each record a cell of its own, and are then plain)."""
    if not sec.dims:
        return None
    grid = _grid(columns, sec.dims, idx, group, sec.independent)
    return None if sec.independent else grid

