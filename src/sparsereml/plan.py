"""The memory a fit will need, forecast before it factorises: :func:`plan` and :class:`MemoryPlan`.

The forecast is made from the analysed problem (after the data pass and the factor's symbolic
analysis, before any numeric factorisation): the records' part (the design held in memory, the
data pass's working arrays), the equations (cross-products per residual group, C and its index
maps), the factor (its nonzeros and dense block from the analysis,
:func:`~sparsereml.linalg.footprint.predicted_layout`), the selected inverse and the AI-REML
working arrays.  Each item is the arrays the code allocates, sized from the problem: bytes per
entry as the code holds them (8 for a float64 or int64, 4 for int32), not fitted to measurements
(benchmarks/memory_forecast.py compares the forecast with the measured peak).

The peak is the records' part plus the larger of the data pass's working arrays (freed when the
pass ends) and everything the iterations hold at once.  A fit whose peak exceeds ``max_memory``
(default: the memory available when the fit starts, :func:`~sparsereml.memory.available_memory`)
is refused before its first factorisation, with the options that would fit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import ModelError
from .linalg.factor import _DENSE_COPY_MAX, SINGLE_DENSE_MIN
from .linalg.footprint import FactorLayout, predicted_layout
from . import memory
from .memory import format_bytes, parse_memory

__all__ = ["MemoryPlan", "plan", "forecast", "check_memory", "Budget"]

_PARTS = ("records", "data pass", "equations", "factor", "selected inverse", "AI-REML")
_KEPT_EVALUATIONS = 2  # the iterations hold the current and the trial evaluation (C, H, C^-1 on C's pattern)


def _nbytes(*arrays) -> int:
    """Bytes of arrays and sparse matrices (their data, indices and pointers)."""
    total = 0
    for a in arrays:
        if a is None:
            continue
        if sp.issparse(a):
            a = a.tocsr() if a.format not in ("csr", "csc", "coo") else a
            parts = (a.data, a.row, a.col) if a.format == "coo" else (a.data, a.indices, a.indptr)
            total += sum(int(p.nbytes) for p in parts)
        else:
            total += int(np.asarray(a).nbytes)
    return total


@dataclass
class Budget:
    """The memory a fit may use: ``max_memory`` when given, else what was available when it started."""

    max_memory: int | None
    available: int | None
    source: str

    @classmethod
    def now(cls, max_memory=None) -> "Budget":
        """The budget of a fit starting now (``max_memory`` checked: bytes or text such as "4GB")."""
        limit = parse_memory(max_memory, "max_memory")
        available, source = memory.available_memory()
        return cls(limit, available, source)

    @property
    def bytes(self) -> int | None:
        return self.max_memory if self.max_memory is not None else self.available

    def describe(self) -> str:
        if self.max_memory is not None:
            return f"max_memory={format_bytes(self.max_memory)}"
        if self.available is None:
            return f"no memory limit ({self.source})"
        return f"{format_bytes(self.available)} available ({self.source})"


@dataclass
class MemoryPlan:
    """A fit's memory, forecast before it factorises.

    Attributes
    ----------
    items : list of (part, item, bytes, note)
        Part is one of "records", "data pass", "equations", "factor", "selected inverse", "AI-REML".
    peak : int
        Forecast peak in bytes: the records' part, plus the larger of the data pass's working
        arrays and everything else (held together through the iterations).
    budget : Budget
        ``max_memory`` and the memory available when the forecast was made.
    facts : dict
        What the figures come from: records, unknowns, nonzeros of C and of the factor, the
        dense block's width, the factorisation method, the route (in memory or partitioned).
    alternatives : list of str
        When the peak exceeds the budget: what would fit, with its figure.
    """

    items: list
    peak: int
    budget: Budget
    facts: dict
    alternatives: list = field(default_factory=list)

    @property
    def fits(self) -> bool:
        """Whether the peak is within the budget (True when no figure is known)."""
        return self.budget.bytes is None or self.peak <= self.budget.bytes

    def part(self, name: str) -> int:
        """Bytes of one part ("records", "factor", ...)."""
        if name not in _PARTS:
            raise ModelError(f"a memory plan's parts are {', '.join(_PARTS)}; got {name!r}")
        return sum(b for p, _, b, _ in self.items if p == name)

    @property
    def table(self) -> pd.DataFrame:
        """One row per item: part, item, MB (10^6 bytes), note."""
        return pd.DataFrame([(p, i, b / 1e6, n) for p, i, b, n in self.items], columns=["part", "item", "MB", "note"])

    def __str__(self) -> str:
        f = self.facts
        head = (f"Memory forecast: {f['records']:,} records ({f['route']}), {f['unknowns']:,} unknowns, "
                f"C {f['nnz_C']:,} nonzeros, factor {f['nnz_L']:,} nonzeros"
                + (f", dense block {f['dense_block']:,}" if f["dense_block"] else "") + f" ({f['method']})")
        width = max(len(i) for _, i, _, _ in self.items)
        lines = [head, f"  {'part':<17} {'item':<{width}} {'MB':>10}"]
        for p, i, b, _ in self.items:
            lines.append(f"  {p:<17} {i:<{width}} {b / 1e6:>10,.1f}")
        lines.append(f"  {'peak':<17} {'':<{width}} {self.peak / 1e6:>10,.1f}")
        verdict = "within it" if self.fits else "OVER it: sr.fit would refuse"
        lines.append(f"Budget: {self.budget.describe()}; the forecast peak is {verdict}.")
        lines += [f"  would fit: {a}" for a in self.alternatives]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain values (what ``sparsereml plan --json`` prints)."""
        return {"peak_bytes": int(self.peak), "fits": self.fits, "max_memory": self.budget.max_memory,
                "available": self.budget.available, "available_source": self.budget.source,
                "facts": dict(self.facts), "alternatives": list(self.alternatives),
                "items": [{"part": p, "item": i, "bytes": int(b), "note": n} for p, i, b, n in self.items]}


def _records_items(problem) -> list:
    """The design held in memory and the data pass's working arrays (in-memory data), or the cells
    and the products in flight (partitioned data, whose records stay in their partitions)."""
    design = problem.design
    partitions = getattr(design, "partitions", None)
    items = []
    if partitions is None:
        W = design.W()
        codes = [rb.record_column for rb in design.random]
        items.append(("records", "design W = [X Z] (one row per record)", _nbytes(W), f"{W.nnz:,} entries"))
        items.append(("records", "per-record vectors (response, codes, groups)",
                      _nbytes(design.y, problem.records.y_centred, design.residual.record_group, design.fixed.X,
                              *codes), ""))
        per_row = np.diff(W.indptr).astype(np.int64)
        pairs = int((per_row * (per_row + 1) // 2).sum())
        ones = bool(np.all(W.data == 1.0))
        # _lower_gram: pair rows (int32) and values unless all ones; int64/float copies of W's
        # indices and values; the gram's rows and values
        work = pairs * (4 if ones else 12) + W.nnz * 16 + problem.mme.lower.nnz * 16
        if design.residual.n_groups > 1:  # _plain_products' split by group: W again, record order, triplets
            work += W.nnz * 8 + design.n * 16 + problem.mme.lower.nnz * 24
        items.append(("data pass", "W'W pairs and copies (freed after the pass)", work, f"{pairs:,} pairs"))
    else:
        cells = partitions.cells
        items.append(("records", "cells (one row per combination of factor levels)",
                      int(cells.memory_usage(deep=False).sum()) + _nbytes(design.fixed.X), f"{len(cells):,} cells"))
        from .linalg.threads import usable_cores

        workers = max(1, usable_cores())
        cp = problem.cp
        one = _nbytes(cp.WtW, cp.Wty, cp.total)
        items.append(("data pass", "partition products in flight (workers + 1 merge)", (workers + 1) * one,
                       f"{workers} worker thread(s)"))
        items.append(_partitions_in_flight(partitions, problem.design))
    return items


# Bytes a partition costs while the pass reads and codes it, measured 2026-12-08 (benchmarks/RESULTS.md,
# the m2-parquet section) with tracemalloc and pyarrow's pool on the default network's m2: the arrow
# table 32 B per record, 2.6 times the pandas frame as read (12.3 B) -> _READ_COPIES frames; and the
# pass's arrays (cell keys, the records' rows of W, cross_products' pairs) 290-330 B per record for
# rows of 5 entries -> _BYTES_PER_ENTRY per entry of a record's row of W.
_READ_COPIES = 3.0
_BYTES_PER_ENTRY = 64


def _partitions_in_flight(partitions, design) -> tuple:
    """The partitions the pass holds at once on this machine (one per worker thread or process;
    none for a dask.distributed cluster, whose workers hold them) times the largest one's cost."""
    sched = partitions.scheduler
    if sched is not None and hasattr(sched, "gather"):
        return ("data pass", "partitions being read (on the dask.distributed workers)", 0,
                "held by the workers, not this process")
    from .linalg.threads import usable_cores

    at_once = 1 if sched in ("synchronous", "sync", "single-threaded") else max(1, usable_cores())
    W = partitions.coder.W  # one row per cell: a record has its cell's entries
    counts = partitions.cells["n"].to_numpy(dtype=float)
    per_row = float(np.diff(W.indptr) @ counts / max(counts.sum(), 1.0))
    largest = max((_READ_COPIES * b + _BYTES_PER_ENTRY * per_row * r for _, r, b in partitions.sizes), default=0.0)
    rows = max((r for _, r, _ in partitions.sizes), default=0)
    return ("data pass", "partitions being read and coded (at once x the largest)", int(at_once * largest),
            f"{at_once} at once; largest {rows:,} records, {per_row:.1f} entries of W each")


def _equation_items(problem) -> list:
    cp, nnz_c = problem.cp, problem.mme.lower.nnz
    n_e = cp.WtW.nnz
    return [("equations", "cross-products per residual group (W'W, W'y)",
             _nbytes(cp.lower, cp.WtW, cp.Wty, cp.total), f"{cp.n_components} component(s)"),
            # MixedModelEquations: rows, cols, off-diagonal weights; per-group triplets (6 arrays);
            # the factor's row/column maps and its gather (3); C and H of the kept evaluations
            ("equations", "C(theta): index maps and values",
             nnz_c * 8 * (3 + 3 + 2 * _KEPT_EVALUATIONS) + n_e * 8 * 6, f"{nnz_c:,} nonzeros")]


def _factor_items(f, single_precision: bool, layout: FactorLayout) -> list:
    """The factor ``f`` (a SparseLDL) would hold with this layout."""
    n = f.n
    below = layout.nnz - n
    backend = "star" if f.method.startswith("leaves") else f.backend
    items = [("factor", "L and D (values, row indices)", below * 16 + n * 8 * 8, f"{layout.nnz:,} nonzeros")]
    if layout.absorbed_pairs:
        items.append(("factor", "absorption map", layout.absorbed_pairs * 8, f"{f.n_absorbed:,} absorbed"))
    s = layout.backend_stored
    if backend == "cholmod":  # its supernodal L, the copy L() hands back (int32 rows), our copy of its rows
        items.append(("factor", "CHOLMOD's own factor and its copy", s * 8 + s * 12 + s * 8, f"{s:,} stored"))
    elif backend == "qdldl":  # its L (int64 rows), the copy factors() returns (int32 rows), int64 rows
        items.append(("factor", "QDLDL's own factor and its copy", s * 16 + s * 12 + s * 8, f"{s:,} stored"))
    else:
        items.append(("factor", "star pattern (row indices)", s * 8, ""))
    w = layout.dense
    if w:
        if backend == "star":  # the Schur complement, the inverse's buffer, a float32 copy for rough scores
            nbuf = 1 + (w <= _DENSE_COPY_MAX)  # wider star blocks are inverted in place
            single = single_precision and w >= SINGLE_DENSE_MIN  # a float32 copy of a wider block
            items.append(("factor", "dense block (LAPACK)", nbuf * w * w * 8 + single * w * w * 4, f"{w:,} columns"))
        else:  # the gathered block and the inverse's buffer
            items.append(("factor", "dense block (LAPACK)", 2 * w * w * 8, f"{w:,} columns"))
    return items


def _inverse_items(n: int, nnz_c: int, layout: FactorLayout) -> list:
    # Z on L's pattern, its positions in C, and C^-1 on C's pattern for each kept evaluation
    return [("selected inverse", "C^-1 on the factor's pattern", (layout.nnz - n) * 8 + n * 8 * 5,
             "the dense block's inverse is in the factor's buffer"),
            ("selected inverse", "C^-1 on C's pattern (kept)", nnz_c * 8 * (1 + _KEPT_EVALUATIONS), "")]


def _ai_items(problem) -> list:
    N, k = problem.mme.N, problem.params.n
    # T = W'R^-1 [working variates] (N x k), its permuted copy and the scaled forward solve
    return [("AI-REML", "working variates and T'C^-1T", 3 * N * k * 8, f"{k} parameters")]


def forecast(problem, budget: Budget | None = None) -> MemoryPlan:
    """The :class:`MemoryPlan` of an analysed :class:`~sparsereml.REMLProblem` (not factorised)."""
    budget = budget or Budget.now()
    layout = predicted_layout(problem.factor)
    items = (_records_items(problem) + _equation_items(problem)
             + _factor_items(problem.factor, problem.control.single_precision, layout)
             + _inverse_items(problem.mme.N, problem.mme.lower.nnz, layout) + _ai_items(problem))
    design = problem.design
    facts = {"records": int(design.n), "unknowns": int(problem.mme.N), "nnz_C": int(problem.mme.lower.nnz),
             "nnz_L": int(layout.nnz), "nnz_L_exact": layout.exact, "dense_block": int(layout.dense),
             "method": problem.factor.method, "ordering": problem.factor.ordering,
             "route": "in memory" if design.holds_records else "partitioned"}
    held, passing, rest = _sum(items, _PARTS[:1]), _sum(items, _PARTS[1:2]), _sum(items, _PARTS[2:])
    return MemoryPlan(items, held + max(passing, rest), budget, facts)


def _sum(items: list, parts) -> int:
    """Bytes of the items of these parts."""
    return sum(b for p, _, b, _ in items if p in parts)


def _other_factors(problem) -> list:
    """(label, SparseLDL) of the other factorisations the analysis could use: the star switched,
    the other backend."""
    from .linalg import SparseLDL, available_backends

    f, groups = problem.factor, problem.column_groups
    star = f.method.startswith("leaves")
    options = [(f"star={not star}", f.backend, not star)]
    options += [(f"backend={b!r}", b, problem.control.star) for b in available_backends() if b != f.backend]
    out = []
    for label, backend, use_star in options:
        other = SparseLDL(problem.mme.lower, backend, groups=groups, star=use_star)
        if other.method == f.method and other.ordering == f.ordering and other.backend == f.backend:
            continue  # the same factorisation
        out.append((label, other))
    return out


def _alternatives(problem, plan: MemoryPlan) -> list:
    """What would fit within the budget, each with its forecast (computed for this model)."""
    limit = plan.budget.bytes
    out = []
    if plan.facts["route"] == "in memory":
        eq = sum(plan.part(p) for p in _PARTS[2:])  # what the iterations hold: all but the records' parts
        if eq <= limit:
            out.append(f"the partitioned data route (data='dir/*.parquet' or a Dask DataFrame: the records stay in "
                       f"their partitions) needs about {format_bytes(eq)} plus a few partitions")
    held, passing = plan.part("records"), plan.part("data pass")
    common = plan.part("equations") + plan.part("AI-REML")
    for label, other in _other_factors(problem):
        lay = predicted_layout(other)
        items = _factor_items(other, problem.control.single_precision, lay) + \
            _inverse_items(problem.mme.N, problem.mme.lower.nnz, lay)
        need = held + max(passing, common + sum(b for _, _, b, _ in items))
        if need <= limit:
            out.append(f"control=sr.Control({label}) ({other.method}, {lay.nnz:,} factor nonzeros) needs about "
                       f"{format_bytes(need)}")
    out.append(f"max_memory=\"{-(-plan.peak // 10**6)}MB\" or more, on a machine with that much free")
    return out


def check_memory(problem, plan: MemoryPlan) -> None:
    """Refuse (ModelError) a fit whose forecast peak exceeds its budget, before it factorises,
    with the figure, the budget and the options that would fit."""
    if plan.fits:
        return
    plan.alternatives = _alternatives(problem, plan)
    f = plan.facts
    big = max(plan.items, key=lambda t: t[2])
    raise ModelError(
        f"this fit would need about {format_bytes(plan.peak)} at its peak, more than the "
        f"{plan.budget.describe()}: {f['unknowns']:,} unknowns, a factor of {f['nnz_L']:,} nonzeros"
        + (f" with a dense block of {f['dense_block']:,} columns" if f["dense_block"] else "")
        + f" ({f['method']}); the largest item is {big[1]} ({format_bytes(big[2])}). Options: "
        + "; ".join(plan.alternatives) + ". sr.plan(...) prints the whole forecast.")


def plan(fixed: str, random: str | None = None, residual: str | None = None, data=None, *, factors=None,
         na_action: str = "error", matrices: dict | None = None, control=None, backend: str | None = None,
         scheduler=None, max_memory=None, family=None) -> MemoryPlan:
    """The memory forecast of ``sr.fit`` with these arguments, without fitting.

    The data is read and coded, the data pass forms the cross-products and the factor is analysed
    (its symbolic analysis: order, absorption, dense block); nothing is factorised.

    Parameters
    ----------
    fixed, random, residual, data, factors, na_action, matrices, control, backend, scheduler
        As in :func:`sparsereml.fit`.
    max_memory : int or str, optional
        The budget to compare with (bytes, or text such as "4GB"); default the memory available.
    family : optional
        Only None (a Gaussian fit by REML) is forecast so far.

    Returns
    -------
    MemoryPlan
        ``print(plan)`` shows the table and the peak; ``plan.table`` is a DataFrame;
        ``plan.fits`` says whether the fit would be refused.
    """
    from .api import _check_arguments, _design
    from .control import resolve_control
    from .formula.spec import model_spec
    from .reml.problem import REMLProblem

    if family is not None:
        raise ModelError("sr.plan forecasts Gaussian REML fits; family= (a GLMM) is not forecast yet")
    budget = Budget.now(max_memory)
    control = resolve_control(control, backend=backend)
    _check_arguments(fixed, random, residual, data, None, None, matrices)
    spec = model_spec(fixed, random, residual)
    with control.threading():
        design = _design(spec, data, na_action, matrices, factors, control.backend, scheduler)
        problem = REMLProblem(design, control)
        out = forecast(problem, budget)
    if not out.fits:
        out.alternatives = _alternatives(problem, out)
    return out
