"""Residual formulas: sections of residual groups and the dimensions of their grids.

``~ units``, ``~ at(F):units`` (``dsum(~ units | F)``), grids such as ``~ ar1(Row):ar1(Col)`` or
``~ tree:us(dir)`` (each also per level of F), and ``at(F, levels)`` sections joined by ``+``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import registry
from ..errors import FormulaError
from .parser import Bar, Call, Formula, Name, parse
from .terms import _ZERO, RECORD, TRAIT, At, Struct, Term, Units, Var, _expand, quote_name, term_label

__all__ = ["ResidualDim", "ResidualSection", "ResidualSpec", "parse_residual"]


@dataclass(frozen=True)
class ResidualDim:
    """One dimension of a residual grid: ``id`` (a plain factor), ``ar1`` or a covariance model
    (``model`` is its registered name, :func:`sparsereml.registry.residual_dim`)."""

    model: str
    column: str
    args: tuple = ()

    @property
    def label(self) -> str:
        return Struct(self.model, self.column, self.args).label

    @property
    def independent(self) -> bool:
        """Records along it are independent (id)."""
        return registry.residual_dim(self.model).independent

    @property
    def coordinates(self) -> bool:
        """Its column gives positions (ar1), not factor levels."""
        return registry.residual_dim(self.model).coordinates


@dataclass(frozen=True)
class ResidualSection:
    """The residual of the groups selected by ``at``: a Kronecker product of ``dims`` (none:
    independent records with one variance)."""

    at: At | None = None
    dims: tuple = ()

    @property
    def label(self) -> str:
        parts = ([self.at.label] if self.at else []) + [d.label for d in self.dims]
        return ":".join(parts) if self.dims else (f"{self.at.label}:units" if self.at else "units")

    @property
    def independent(self) -> bool:
        """Independent records with one variance: no dimensions, or only id() ones."""
        return all(d.independent for d in self.dims)


@dataclass(frozen=True)
class ResidualSpec:
    """Residual sections; several only as ``at(F, levels)`` sections of one factor F."""

    sections: tuple = (ResidualSection(),)

    @property
    def at(self) -> At | None:
        """at(F) of the groups (the factor that splits the records), or None for one group."""
        a = self.sections[0].at
        return At(a.factor) if a is not None else None

    @property
    def label(self) -> str:
        return " + ".join(sec.label for sec in self.sections)

    def level_label(self, level: str) -> str:
        return f"{At(self.sections[0].at.factor).level_label(level)}:units"


def _residual_section(term: Term, text: str, multivariate: bool = False) -> ResidualSection:
    ats = [f for f in term if isinstance(f, At)]
    if len(ats) > 1:
        raise FormulaError(f"a residual section can have one at(), found {term_label(term)!r} in {text!r}")
    dims = []
    for f in term:
        if isinstance(f, Var) and f.as_covariate:
            raise FormulaError(f"{f.label} (a covariate) has no meaning in the residual formula {text!r}")
        if isinstance(f, Var):
            dims.append(ResidualDim("id", f.name))
        elif isinstance(f, Struct):
            if f.covariates is not None:
                raise FormulaError(f"{f.label} cannot be a residual dimension in {text!r}")
            dims.append(ResidualDim(f.model, f.factor, f.args))
    if multivariate and any(isinstance(f, Units) for f in term) and dims:  # units = the original record
        dims.insert(next(i for i, f in enumerate(term) if isinstance(f, Units)) - sum(isinstance(f, At) for f in term),
                    ResidualDim("id", RECORD))
    names = [d.column for d in dims]
    if len(set(names)) < len(names):
        raise FormulaError(f"a column appears twice in the residual {term_label(term)!r} of {text!r}")
    if any(isinstance(f, Units) for f in term) and dims and not multivariate:
        raise FormulaError(f"'units' with other factors in the residual {term_label(term)!r} needs a multivariate "
                           f"response (cbind(a, b) ~ ...); for one response write the grid's factors, as in "
                           f"'~ ar1(Row):ar1(Col)' or '~ tree:us(dir)'")
    if not dims and not any(isinstance(f, Units) for f in term):
        raise FormulaError(f"residual {term_label(term)!r} in {text!r}: write at(F):units or give its dimensions")
    if len(dims) == 1 and dims[0].independent:
        name = dims[0].column
        where = f"at({quote_name(ats[0].factor)}):" if ats else ""
        raise FormulaError(
            f"the residual {term_label(term)!r} in {text!r} has no meaning: a lone factor does not say how the "
            f"errors of records are related. Write ~ {where}units for independent records, ~ at({quote_name(name)}):units "
            f"for one residual variance per level of {name!r}, or a grid such as ~ ar1(Row):ar1(Col) or "
            f"~ id(Col):ar1(Row); effects of {name!r} belong in the random formula")
    # id x id x ... is independent records with one variance; the design stage checks that each
    # cell of the grid holds one record (what the grid says)
    return ResidualSection(ats[0] if ats else None, tuple(dims))


def parse_residual(residual: str | None, multivariate: bool = False) -> ResidualSpec:
    if multivariate and (residual is None or residual.strip() in ("", "~")):
        residual = f"~ units:us({TRAIT})"  # traits of a record correlated, records independent
    if residual is None or residual.strip() in ("", "~", "~ units", "~units", "units"):
        return ResidualSpec()
    tree = parse(residual)
    if isinstance(tree, Formula):
        tree = tree.rhs
    if isinstance(tree, Call) and tree.func == "dsum":  # ASReml: dsum(~ units | F), dsum(~ ar1(r):ar1(c) | F)
        arg = tree.args[0] if len(tree.args) == 1 and not tree.kwargs else None
        arg = arg.rhs if isinstance(arg, Formula) else arg
        if not (isinstance(arg, Bar) and isinstance(arg.rhs, Name)):
            raise FormulaError(f"dsum() takes one '~ structure | F' argument, as in dsum(~ units | Trial); got "
                               f"{residual!r} (for different structures per level use at(F, levels) sections)")
        inner = _expand(arg.lhs, residual)
        if len(inner) != 1:
            raise FormulaError(f"dsum(~ ... | F) takes one residual structure, got {residual!r}")
        return ResidualSpec((_residual_section((At(arg.rhs.id),) + tuple(inner[0]), residual, multivariate),))
    terms = _expand(tree, residual)
    sections = tuple(_residual_section(t, residual, multivariate) for t in terms if t not in ((), _ZERO))
    if len(sections) != len(terms):
        raise FormulaError(f"an intercept has no meaning in the residual formula {residual!r}")
    if len(sections) == 1:
        sec = sections[0]
        if sec.at is not None and sec.at.levels is not None:
            raise FormulaError(f"every record needs a residual: use at(F):units without levels, or one "
                               f"at(F, levels) section per set of levels, not {residual!r}")
        return ResidualSpec(sections)
    factors = {sec.at.factor if sec.at else None for sec in sections}
    if len(factors) != 1 or None in factors or any(sec.at.levels is None for sec in sections):
        raise FormulaError(f"several residual sections must each be at(F, levels) of one factor F, as in "
                           f"'~ at(site, c(S1, S2)):ar1(col):ar1(row) + at(site, S3):id(col):ar1(row)'; "
                           f"got {residual!r}")
    return ResidualSpec(sections)
