"""The node's side of the record-by-record data pass (models with covariates, :mod:`.records`):
which columns are covariates, X from the records' X'X, and what the workers are sent."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data import _check_roles, _factor_uses, is_factor_column
from ..design.fixed import DENSE_MAX, FixedDesign, fixed_columns, fixed_from_gram
from ..errors import ModelError
from ..formula.spec import ModelSpec
from ..formula.terms import Var
from ..reml.start import needs_within_cells
from .cells import RowFilter
from .products import CellCoder
from .records import Multipliers, RecordCoder, merge_gram, partition_gram
from .sources import Source, per_partition, run_pass

__all__ = ["covariate_columns", "records_fixed", "record_coder", "RecordSource"]


def covariate_columns(spec: ModelSpec, sample: pd.DataFrame, factor_names: list) -> list:
    """The model's covariates: numeric columns of the fixed formula that are no factor (not
    ``C(x)``, not in ``factors=``), ``lin(x)`` anywhere, a random regression's columns.  The types
    come from ``sample`` (the first partition's schema).  A numeric column that the fixed
    formula takes as a covariate and another formula as a factor is refused as in memory; one
    written ``lin(x)`` (or a regression's) and also used as a factor is refused here: the cells
    would hold it as a factor and the records as a number."""
    _check_roles(spec, {c: sample[c].iloc[:0] for c in sample.columns})
    out = []
    for t in spec.fixed.terms:
        for v in t:
            s = sample.get(v.name)
            if v.as_covariate or (not v.as_factor and v.name not in factor_names and s is not None
                                  and not is_factor_column(s)):
                out.append(v.name)
    for term in spec.random:
        out += [f.name for f in term.factors if isinstance(f, Var) and f.as_covariate]
        if term.struct is not None and term.struct.covariates is not None:
            out += [c for c in term.struct.covariates if c != "1"]
    uses = _factor_uses(spec)
    both = [c for c in out if c in uses]
    if both:
        raise ModelError(f"column {both[0]!r} is a covariate of the model and a factor in {uses[both[0]]!r}; on "
                         f"partitioned data a column is one or the other so far: write a copy of it under another "
                         f"name for one of the two uses, or fit the data in memory")
    return list(dict.fromkeys(out))


@dataclass
class RecordSource:
    """Where the records' X'X comes from: the partitions, the scheduler, the row filter, the
    cells and their residual groups."""

    source: Source
    scheduler: object
    rows: RowFilter
    frame: pd.DataFrame
    groups: object


def _fixed_sets(spec: ModelSpec, term_of: list, covariates: list) -> list:
    """Per column of X, the covariates its entries multiply (in the term's order)."""
    by_label = {":".join(v.label for v in t): tuple(v.name for v in t if v.name in covariates and not v.as_factor)
                for t in spec.fixed.terms}
    return [by_label.get(label, ()) for label in term_of]


def _multipliers(sets: list, p: int) -> Multipliers:
    kinds = sorted({s for s in sets if s})
    sets_arr = np.array([kinds.index(s) if s else -1 for s in sets], dtype=np.int64)
    return Multipliers(tuple(kinds), tuple(sets_arr == i for i in range(len(kinds))), p)


def records_fixed(spec: ModelSpec, colset, nc: int, n: int, where: RecordSource) -> tuple[FixedDesign, CellCoder | None]:
    """X of a model with covariates: its columns coded on the cells, their aliasing and the OLS
    fit from the records' X'X and X'y (a pass over the partitions); and the cells' coder that pass
    used (None without fixed columns), for the next pass to reuse its keys."""
    blocks, names, term_of = fixed_columns(spec.fixed, colset, nc)
    if not blocks:
        return FixedDesign(sp.csc_matrix((nc, 0)), [], [], []), None
    if len(names) > DENSE_MAX:
        raise ModelError(f"the fixed part has {len(names):,} columns; with covariates the partitioned data pass "
                         f"forms X'X dense, up to {DENSE_MAX:,} columns: fit the widest fixed factor as a random "
                         f"term, or fit the data in memory")
    Xc = sp.hstack(blocks, format="csc")
    X = Xc.tocsr()
    X.sort_indices()
    mult = _multipliers(_fixed_sets(spec, term_of, where.rows.covariates), X.shape[1])
    cells = CellCoder.build(where.rows, where.frame, X, np.zeros(nc), where.groups.record_group,
                            where.groups.n_groups)
    columns = list(where.rows.columns) + [where.rows.response]
    tasks = [per_partition(partition_gram, t, name, cells, mult)
             for t, name in zip(where.source.tasks(columns), where.source.names)]
    xtx, xty = run_pass(tasks, merge_gram, where.scheduler)
    return fixed_from_gram(Xc, names, term_of, n, xtx, xty, X), cells


def record_coder(design, cells: CellCoder, covariates: list) -> RecordCoder:
    """What the workers need for the products pass of ``design`` (built on the cells)."""
    sets = _fixed_sets(design.spec, design.fixed.term_of, covariates)
    terms, regressions = [], []
    for t, rb in enumerate(design.random):
        cols = [()] * rb.size
        if rb.regression:
            covs = rb.term.struct.covariates
            k = len(covs)
            cols = [() if covs[c % k] == "1" else (covs[c % k],) for c in range(rb.size)]
            regressions.append((t, k, tuple(covs), rb.units, np.atleast_2d(rb.record_column)[0]))
        elif rb.values is not None:  # comb:lin(x)
            lin = next(f.name for f in rb.term.factors if isinstance(f, Var) and f.as_covariate)
            cols = [(lin,)] * rb.size
        sets += cols
        if not rb.regression and (rb.values is not None or rb.cov_levels is not None):  # their starts' sums
            terms.append((t, rb.record_column, rb.size))
    return RecordCoder(cells, _multipliers(sets, design.p), design.fixed.ols, tuple(terms), tuple(regressions),
                       needs_within_cells(design))
