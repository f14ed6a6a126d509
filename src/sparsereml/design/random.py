"""Random-term coding: each record's level of each random term."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError, ModelError
from ..formula.model_terms import RandomTerm
from ..formula.terms import VM, At, Cross, Groups, Units, Var
from ..registry import cov_model
from .coding import ColumnSet, Factor, combine, encode, factor_of

__all__ = ["ColumnBlock", "RandomBlock", "random_block", "check_cov_levels", "check_separable"]


@dataclass(frozen=True)
class ColumnBlock:
    """A run of consecutive columns of a random term that shares one variance parameter (or,
    for a correlated term, one covariance model).

    Attributes
    ----------
    label : str
        The variance parameter's label, e.g. ``"Mother"`` or ``"at(Trial, 3):Block"``.
    start : int
        First column of the run, counted within the term.
    size : int
        Number of columns.
    """

    label: str
    start: int
    size: int

    @property
    def stop(self) -> int:
        """One past the last column of the run (within the term)."""
        return self.start + self.size


@dataclass
class RandomBlock:
    """The columns of one random term.

    Attributes
    ----------
    term : RandomTerm
    record_column : ndarray of int64
        Column (0-based, within the term) of each record; -1 when the record has
        no effect of this term (outside the levels named in at()).  A random regression has
        k rows, one per coefficient, with the covariates' values in ``values``.
    levels : tuple of str
        Label of each column, e.g. ``"3:17"`` for Trial 3, Mother 17.
    blocks : list of ColumnBlock
        One variance parameter per block of consecutive columns: one block for a
        plain term, one per level of F for ``at(F):T`` and ``diag(F):T``; a correlated
        term (``us(F):T``, ``fa(F, k):T``, ...) is one block whose parameters come from its
        covariance model across ``cov_levels``.
    """

    term: RandomTerm
    record_column: np.ndarray
    levels: tuple
    blocks: list
    cov_levels: tuple | None = None  # levels of the structure's factor (correlated terms)
    units: int = 0  # independent units of a correlated term (levels of its other factors)
    values: np.ndarray | None = None  # random regression: (k x n) covariate values, record_column (k x n)
    relationship: object | None = None  # vm(): the Relationship (ids, K^-1, log|K|) of the units
    selfs: int = 0  # and()/overlay(): records whose parts name one level (selfs), counted once with the weights summed

    @property
    def regression(self) -> bool:
        """A random regression (``us(~ 1 + x):g``): record_column and values one row per coefficient
        (values also hold an overlay's weights and a ``g:lin(x)`` term's covariate)."""
        s = self.term.struct
        return self.values is not None and s is not None and s.covariates is not None

    @property
    def size(self) -> int:
        return len(self.levels)

    @property
    def label(self) -> str:
        return self.term.label


def _units(n: int) -> Factor:
    """``units``: one level per record, labelled by its position among the records used."""
    return Factor("units", np.arange(n, dtype=np.int64), tuple(str(i + 1) for i in range(n)))


def _at_levels(at: At, f: Factor) -> list[int]:
    """Codes of the levels named in at(F, ...): by label first, else by 1-based position (ASReml)."""
    if at.levels is None:
        return list(range(f.n_levels))
    out = []
    for lv in at.levels:
        text = str(lv)
        if text in f.levels:
            out.append(f.levels.index(text))
        elif isinstance(lv, int) and 1 <= lv <= f.n_levels:
            out.append(lv - 1)
        else:
            shown = ", ".join(f.levels[:12]) + (" ..." if f.n_levels > 12 else "")
            raise DataError(f"{at.label}: level {lv!r} is not a level of {at.factor!r} (levels: {shown})")
    if len(set(out)) != len(out):
        raise ModelError(f"{at.label} names a level twice")
    return out


def random_block(term: RandomTerm, columns: dict, n: int | None = None, matrices: dict | None = None) -> RandomBlock:
    """Code one random term; every column named in it is a factor whatever its dtype.  ``n``
    (the number of records) is needed for ``units``, ``matrices`` for ``vm()``."""
    if term.overlays:
        return _overlay_block(term, columns, n, matrices)
    lin = next((f for f in term.factors if isinstance(f, Var) and f.as_covariate), None)
    if lin is not None:
        return _scaled_block(term, lin, columns, n, matrices)
    grp = next((f for f in term.factors if isinstance(f, Groups)), None)
    if grp is not None:
        from .groups import random_group_block

        return random_group_block(term, grp, columns, matrices)
    vm = next((f for f in term.factors if isinstance(f, VM)), None)
    if vm is not None:
        return _related_block(term, vm, columns, matrices or {})
    kept = _kept_rows_factor(term, columns) if term.at is not None and term.struct is None else None
    if kept is not None:
        return _per_level_block(term, term.at, kept, columns, term.level_label)
    inner = combine([_units(n) if isinstance(v, Units) else _cross_factor(columns, v) if isinstance(v, Cross)
                     else factor_of(columns, v.name) for v in term.factors])
    if term.struct is not None and term.struct.covariates is not None:
        return _regression_block(term, inner, columns)
    if term.struct is not None and not term.struct.per_level:
        return _correlated_block(term, inner, columns)
    if term.struct is not None:  # diag(F):T is at(F):T with its own labels
        return _per_level_block(term, At(term.struct.factor), inner, columns,
                                lambda lv: f"{term.label}!{lv}")
    if term.at is not None:
        return _per_level_block(term, term.at, inner, columns, term.level_label)
    if inner.n_levels < 2:
        raise DataError(f"random term {term.label!r} has only one level ({inner.levels[0]}); "
                        f"its variance cannot be estimated")
    return RandomBlock(term, inner.codes, inner.levels, [ColumnBlock(term.label, 0, inner.n_levels)])


def _kept_rows_factor(term: RandomTerm, columns: dict) -> Factor | None:
    """For ``at(F, levels):T`` with T one column: T coded on the records at() keeps (-1 on the
    others), or None where that could differ from coding all records.  Clone ids, say, are one
    level per tree of the whole network but only the clones' few hundred are kept, and coding
    (sorting, labelling) the rest is most of the term's cost.  The levels come in the same order
    with the same labels as from the whole column, as long as a subset sorts as the whole does:
    categories, text and integers (not floats, whose labels depend on all values being whole,
    nor mixed objects, which sort as text only when they do not compare)."""
    if len(term.factors) != 1 or type(term.factors[0]) is not Var:
        return None
    name = term.factors[0].name
    if isinstance(columns, ColumnSet) and columns.has_factor(name):
        return None  # coded whole already
    col = columns[name]
    dt = col.dtype
    if not (isinstance(dt, (pd.CategoricalDtype, pd.StringDtype)) or (isinstance(dt, np.dtype) and dt.kind in "iu")):
        return None
    af = factor_of(columns, term.at.factor)
    sel = np.zeros(af.n_levels + 1, dtype=bool)  # the last entry stands for a missing F (code -1)
    sel[_at_levels(term.at, af)] = True
    rows = sel[af.codes]
    if rows.all():
        return None
    sub = encode(col[rows], name)
    codes = np.full(rows.size, -1, dtype=np.int64)
    codes[rows] = sub.codes
    return Factor(name, codes, sub.levels)


def _scaled_block(term: RandomTerm, lin: Var, columns: dict, n: int | None, matrices) -> RandomBlock:
    """``comb:lin(dr)``: the term of the other factors, each record's entry its value of dr."""
    col = columns[lin.name]
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        raise DataError(f"{term.label!r}: the covariate {lin.name!r} must be numeric, it has dtype {col.dtype}")
    rest = RandomTerm(tuple(f for f in term.factors if f is not lin), term.at, term.struct)
    rb = random_block(rest, columns, n, matrices)
    values = np.asarray(col, dtype=float)[None, :]
    return RandomBlock(term, rb.record_column, rb.levels, [ColumnBlock(term.label, b.start, b.size) for b in rb.blocks],
                       cov_levels=rb.cov_levels, units=rb.units, values=values, relationship=rb.relationship)


def _cross_factor(columns: dict, cross: Cross) -> Factor:
    """The unordered cross of two parent columns: levels ``A x B`` with A before B in the parents'
    common order (a self ``A x A``); -1 where the second parent is unknown."""
    a, b = columns[cross.first].reset_index(drop=True), columns[cross.second].reset_index(drop=True)
    gone = _no_parent(b)
    both = encode(_stacked([a, b], [gone]), cross.label)
    n = len(a)
    ca, cb = both.codes[:n], both.codes[n:]
    lo, hi = np.minimum(ca, cb), np.maximum(ca, cb)
    key = np.where(gone, -1, lo * both.n_levels + hi)
    uniq, codes = np.unique(key[~gone], return_inverse=True)
    out = np.full(n, -1, dtype=np.int64)
    out[~gone] = codes
    labels = tuple(f"{both.levels[k // both.n_levels]} x {both.levels[k % both.n_levels]}" for k in uniq.tolist())
    return Factor(cross.label, out, labels)


def _no_parent(values: pd.Series) -> np.ndarray:
    """Rows without a parent in an and() column: missing, 0 or "0" (open pollination)."""
    miss = values.isna().to_numpy()
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":  # whole numbers: "0" only for 0
        return miss | (values.to_numpy() == 0)
    text = values.astype("string").str.strip().fillna("").to_numpy(dtype=object)
    return miss | np.isin(text, ["0", "0.0", ""])


def _numbers(v: pd.Series) -> bool:
    dt = v.dtype.categories.dtype if isinstance(v.dtype, pd.CategoricalDtype) else v.dtype
    return pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt)


def _stacked(parts: list, gone: list) -> pd.Series:
    """The parts' values one after another (rows ``gone`` of a part take the first part's value:
    they get no entry anyway): numbers when every part holds numbers, so that levels sort as
    numbers, else text."""
    if all(_numbers(v) for v in parts):
        vals = [np.asarray(v.astype(float) if isinstance(v.dtype, pd.CategoricalDtype) else v, dtype=float) for v in parts]
    else:
        vals = [v.astype("string").str.strip().to_numpy(dtype=object) for v in parts]
    out = [vals[0]] + [np.where(g, vals[0], x) for x, g in zip(vals[1:], gone)]
    return pd.Series(np.concatenate(out))


def _overlay_block(term: RandomTerm, columns: dict, n: int, matrices: dict | None) -> RandomBlock:
    """``Mother + and(Father, w)``: the term coded on the records stacked once per part (the
    parts' columns taking the first part's place), so that the levels are every part's levels
    together; a record then has one entry per part it has a parent in (w for an and() part), two
    entries of one level merged (a self: 2)."""
    base = RandomTerm(term.factors, term.at, term.struct)
    if base.struct is not None and base.struct.covariates is not None:
        raise ModelError(f"{term.written}: a random regression cannot take and()")
    if any(isinstance(f, Units) for f in term.factors):
        raise ModelError(f"{term.written}: units cannot take and()")
    names = [f.name for f in term.factors]
    k = 1 + len(term.overlays)
    used = list(dict.fromkeys(names + ([term.at.factor] if term.at else [])
                              + ([term.struct.factor] if term.struct else [])))
    absent = [np.zeros(n, dtype=bool)]
    for factors, _ in term.overlays:
        absent.append(np.logical_or.reduce([_no_parent(columns[f.name]) for f in factors]))
    stacked = {}
    for c in used:
        first = columns[c].reset_index(drop=True)
        if c in names:
            parts = [first] + [columns[factors[names.index(c)].name].reset_index(drop=True)
                               for factors, _ in term.overlays]
            stacked[c] = _stacked(parts, absent[1:])
        else:
            stacked[c] = pd.concat([first] * k, ignore_index=True)
    rb = random_block(base, stacked, n * k, matrices)
    codes = rb.record_column.reshape(k, n).copy()
    values = np.ones((k, n))
    selfs = np.zeros(n, dtype=bool)
    for j, ((_, w), gone) in enumerate(zip(term.overlays, absent[1:]), start=1):
        codes[j, gone] = -1
        values[j] = w
        for i in range(j):  # the same level twice in a record (a self): one entry, the weights summed
            same = (codes[j] >= 0) & (codes[j] == codes[i])
            values[i, same] += values[j, same]
            codes[j, same] = -1
            selfs |= same
    order = np.argsort(np.where(codes >= 0, codes, np.iinfo(np.int64).max), axis=0, kind="stable")
    codes = np.take_along_axis(codes, order, axis=0)  # each record's columns increasing, as W needs
    values = np.take_along_axis(values, order, axis=0)
    return RandomBlock(term, codes, rb.levels, rb.blocks, cov_levels=rb.cov_levels, units=rb.units,
                       values=values, relationship=rb.relationship, selfs=int(selfs.sum()))


def _per_level_block(term: RandomTerm, at: At, inner: Factor, columns: dict, label_of) -> RandomBlock:
    """One variance per level of ``at.factor``: the columns are the (F level, T level) pairs seen."""
    af = factor_of(columns, at.factor)
    chosen = _at_levels(at, af)
    sel = np.zeros(af.n_levels, dtype=bool)
    sel[chosen] = True
    both = combine([af, inner])
    coded = both.codes >= 0  # records outside the rows T was coded on (_kept_rows_factor) have none
    at_of_col = np.empty(both.n_levels, dtype=np.int64)
    at_of_col[both.codes[coded]] = af.codes[coded]  # levels are sorted by F first, so blocks are contiguous
    keep_level = sel[at_of_col]
    remap = np.full(both.n_levels, -1, dtype=np.int64)
    remap[keep_level] = np.arange(int(keep_level.sum()))
    codes = np.where(coded, remap[both.codes], -1)
    # by position: labelling every combination first (PairLabels) costs most of this function
    # when at() keeps few levels of a large interaction, e.g. at(Type, clone):Clone
    levels = tuple(both.levels[int(i)] for i in np.flatnonzero(keep_level))
    at_of_col = at_of_col[keep_level]
    blocks = []
    for a in sorted(chosen):
        idx = np.flatnonzero(at_of_col == a)
        label = label_of(af.levels[a])
        if idx.size == 0:
            raise DataError(f"{label}: no records have {at.factor} = {af.levels[a]}")
        if idx.size < 2:
            raise DataError(f"{label} has only one level; its variance cannot be estimated")
        blocks.append(ColumnBlock(label, int(idx[0]), int(idx.size)))
    return RandomBlock(term, codes, levels, blocks)


def check_cov_levels(model: str, args: tuple, levels, where: str, column: str) -> None:
    """Refuse a factor whose levels the covariance model ``model`` cannot describe (its
    ``check_levels``: e.g. fa(F, k) with more parameters than us(), exp(F) with levels that are
    not numbers), as a ModelError naming ``where`` and ``column``."""
    cov_model(model).check_levels(args, levels, where, column)


def check_separable(blocks: list, residual, n: int) -> None:
    """Refuse random terms whose variances cannot be told apart from the residual variances: terms
    with one record per level (no covariance between records) add to each record's variance only,
    as the residual does, so together they are identified only if the records' patterns of
    (term variance, residual variance) leave the indicator columns of full rank."""
    plain = np.array([g is None for g in residual.grids])[residual.record_group]  # records with independent residuals
    parts, members = [], []
    for rb in blocks:
        if rb.relationship is not None or rb.cov_levels is not None or rb.values is not None:
            continue
        if not (rb.record_column[plain] >= 0).any():
            continue
        # replicated anywhere (a grid section included), the term's variance is identified there
        if np.bincount(rb.record_column[rb.record_column >= 0], minlength=rb.size).max() > 1:
            continue
        block_of = np.empty(rb.size, dtype=np.int64)
        for j, b in enumerate(rb.blocks):
            block_of[b.start:b.stop] = j
        parts.append(rb)
        members.append(np.where(rb.record_column >= 0, block_of[np.maximum(rb.record_column, 0)], -1)[plain])
    if not parts:
        return
    keys = np.unique(np.column_stack(members + [residual.record_group[plain]]), axis=0)
    cols = [(k, b) for k, rb in enumerate(parts) for b in range(len(rb.blocks))] + \
        [(len(parts), g) for g in range(residual.n_groups)]
    M = np.array([[float(row[k] == b) for k, b in cols] for row in keys])
    M = M[:, M.any(axis=0)]
    if np.linalg.matrix_rank(M) < M.shape[1]:
        names = ", ".join(repr(rb.label) for rb in parts)
        raise ModelError(f"random term {names} has one level per record, so its variance cannot be told apart from "
                         f"the residual variance ({n:,} records): drop it, or give the residual a structure beside "
                         f"which it is a nugget (e.g. residual='~ ar1(Row):ar1(Col)')")


def _correlated_block(term: RandomTerm, inner: Factor, columns: dict) -> RandomBlock:
    """Effects correlated across the levels of the structure's factor (us, fa, corh, ...): one
    effect for every (unit, level) pair, seen or not, ordered unit by unit."""
    sf = factor_of(columns, term.struct.factor)
    n, q = sf.n_levels, inner.n_levels
    if n < 2:
        raise DataError(f"{term.struct.label} in {term.label!r}: {term.struct.factor!r} has one level only")
    if q < 2:
        raise DataError(f"random term {term.label!r}: {inner.name!r} has one level only")
    check_cov_levels(term.struct.model, term.struct.args, sf.levels, f"random term {term.label!r}",
                     term.struct.factor)
    codes = inner.codes * n + sf.codes
    levels = tuple(f"{sf.levels[i]}:{inner.levels[m]}" for m in range(q) for i in range(n))
    return RandomBlock(term, codes, levels, [ColumnBlock(term.label, 0, q * n)], cov_levels=sf.levels, units=q)


def _regression_block(term: RandomTerm, inner: Factor, columns: dict) -> RandomBlock:
    """``us(~ 1 + x):g``: for each level of g one coefficient per column of the regression
    (intercept and slopes), correlated by the covariance model; record i of level m has
    x_ik in column m k + j."""
    covs = term.struct.covariates
    n_rec = inner.codes.shape[0]
    values = np.ones((len(covs), n_rec))
    for j, c in enumerate(covs):
        if c == "1":
            continue
        col = columns[c]
        if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            raise DataError(f"{term.label!r}: the regression column {c!r} must be numeric, it has dtype {col.dtype}")
        values[j] = col.to_numpy(dtype=float)
    q, k = inner.n_levels, len(covs)
    if q < 2:
        raise DataError(f"random term {term.label!r}: {inner.name!r} has one level only")
    codes = np.vstack([inner.codes * k + j for j in range(k)])
    names = tuple("(Intercept)" if c == "1" else c for c in covs)
    levels = tuple(f"{inner.levels[m]}:{names[j]}" for m in range(q) for j in range(k))
    return RandomBlock(term, codes, levels, [ColumnBlock(term.label, 0, q * k)], cov_levels=names, units=q,
                       values=values)


def _related_block(term: RandomTerm, vm: VM, columns: dict, matrices: dict) -> RandomBlock:
    """``vm(id, name)``: one effect per individual of the relationship (ancestors without records
    too); with a structure, one per (individual, level), individual by individual."""
    from ..pedigree.relationship import as_relationship

    if vm.matrix not in matrices:
        given = ", ".join(map(repr, matrices)) or "none"
        raise ModelError(f"{term.label}: no matrix named {vm.matrix!r} was given (given: {given}); pass "
                         f"fit(..., matrices={{{vm.matrix!r}: ped}})")
    rel = as_relationship(matrices[vm.matrix], vm.matrix)
    add = bool(getattr(rel.pedigree, "add_missing", False))
    codes, rel = rel.codes(columns[vm.column], term.label, add_missing=add)
    q = len(rel.ids)
    if term.struct is None:
        return RandomBlock(term, codes, rel.ids, [ColumnBlock(term.label, 0, q)], relationship=rel)
    if term.struct.covariates is not None:
        raise ModelError(f"{term.label}: a random regression on vm() is not supported")
    sf = factor_of(columns, term.struct.factor)
    k = sf.n_levels
    if k < 2:
        raise DataError(f"{term.struct.label} in {term.label!r}: {term.struct.factor!r} has one level only")
    check_cov_levels(term.struct.model, term.struct.args, sf.levels, f"random term {term.label!r}",
                     term.struct.factor)
    levels = tuple(f"{sf.levels[i]}:{rel.ids[m]}" for m in range(q) for i in range(k))
    return RandomBlock(term, codes * k + sf.codes, levels, [ColumnBlock(term.label, 0, q * k)], cov_levels=sf.levels,
                       units=q, relationship=rel)
