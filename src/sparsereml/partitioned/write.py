"""Per-record outputs of a fit written to files: for a fit to partitioned data, one file per input
partition, written by the workers in one pass (the records are never gathered on this node);
for a fit in memory, one file.

Each record used by the fit gets the model's columns as read (response, factors, covariates),
the columns asked for with ``columns=``, ``row`` (its row number in its partition; for a fit in
memory the data's index label), ``fitted`` (X b + Z u), ``residual`` (response - fitted),
``group`` (its residual group's label) and, where the residual has a two-dimensional grid,
``grid_row``/``grid_col`` (-1 off a grid): the values of :func:`sparsereml.records.record_table`.
Records the fit did not use (a missing response, or a missing predictor with
``na_action="drop"``) are left out, as from ``m.fitted``; ``row`` joins the outputs back to the
input.

A worker finds a record's fitted value the way the data pass found its row of W: by its cell
(the distinct combination of factor levels, coded as in the fit), whose fitted value is that of
every record in it (factors only); with covariates, from the record's own row of W, built as
the fit's pass built it (:func:`.records.record_rows`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, ModelError
from .cells import RowFilter
from .products import CellCoder
from .records import RecordCoder, record_rows
from .sources import run_pass

__all__ = ["write_records", "OUTPUTS"]

OUTPUTS = ("row", "fitted", "residual", "group", "grid_row", "grid_col")  # what a written record gains
_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


@dataclass
class RecordWriter:
    """What a worker needs to write one partition's records: the row filter, the cells' coder and
    fitted values (factors only) or the record coder and solution (covariates), the residual
    groups' labels, the cells' grid positions (or None), where and how to write."""

    rows: RowFilter
    coder: CellCoder
    cell_fitted: np.ndarray | None
    records: RecordCoder | None
    solution: np.ndarray
    labels: list
    grid: tuple | None  # (grid_row, grid_col) per cell, -1 off a two-dimensional grid
    carry: tuple  # the columns= asked for
    out: str
    format: str

    def frame(self, df: pd.DataFrame, name: str) -> pd.DataFrame:
        """The output rows of one partition (its used records, in their order)."""
        missing = [c for c in self.carry if c not in df.columns]
        if missing:
            raise DataError(f"column {missing[0]!r} (columns=) is not in {name}; every partition needs the columns "
                            f"to carry, or leave it out of columns=")
        used = self.rows.used(df, name)  # once: the row filter is a pass over every column
        keep = used[0]
        if self.records is not None:  # the record's own row of W, as the fit's pass formed it
            W, yk, group, cell, _ = record_rows(df, name, self.records.cells, self.records.mult, used)
            fitted = W @ self.solution
        else:
            cols, yk, _ = self.rows.apply(df, name, used)
            cell = self.coder.cells(cols, name)  # factors only here: cols are the cells' keys
            fitted, group = self.cell_fitted[cell], self.coder.group[cell]
        names = [self.rows.response, *self.rows.columns]
        out = df.loc[keep, list(dict.fromkeys(names + list(self.carry)))].reset_index(drop=True)
        out.insert(0, "row", np.flatnonzero(keep))
        out["fitted"] = fitted
        out["residual"] = yk - fitted
        out["group"] = pd.Categorical.from_codes(group, categories=pd.Index(self.labels, dtype=object))
        if self.grid is not None:
            out["grid_row"], out["grid_col"] = self.grid[0][cell], self.grid[1][cell]
        return out


def write_partition(df: pd.DataFrame, name: str, index: int, writer: RecordWriter) -> list:
    """Write partition ``index``'s records to ``part-<index>`` of the output directory; returns
    [(file, records)] (what comes back to the node is this, not the records)."""
    out = writer.frame(df, name)
    path = os.path.join(writer.out, f"part-{index:05d}.{writer.format}")
    _write(out, path, writer.format)
    return [(path, len(out))]


def _write(frame: pd.DataFrame, path: str, fmt: str) -> None:
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def _concat(a: list, b: list) -> list:
    return a + b


def _format(path: Path, fmt: str | None, directory: bool) -> str:
    """The file format: ``format=`` or, for one file, the extension."""
    if fmt is not None:
        if fmt not in ("parquet", "csv"):
            raise ModelError(f"format={fmt!r}: give 'parquet' or 'csv'")
        return fmt
    if directory:
        return "parquet"
    ext = path.suffix.lower()
    if ext not in _FORMATS:
        raise ModelError(f"cannot tell the format of {str(path)!r} from its extension: name a .parquet or .csv file, "
                         f"or pass format='parquet' or format='csv'")
    return _FORMATS[ext]


def _check_names(model_columns: list, carry: list) -> None:
    clash = [c for c in list(model_columns) + list(carry) if c in OUTPUTS]
    if clash:
        raise ModelError(f"column {clash[0]!r} has the name of an output column of write_records "
                         f"({', '.join(OUTPUTS)}); write the data with that column renamed, or leave it out of columns=")


def _grids(design) -> list:
    """The residual's two-dimensional grids (those record_table places records on)."""
    return [g for g in design.residual.grids if g is not None and len(g.shape) == 2]


def _grid_positions(design, n: int) -> tuple | None:
    """Per cell (partitioned; a grid group's cell is one record): position in its group's grid."""
    from ..records import grid_positions

    return grid_positions(design.residual.grids, n) if _grids(design) else None


def _prepare_directory(out: Path, overwrite: bool) -> None:
    """An empty (or new) output directory; with ``overwrite`` the parts of an earlier write go."""
    if out.exists() and not out.is_dir():
        raise ModelError(f"{str(out)!r} is a file; a fit to partitioned data writes a directory of parts: give a "
                         f"directory path")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ModelError(f"{str(out)!r} is not empty; give a new directory, or pass overwrite=True to replace "
                             f"the parts (part-*.parquet, part-*.csv) written there before")
        for f in list(out.glob("part-*.parquet")) + list(out.glob("part-*.csv")):
            f.unlink()  # only what write_records writes: other files there are the user's
    out.mkdir(parents=True, exist_ok=True)


def write_records(model, path, format: str | None = None, columns: list | None = None, overwrite: bool = False,
                  data: pd.DataFrame | None = None) -> list[Path]:
    """Write the per-record outputs of ``model`` (see the module's description); returns the files.

    Parameters
    ----------
    model : FittedModel
        A Gaussian fit, to partitioned data or in memory.
    path : str or path
        Partitioned fits: a directory (new or empty), holding ``part-00000.parquet`` ... one per
        input partition, in the order of the fit's partitions.  In memory: one file.
    format : {"parquet", "csv"}, optional
        Default: Parquet for a directory, else the file's extension (.parquet, .pq, .csv).
    columns : list of str, optional
        Further columns of the data to carry along (e.g. a tree id).
    overwrite : bool
        Replace an existing file, or the parts in a non-empty directory.
    data : DataFrame, optional
        In memory only: the data the model was fitted to, where ``columns`` are read from (the
        fit keeps the model's columns only).
    """
    carry = [columns] if isinstance(columns, str) else list(columns or [])
    if not model.holds_records:
        if data is not None:
            raise ModelError("data= is for fits in memory; a fit to partitioned data reads columns= from its partitions")
        return _write_partitioned(model, Path(path), format, carry, overwrite)
    return _write_in_memory(model, Path(path), format, carry, overwrite, data)


def _write_partitioned(model, out: Path, fmt: str | None, carry: list, overwrite: bool) -> list[Path]:
    design = model.design
    part = design.partitions
    rows = part.rows
    fmt = _format(out, fmt, directory=True)
    names = [rows.response, *rows.columns]
    _check_names(names, carry)
    known = part.source.columns()
    known = known if known is not None else list(part.source.sample().columns)
    for c in carry:
        if c not in known:
            raise DataError(f"column {c!r} (columns=) is not in the data ({part.source.describe()}); columns: "
                            f"{', '.join(map(str, known))}")
    _prepare_directory(out, overwrite)
    sol = np.asarray(model.solution[: design.n_columns], dtype=float)
    ncells = len(part.cells)
    if part.records is None:
        cell_fitted, records = part.coder.W @ sol, None  # every record of a cell has the cell's row of W
    else:
        cell_fitted, records = None, part.records
    writer = RecordWriter(rows, part.coder, cell_fitted, records, sol, list(design.residual.labels),
                          _grid_positions(design, ncells), tuple(c for c in carry if c not in names), str(out), fmt)
    import dask

    task = dask.delayed(write_partition, pure=False)
    tasks = [task(t, name, i, writer) for i, (t, name) in
             enumerate(zip(part.source.tasks(list(dict.fromkeys(names + carry))), part.source.names))]
    written = run_pass(tasks, _concat, part.scheduler) or []
    return [Path(p) for p, _ in written]


def _write_in_memory(model, out: Path, fmt: str | None, carry: list, overwrite: bool, data) -> list[Path]:
    from ..records import record_table

    fmt = _format(out, fmt, directory=False)
    if out.is_dir():
        raise ModelError(f"{str(out)!r} is a directory; a fit in memory writes one file: give a file path")
    if out.exists() and not overwrite:
        raise ModelError(f"{str(out)!r} exists; give a new file, or pass overwrite=True to replace it")
    table, meta = record_table(model)
    if table is None:
        raise ModelError(meta["why"])
    md = model.design.data
    names = [md.response] + [v for v in model.spec.variables()[1:] if v != md.response]
    _check_names(names, carry)
    frame = pd.DataFrame({"row": np.asarray(md.index)})
    for name in names:
        src = model.design.y if name == md.response else md.columns.get(name)
        if src is not None:
            frame[name] = np.asarray(src)
    extra = [c for c in carry if c not in names]
    if extra:
        frame = pd.concat([frame, _carried(model, data, extra)], axis=1)
    frame["fitted"] = table["fitted"].to_numpy()
    frame["residual"] = table["residual"].to_numpy()
    frame["group"] = table["group"].to_numpy()
    if _grids(model.design):
        frame["grid_row"], frame["grid_col"] = table["grid_row"].to_numpy(), table["grid_col"].to_numpy()
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(frame, str(out), fmt)
    return [out]


def _carried(model, data, extra: list) -> pd.DataFrame:
    """The ``columns=`` of an in-memory fit's records, from ``data`` (checked to be the fit's data)."""
    md = model.design.data
    if data is None:
        raise ModelError(f"columns={extra!r}: a fit in memory keeps the model's columns only; pass the data it was "
                         f"fitted to as data= (or join on the 'row' column, the data's index)")
    if not isinstance(data, pd.DataFrame) or len(data) != md.n_total:
        raise DataError(f"data= has {len(data) if hasattr(data, '__len__') else '?'} rows, the data of the fit "
                        f"{md.n_total}: pass the DataFrame the model was fitted to")
    missing = [c for c in extra if c not in data.columns]
    if missing:
        raise DataError(f"column {missing[0]!r} (columns=) is not in data=")
    same = md.response in data.columns and np.array_equal(
        pd.to_numeric(data[md.response].iloc[md.rows], errors="coerce").to_numpy(dtype=float), md.y)
    if not same:
        raise DataError(f"data= is not the data the model was fitted to (its {md.response!r} differs in the rows "
                        f"used): pass that DataFrame")
    return data[extra].iloc[md.rows].reset_index(drop=True)
