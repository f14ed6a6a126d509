"""Model specification: the three formulas of a model read together."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import FormulaError
from .residual import ResidualSpec, parse_residual
from .model_terms import FixedSpec, _parse_fixed, _parse_random
from .terms import VM, Cross, Groups, Var

__all__ = ["ModelSpec", "model_spec"]


@dataclass(frozen=True)
class ModelSpec:
    """Everything the formulas say, before any data is seen."""

    fixed: FixedSpec
    random: tuple  # of RandomTerm
    residual: ResidualSpec
    formulas: dict = field(default_factory=dict, compare=False)

    def variables(self) -> list[str]:
        """Every data column the model uses, response first, in order of appearance."""
        names = [self.fixed.response]  # cbind(a, b): data.py stacks the traits into this one column
        for t in self.fixed.terms:
            names += [f.name for f in t]
        return list(dict.fromkeys(names + self.random_variables() + self.residual_variables()))

    def random_variables(self) -> list[str]:
        """The data columns the random terms use."""
        names = []
        for r in self.random:
            names += [r.at.factor] if r.at else []
            if r.struct is not None:
                names += [c for c in r.struct.covariates if c != "1"] if r.struct.covariates is not None \
                    else [r.struct.factor]
            names += [f.name for f in r.factors if isinstance(f, (Var, VM, Groups))]
            names += [c for f in r.factors if isinstance(f, Cross) for c in (f.first, f.second)]
            names += [f.name for factors, _ in r.overlays for f in factors]
        return list(dict.fromkeys(names))

    def overlay_variables(self) -> list[str]:
        """Columns that only and()/overlay() parts use (beyond a term's first part): a missing
        value, 0 or "0" there means no such parent (open pollination), not a missing datum."""
        own = {f.name for r in self.random for f in r.factors if isinstance(f, (Var, VM, Groups))}
        own |= {f.first for r in self.random for f in r.factors if isinstance(f, Cross)}
        own |= {r.at.factor for r in self.random if r.at} | {r.struct.factor for r in self.random if r.struct}
        own |= {f.name for t in self.fixed.terms for f in t} | set(self.residual_variables())
        extra = [f.name for r in self.random for factors, _ in r.overlays for f in factors]
        extra += [f.second for r in self.random for f in r.factors if isinstance(f, Cross)]
        return [c for c in dict.fromkeys(extra) if c not in own]

    def residual_variables(self) -> list[str]:
        """The data columns the residual formula uses."""
        names = [self.residual.at.factor] if self.residual.at else []
        for sec in self.residual.sections:
            names += [d.column for d in sec.dims]
        return list(dict.fromkeys(names))


def model_spec(fixed: str, random: str | None = None, residual: str | None = None) -> ModelSpec:
    """Read the three formulas of a model.

    Parameters
    ----------
    fixed : str
        Response and fixed effects, e.g. ``"dbh ~ Trial"``; may carry lme4 random
        intercepts, e.g. ``"dbh ~ Trial + (1|Trial:Block) + (1|Mother)"``.  Several traits:
        ``"cbind(dbh, height) ~ trait + trait:Trial"``; the data are then stacked with one
        record per tree and trait, a factor ``trait`` and ``units`` naming the original row.
    random : str, optional
        Random terms, e.g. ``"~ at(Trial):Block + Mother + Trial:Mother"``.
    residual : str, optional
        ``"~ units"`` (default), ``"~ at(F):units"`` (one variance per level of F), a grid
        ``"~ ar1(Row):ar1(Col)"`` / ``"~ id(Col):ar1(Row)"`` / ``"~ tree:us(dir)"``, each also
        per level of F (``"~ at(Trial):ar1(Row):ar1(Col)"`` or ``dsum(~ ... | F)``), or
        ``at(F, levels)`` sections with different structures joined by ``+``.

    Returns
    -------
    ModelSpec
    """
    fx, bar_random = _parse_fixed(fixed)
    terms = bar_random + _parse_random(random)
    seen: dict = {}
    for t in terms:
        key = (frozenset(f.label for f in t.factors), t.at.factor if t.at else None, t.struct.factor if t.struct else None)
        if key in seen:
            raise FormulaError(f"random term {t.label!r} is given twice")
        seen[key] = t
    fixed_keys = {frozenset(f.name for f in t) for t in fx.terms
                  if not any(f.as_covariate or isinstance(f, Groups) for f in t)}  # groups(): design/groups.py
    for t in terms:
        if t.at is None and t.struct is None and not any(getattr(f, "as_factor", True) for f in t.factors) \
                and frozenset(f.name for f in t.factors) in fixed_keys:
            raise FormulaError(f"{t.label!r} is both a fixed and a random term")
    res = parse_residual(residual, fx.multivariate)
    spec = ModelSpec(fx, tuple(terms), res, {"fixed": fixed, "random": random, "residual": residual})
    for name in fx.responses or (fx.response,):
        for where, used in (("random", spec.random_variables()), ("residual", spec.residual_variables())):
            if name in used:
                text = spec.formulas[where] or fixed  # random terms may come from (1|g) in the fixed formula
                raise FormulaError(f"the response {name!r} also appears among the {where} terms of {text!r}; a "
                                   f"column cannot be both the response and a predictor")
    return spec
