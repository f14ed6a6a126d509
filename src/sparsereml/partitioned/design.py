"""The design of a model fitted to partitioned data, from the cells of the first pass.

The in-memory design stage runs on the cells (one row per distinct combination of the model's
factor columns): every factor and interaction level that occurs in the records occurs in the
cells, and the aliasing of X is the same (X's rows are the cells' rows, each at least once), so
the codes, level labels, columns and residual groups are those of the records in memory.  The
record-level parts (the count of records, the OLS coefficients, the records per residual
group) come from the cells' statistics; the cross-products from the second pass
(:mod:`.products`).  A model with covariates codes its columns on the cells too, and its passes
go record by record (:mod:`.records`); a structured residual's grid groups are formed in the
partition that holds each whole (:mod:`.grids`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._warmup import kind_of, prepare
from ..data import ModelData, _check_scale, _factor_names, _unknown_column
from ..design import Design
from ..design.alias import sparse_aliased
from ..design.coding import ColumnSet
from ..design.fixed import DENSE_MAX, fixed_design, ols_from_gram
from ..design.random import random_block
from ..design.residual import residual_groups
from ..errors import DataError, ModelError
from ..formula.spec import ModelSpec
from ..formula.terms import Groups
from .cells import ONE, Cells, RowFilter, merge_cells, partition_cells
from .covariates import RecordSource, covariate_columns, record_coder, records_fixed
from .grids import GridPlan, check_whole_groups
from .products import CellCoder, assemble, merge_products, partition_products
from .records import RecordCoder, RecordStats, merge_records, partition_records
from .sources import Source, per_partition, resolve_source, run_pass

__all__ = ["PartitionedDesign", "build_partitioned_design"]

_PER_RECORD = ("per-record values (fitted values, residuals, record tables and plots) of a fit to partitioned data "
               "are not kept on this node: the fit holds the equations, not the records. Fit the data in memory "
               "(a pandas DataFrame) for them, or write them per partition with m.write_records(dir)")


@dataclass
class PartitionedDesign(Design):
    """A :class:`~sparsereml.design.Design` whose records stay in their partitions: its ``data``
    holds the cells (one row per distinct combination of the factor columns), ``n`` counts the
    records, and ``partitions`` runs the data pass over them on Dask."""

    n_records: int = 0
    record_counts: np.ndarray | None = None  # records per residual group
    partitions: "PartitionPass | None" = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return self.n_records

    @property
    def y(self) -> np.ndarray:
        raise ModelError(_PER_RECORD)

    def W(self) -> sp.csr_matrix:
        raise ModelError(_PER_RECORD)

    def group_counts(self) -> np.ndarray:
        return self.record_counts

    holds_records = False

    def response_summary(self) -> np.ndarray:
        """(records, sum of y, sum of y^2) from the cells' counts, means and sums of squared
        deviations."""
        cells = self.partitions.cells
        n, mean = cells["n"].to_numpy(float), cells["mean"].to_numpy(float)
        return np.array([n.sum(), n @ mean, cells["m2"].to_numpy(float).sum() + n @ (mean * mean)])


@dataclass
class PartitionPass:
    """The data pass of a partitioned design: the source, the scheduler, the cells and the coder."""

    source: Source
    scheduler: object
    rows: RowFilter
    cells: pd.DataFrame
    coder: CellCoder | None = None
    ols: np.ndarray | None = None
    records: "RecordCoder | None" = None  # models with covariates: the pass goes record by record
    stats: "RecordStats | None" = None  # what the start values need of the records (records route)
    group_yty: np.ndarray | None = None  # y_g'y_g per residual group (of the centred y), for the start
    sizes: list = field(default_factory=list)  # per partition (name, rows, bytes as read), from the first pass

    def record_part(self, design: PartitionedDesign, extra: list, grids: list):
        """The :class:`~sparsereml.reml.problem.RecordPart` of the design's response, unweighted:
        the cross-products of every partition, summed (no per-record arrays)."""
        from ..reml.problem import RecordPart

        plan = GridPlan.build(design, grids, len(self.cells)) if any(g is not None for g in grids) else None
        columns = list(self.rows.columns) + [self.rows.response]
        if self.records is not None:
            tasks = [per_partition(partition_records, t, name, self.records)
                     for t, name in zip(self.source.tasks(columns), self.source.names)]
            total, self.stats = run_pass(tasks, merge_records, self.scheduler) or (None, None)
        else:
            tasks = [per_partition(partition_products, t, name, self.coder, plan)
                     for t, name in zip(self.source.tasks(columns), self.source.names)]
            total = run_pass(tasks, merge_products, self.scheduler)
        if total is None:  # pragma: no cover - the first pass found records
            raise DataError("no partition holds a record the model can use")
        cp = assemble(total, design.n_columns, extra, plan)
        self.group_yty = cp.yty if plan is None else total.group_yty
        return RecordPart(None, None, self.ols, None, cp, 0.0)


def _refuse_unsupported(spec: ModelSpec) -> None:
    """What this first slice of the partitioned data pass does not fit, named with the way out."""
    way = "fit it to a pandas DataFrame in memory for now"
    if spec.fixed.multivariate:
        raise ModelError(f"multivariate models (cbind) are not fitted to partitioned data yet; {way}")
    grp = [f.label for t in spec.fixed.terms for f in t if isinstance(f, Groups)] + \
        [f.label for r in spec.random for f in r.factors if isinstance(f, Groups)]
    if grp:
        raise ModelError(f"genetic groups ({grp[0]}) are not fitted to partitioned data yet; {way}")


def _refuse_blocks(design: Design) -> None:
    """Terms whose records' rows of W the cells do not hold: an overlay's parts are columns of
    their own (a covariate's value is put in record by record, :mod:`.records`)."""
    for rb in design.random:
        if rb.term.overlays:
            raise ModelError(f"random term {rb.label!r} is an overlay (and()), which is not fitted to partitioned "
                             f"data yet; fit it to a pandas DataFrame in memory for now")


def build_partitioned_design(spec: ModelSpec, data, na_action: str = "error", matrices: dict | None = None,
                             factors=None, backend: str | None = None, scheduler=None) -> PartitionedDesign:
    """The design of ``spec`` on partitioned ``data`` (a directory or glob of Parquet or CSV files,
    or a Dask DataFrame), by one pass over the partitions (the cells); see :func:`build_design`."""
    if na_action not in ("error", "drop"):
        raise DataError(f"na_action must be 'error' or 'drop', got {na_action!r}")
    source = resolve_source(data)
    _refuse_unsupported(spec)  # before any record is read
    rows, factor_names, gridded = _row_filter(spec, source, factors, na_action)
    names = [rows.response, *rows.columns]
    tasks = [per_partition(partition_cells, t, name, rows) for t, name in zip(source.tasks(names), source.names)]
    cells: Cells = run_pass(tasks, merge_cells, scheduler)
    frame = cells.frame
    if frame.empty:
        raise DataError(f"no record of {source.describe()} has a response {names[0]!r} and its predictors")
    covariates = list(rows.covariates)
    md = _cell_data(spec, cells, factor_names, covariates)
    prepare(kind_of(spec), backend)
    nc = len(frame)
    colset = ColumnSet(md.columns)
    count = frame["n"].to_numpy(dtype=float)
    n = int(count.sum())
    groups = residual_groups(spec.residual, colset, nc)
    keyed = None  # the cells' coder of the X'X pass, whose keys the products pass reuses
    if covariates:  # X'X and X'y of the records, for the aliasing and the OLS fit
        fx, keyed = records_fixed(spec, colset, nc, n, RecordSource(source, scheduler, rows, frame, groups))
    else:
        fx = fixed_design(spec.fixed, colset, nc, None)
    blocks = [random_block(t, colset, nc, matrices) for t in spec.random]
    design = PartitionedDesign(spec, md, fx, blocks, groups, n_records=n,
                               record_counts=np.bincount(groups.record_group, weights=count,
                                                         minlength=groups.n_groups).astype(np.int64))
    _refuse_blocks(design)
    _check_replicated(design, count)
    if gridded:
        check_whole_groups(design, cells.groups_in, count)
    design.partitions = _data_pass(design, PartitionPass(source, scheduler, rows, frame, sizes=cells.sizes), count,
                                   keyed)
    return design


def _row_filter(spec: ModelSpec, source: Source, factors, na_action: str) -> tuple[RowFilter, list, list]:
    """Which columns the passes read and how (factors, covariates, the at() factor of a grid
    residual), the ``factors=`` names, and the grid sections; refusals that need no record."""
    names = spec.variables()
    known = source.columns()
    if known is not None:
        for name in names:
            if name not in known:
                raise _unknown_column(name, known)
    factor_names = _factor_names(factors, pd.DataFrame(columns=known if known is not None else names))
    covariates = covariate_columns(spec, source.sample(), factor_names)
    gridded = [sec.label for sec in spec.residual.sections if sec.dims and not sec.independent]
    if covariates and gridded:
        raise ModelError(f"covariates ({', '.join(covariates)}) with a structured residual ({gridded[0]}) are not "
                         f"fitted to partitioned data yet; fit the data in memory, or use C() for a factor")
    whole = (spec.residual.at.factor if spec.residual.at is not None else ONE) if gridded else None
    rows = RowFilter(names[0], tuple(names[1:]), na_action, tuple(factor_names), tuple(covariates), whole)
    return rows, factor_names, gridded


def _data_pass(design: PartitionedDesign, part: PartitionPass, count: np.ndarray,
               keyed: CellCoder | None = None) -> PartitionPass:
    """``part`` given what the workers code records with: the cells' rows of W, and either their
    OLS fit (factors only) or the record-by-record coder (covariates; ``keyed``: the cells' coder
    of the X'X pass, if there was one)."""
    groups, rows, frame = design.residual, part.rows, part.cells
    W = Design._build_W(design)  # the cells' rows of [X Z] (covariates at 1)
    if rows.covariates:
        zero = np.zeros(len(frame))
        part.coder = keyed.with_rows(W, zero) if keyed is not None else \
            CellCoder.build(rows, frame, W, zero, groups.record_group, groups.n_groups)
        part.ols, part.records = design.fixed.ols, record_coder(design, part.coder, list(rows.covariates))
        return part
    part.ols = _cell_ols(design, count, frame["mean"].to_numpy(dtype=float))
    xb = design.fixed.X @ part.ols if part.ols.size else np.zeros(len(frame))
    part.coder = CellCoder.build(rows, frame, W, xb, groups.record_group, groups.n_groups)
    return part


def _cell_data(spec: ModelSpec, cells: Cells, factor_names: list, covariates: list) -> ModelData:
    """The cells as the design stage's ModelData (``y``: the cells' means, checked as the response;
    every covariate 1, so that W's entries on the cells are those a record multiplies)."""
    frame = cells.frame
    y = frame["mean"].to_numpy(dtype=float)
    n = frame["n"].to_numpy(dtype=float)
    resp = spec.fixed.response
    within = float(frame["m2"].sum())
    if np.ptp(y) == 0 and within == 0:
        raise DataError(f"the response {resp!r} is constant (every value is {y[0]:g}); there is nothing to estimate")
    _check_scale(resp, np.repeat(y, np.minimum(n, 2).astype(int)))
    cols = {c: frame[c] for c in frame.columns if c not in ("n", "mean", "m2", ONE)}
    cols.update({c: pd.Series(np.ones(len(frame))) for c in covariates})
    for name in factor_names:
        if name in cols and not isinstance(cols[name].dtype, pd.CategoricalDtype):
            cols[name] = cols[name].astype("category")
    d = cells.dropped
    return ModelData(resp, y, cols, np.arange(len(frame)), pd.RangeIndex(len(frame)), cells.n_read,
                     d["response"], d["predictors"], d["infinite"])


def _check_replicated(design: Design, count: np.ndarray) -> None:
    """The in-memory check that a term's variance can be told from the residual's needs the
    records; here: refuse a term with one record per level (rare in trial networks)."""
    for rb in design.random:
        if rb.relationship is not None or rb.cov_levels is not None or rb.values is not None:
            continue  # told apart from the residual by their covariances, as check_separable has it
        per_level = np.bincount(rb.record_column, weights=count, minlength=rb.size)
        if per_level.max(initial=0) <= 1:
            raise ModelError(f"random term {rb.label!r} has one record per level; such terms are not fitted to "
                             f"partitioned data yet (fit in memory)")


def _cell_ols(design: Design, count: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """OLS coefficients of y on X from the cells: X'X = X_c' diag(n) X_c, X'y = X_c' (n mean)."""
    X = design.fixed.X
    if X.shape[1] == 0:
        return np.zeros(0)
    if X.shape[1] > DENSE_MAX:
        root = np.sqrt(count)
        return sparse_aliased(sp.csr_matrix(sp.diags(root) @ X), design.fixed.term_of, root * mean)[1]
    return ols_from_gram((X.T @ sp.diags(count) @ X).toarray(), X.T @ (count * mean))
