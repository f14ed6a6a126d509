"""Meaning layer: expand formula syntax trees into lists of model terms.

A *term* is a tuple of *factors* (:class:`Var`, :class:`At`, :class:`Units`).  R's
rules apply: ``a*b`` is ``a + b + a:b``, ``a/b`` is ``a + a:b``, ``-1`` or ``0``
removes the intercept, ``(a+b)^2`` gives all products up to order two.  Functions in a
formula are looked up by name in :mod:`sparsereml.registry`: the specials (``C``, ``lin``,
``at``, ``vm``, ``id``, ...) are registered below with :func:`~sparsereml.registry.register_special`,
and every registered covariance model (``us``, ``fa``, ``exp``, ...) is a function taking a factor
and the model's ``formula_args``.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from .. import registry
from ..errors import FormulaError
from ..registry import register_keyword, register_special
from .parser import Bar, BinOp, Call, Formula, Name, Neg, Number, String

__all__ = ["Var", "At", "Units", "VM", "Groups", "Struct", "And", "Overlay", "Cross", "Term", "term_label", "quote_name",
           "TRAIT", "RECORD"]

_IDENT = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


def quote_name(name: str) -> str:
    """Quote a column name with backticks when it is not a plain identifier."""
    return name if _IDENT.match(name) else f"`{name}`"


@dataclass(frozen=True)
class Var:
    """A data column.  ``as_factor`` is set by ``C(x)``, ``as_covariate`` by ``lin(x)`` (a
    numeric column used as a covariate on purpose, as ASReml's ``lin()``)."""

    name: str
    as_factor: bool = False
    as_covariate: bool = False

    @property
    def label(self) -> str:
        q = quote_name(self.name)
        return f"C({q})" if self.as_factor else f"lin({q})" if self.as_covariate else q


@dataclass(frozen=True)
class At:
    """``at(F)`` or ``at(F, l1, l2, ...)``: a separate variance per level of F."""

    factor: str
    levels: tuple | None = None

    @property
    def label(self) -> str:
        if self.levels is None:
            return f"at({quote_name(self.factor)})"
        lv = ", ".join(repr(x) if isinstance(x, str) else _num(x) for x in self.levels)
        return f"at({quote_name(self.factor)}, {lv})"

    def level_label(self, level: str) -> str:
        return f"at({quote_name(self.factor)}, {level})"


@dataclass(frozen=True)
class Units:
    """The ``units`` keyword: one level per record."""

    @property
    def label(self) -> str:
        return "units"


@dataclass(frozen=True)
class Struct:
    """A covariance model across the levels of a factor: ``us(Trial)``, ``fa(Trial, 2)``, ...;
    or across the coefficients of a random regression: ``us(~ 1 + x)`` (``covariates`` holds
    the regression's columns, ``"1"`` for the intercept, and ``factor`` its written form)."""

    model: str  # the covariance model's registered name
    factor: str
    args: tuple = ()
    covariates: tuple | None = None

    @property
    def label(self) -> str:
        extra = "".join(f", {_num(a)}" for a in self.args)
        name = self.factor if self.covariates is not None else quote_name(self.factor)
        return f"{self.model}({name}{extra})"

    @property
    def per_level(self) -> bool:
        """One variance per level of the factor (diag): coded as at(F) is."""
        return registry.cov_model(self.model).per_level


@dataclass(frozen=True)
class VM:
    """``vm(id, name)``: effects of ``id`` related by the matrix (pedigree, K or K^-1) given to
    fit() as ``matrices={name: ...}``."""

    column: str
    matrix: str

    @property
    def name(self) -> str:
        return self.column

    @property
    def label(self) -> str:
        return f"vm({quote_name(self.column)}, {self.matrix})"


@dataclass(frozen=True)
class Groups:
    """``groups(id, name)``: the genetic groups of the pedigree given as ``matrices={name: ped}``,
    each record's entries its individual's fractions of genes from each group (the rows of Q).
    Fixed groups in the fixed formula, random groups (their own variance) in the random one;
    either goes with ``vm(id, name)``, the deviations a of u = Q g + a."""

    column: str
    matrix: str
    as_factor = False  # read by the fixed formula's checks: the term is its own kind of column
    as_covariate = False

    @property
    def name(self) -> str:
        return self.column

    @property
    def label(self) -> str:
        return f"groups({quote_name(self.column)}, {self.matrix})"


@dataclass(frozen=True)
class And:
    """``and(X)`` or ``and(X, w)`` (ASReml): X's incidence, times w, added to the random term
    written just before it, on one shared set of levels (``Mother + and(Father)``: one effect per
    parent whichever column names it)."""

    factors: tuple  # of Var or VM
    weight: float = 1.0

    @property
    def label(self) -> str:
        inner = ":".join(f.label for f in self.factors)
        return f"and({inner})" if self.weight == 1 else f"and({inner}, {_num(self.weight)})"


@dataclass(frozen=True)
class Overlay:
    """``overlay(A, B, ...)`` (sommer's): one term whose levels are those of A, B, ... together;
    a record has an effect for each of its columns."""

    parts: tuple  # of Var or VM

    @property
    def label(self) -> str:
        return f"overlay({', '.join(p.label for p in self.parts)})"


@dataclass(frozen=True)
class Cross:
    """``sca(Mother, Father)``: the unordered cross of two parent columns (A x B and B x A one
    level), for specific combining ability; a record without a second parent (missing, 0 or "0")
    has no such effect."""

    first: str
    second: str

    @property
    def name(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"sca({quote_name(self.first)}, {quote_name(self.second)})"


_ZERO = "__no_intercept__"  # sentinel produced by 0 and -1
Term = tuple


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def term_label(term: Term) -> str:
    """The label of a term as written, e.g. ``Trial:Block`` or ``(Intercept)``."""
    return ":".join(f.label for f in term) if term else "(Intercept)"


def _key(term) -> frozenset | str:
    return term if term == _ZERO else frozenset(term)


def _product(a: Term, b: Term) -> Term:
    return tuple(a) + tuple(f for f in b if f not in a)


def _union(left: list, right: list, *, check: bool, text: str) -> list:
    out = list(left)
    keys = {_key(t) for t in out}
    for t in right:
        k = _key(t)
        if k in keys:
            if check and t != _ZERO and t != ():
                raise FormulaError(f"term {term_label(t)!r} appears more than once in {text!r}")
            continue
        keys.add(k)
        out.append(t)
    return out


def _level_args(node, func: str, text: str) -> list:
    if isinstance(node, String):
        return [node.value]
    if isinstance(node, Number):
        return [int(node.value) if node.value.is_integer() else node.value]
    if isinstance(node, Name):
        return [node.id]
    if isinstance(node, Call) and node.func == "c":
        return [v for a in node.args for v in _level_args(a, func, text)]
    raise FormulaError(f"levels in {func}() must be names, numbers or strings in {text!r}")


@register_keyword("units")
def _units_keyword(text: str) -> list:
    """``units``: one level per record."""
    return [(Units(),)]


@register_special("C", "factor", "as.factor")
def _factor_call(node: Call, text: str) -> list:
    f = node.func
    if len(node.args) != 1 or not isinstance(node.args[0], Name) or node.kwargs:
        raise FormulaError(f"{f}() takes one column name, in {text!r}")
    return [(Var(node.args[0].id, as_factor=True),)]


@register_special("lin")
def _lin_call(node: Call, text: str) -> list:
    if len(node.args) != 1 or not isinstance(node.args[0], Name) or node.kwargs:
        raise FormulaError(f"lin() takes one numeric column name, in {text!r}")
    return [(Var(node.args[0].id, as_covariate=True),)]


@register_special("at")
def _at_call(node: Call, text: str) -> list:
    if not node.args or not isinstance(node.args[0], Name) or node.kwargs:
        raise FormulaError(f"at() needs a factor name first, as in at(Trial) or at(Trial, 3), in {text!r}")
    levels = [v for a in node.args[1:] for v in _level_args(a, node.func, text)]
    return [(At(node.args[0].id, tuple(levels) if levels else None),)]


@register_special("vm")
def _vm_call(node: Call, text: str) -> list:
    if len(node.args) != 2 or not all(isinstance(a, Name) for a in node.args) or node.kwargs:
        raise FormulaError(f"vm() takes the id column and the name of its relationship matrix, as in "
                           f"vm(Mother, ped) with fit(..., matrices={{'ped': ped}}); in {text!r}")
    return [(VM(node.args[0].id, node.args[1].id),)]


@register_special("groups")
def _groups_call(node: Call, text: str) -> list:
    if len(node.args) != 2 or not all(isinstance(a, Name) for a in node.args) or node.kwargs:
        raise FormulaError(f"groups() takes the id column and the name of its pedigree, as in groups(Tree, ped) "
                           f"beside vm(Tree, ped) with fit(..., matrices={{'ped': ped}}); in {text!r}")
    return [(Groups(node.args[0].id, node.args[1].id),)]


def _overlay_factors(node, func: str, text: str) -> tuple:
    """The columns of one part of and() or overlay(): a column, vm(id, name) or an interaction a:b."""
    terms = _expand(node, text, check=False)
    if len(terms) != 1 or terms[0] in ((), _ZERO) or not all(
            isinstance(f, (Var, VM)) and not getattr(f, "as_covariate", False) for f in terms[0]):
        raise FormulaError(f"{func}() takes columns (Father, Trial:Father) or vm(Father, ped), in {text!r}")
    return terms[0]


@register_special("and")
def _and_call(node: Call, text: str) -> list:
    if not 1 <= len(node.args) <= 2 or node.kwargs:
        raise FormulaError(f"and() takes a column and an optional weight, as in Mother + and(Father) or "
                           f"and(Father, 0.5), in {text!r}")
    weight = 1.0
    if len(node.args) == 2:
        w = node.args[1]
        if not isinstance(w, Number) or w.value == 0:
            raise FormulaError(f"the weight of and() must be a non-zero number, as in and(Father, 0.5), in {text!r}")
        weight = float(w.value)
    return [(And(_overlay_factors(node.args[0], "and", text), weight),)]


@register_special("sca")
def _sca_call(node: Call, text: str) -> list:
    if len(node.args) != 2 or not all(isinstance(a, Name) for a in node.args) or node.kwargs:
        raise FormulaError(f"sca() takes the two parent columns, as in sca(Mother, Father), in {text!r}")
    a, b = node.args[0].id, node.args[1].id
    if a == b:
        raise FormulaError(f"sca() needs two different parent columns, got sca({a}, {b}) in {text!r}")
    return [(Cross(a, b),)]


@register_special("overlay")
def _overlay_call(node: Call, text: str) -> list:
    if len(node.args) < 2 or node.kwargs:
        raise FormulaError(f"overlay() takes two or more columns, as in overlay(Mother, Father), in {text!r}")
    parts = []
    for a in node.args:
        f = _overlay_factors(a, "overlay", text)
        if len(f) != 1:
            raise FormulaError(f"overlay() takes single columns; write Trial:overlay(Mother, Father) for an "
                               f"interaction, in {text!r}")
        parts.append(f[0])
    return [(Overlay(tuple(parts)),)]


@register_special("idv", "id")
def _id_call(node: Call, text: str) -> list | None:
    """id(F) and idv(F): F itself (independent levels); None (not handled) with other arguments."""
    return _expand(node.args[0], text, check=False) if len(node.args) == 1 else None


def _struct_call(node: Call, text: str) -> list:
    """A covariance model across a factor, ``us(Trial)``, ``fa(Trial, 2)``, or across the
    coefficients of a random regression, ``us(~ 1 + x)``."""
    f = node.func
    model = registry.cov_model(f)
    if node.args and isinstance(node.args[0], Formula):
        return [(_regression_struct(node, text),)]
    if not node.args or not isinstance(node.args[0], Name) or node.kwargs:
        raise FormulaError(f"{f}() needs a factor name first, as in {f}(Trial), in {text!r}")
    extra = []
    for a in node.args[1:]:
        if not (isinstance(a, Number) and a.value.is_integer() and a.value >= 1):
            what = model.formula_args[0] if model.formula_args else "the number of factors"
            raise FormulaError(f"{f}(): {what} must be a whole number >= 1, in {text!r}")
        extra.append(int(a.value))
    if model.formula_args and len(extra) != len(model.formula_args):
        raise FormulaError(f"{f}() needs {model.formula_usage}, in {text!r}")
    if not model.formula_args and extra:
        raise FormulaError(f"{f}() takes only a factor name, in {text!r}")
    return [(Struct(f, node.args[0].id, tuple(extra)),)]


def _expand_call(node: Call, text: str) -> list:
    """Expand a function call by its registered handler: a special, or a covariance model."""
    f = node.func
    handler = registry.special(f)
    out = handler(node, text) if handler is not None else None
    if out is not None:
        return out
    if registry.is_cov_model(f):
        return _struct_call(node, text)
    names = [n for n in registry.special_names() if n not in ("factor", "as.factor")]
    known = ", ".join(f"{n}()" for n in names[:3] + ["dsum"] + names[3:] + list(registry.cov_model_names()))
    raise FormulaError(f"unknown function {f}() in {text!r} (known here: {known})")


def _regression_struct(node: Call, text: str) -> Struct:
    """``us(~ 1 + x)``: a covariance model across the coefficients of a random regression."""
    form = node.args[0]
    if form.lhs is not None or len(node.args) > 1 or node.kwargs or not registry.cov_model(node.func).regression:
        raise FormulaError(f"a random regression is us(~ 1 + x) or diag(~ 1 + x) (R formula rules: ~ x "
                           f"includes the intercept, ~ 0 + x does not), in {text!r}")
    terms = _expand(form.rhs, text)
    covs = ["1"] if () in terms or _ZERO not in terms else []
    for t in terms:
        if t in ((), _ZERO):
            continue
        if len(t) != 1 or not isinstance(t[0], Var) or t[0].as_factor:
            raise FormulaError(f"the regression in {node.func}(~ ...) takes numeric columns only, found "
                               f"{term_label(t)!r} in {text!r}")
        covs.append(t[0].name)
    if len(covs) < 2:
        raise FormulaError(f"{node.func}(~ ...) needs at least two coefficients (e.g. ~ 1 + x) in {text!r}")
    written = " + ".join(c if c == "1" else quote_name(c) for c in covs)
    if "1" not in covs:
        written = "0 + " + written
    return Struct(node.func, f"~{written}", (), tuple(covs))


def _expand(node, text: str, *, check: bool = True) -> list:
    """Expand a syntax tree into an ordered list of terms (``()`` is the intercept)."""
    if isinstance(node, Name):
        handler = registry.keyword(node.id)
        return handler(text) if handler is not None else [(Var(node.id),)]
    if isinstance(node, Number):
        if node.value == 1:
            return [()]
        if node.value == 0:
            return [_ZERO]
        raise FormulaError(f"the number {node.text} cannot be a term in {text!r} (only 0 and 1)")
    if isinstance(node, String):
        raise FormulaError(f"the string {node.value!r} cannot be a term in {text!r}")
    if isinstance(node, Call):
        return _expand_call(node, text)
    if isinstance(node, Neg):
        inner = _expand(node.operand, text)
        if inner == [()]:
            return [_ZERO]
        raise FormulaError(f"'-' at the start of {text!r} can only remove the intercept (-1)")
    if isinstance(node, Bar):
        raise FormulaError(f"a (... | ...) random term must stand on its own, joined by '+', in {text!r}")
    if isinstance(node, Formula):
        raise FormulaError(f"unexpected '~' inside {text!r}")
    if not isinstance(node, BinOp):  # pragma: no cover - the parser makes nothing else
        raise FormulaError(f"cannot read {text!r}")
    op = node.op
    if op == "+":
        return _union(_expand(node.left, text, check=check), _expand(node.right, text, check=check),
                      check=check, text=text)
    if op == "-":
        left = _expand(node.left, text, check=check)
        right = _expand(node.right, text, check=False)
        drop = {_key(t) for t in right}
        out = [t for t in left if _key(t) not in drop]
        if () in right:
            out.append(_ZERO)
        return out
    left = [t for t in _expand(node.left, text, check=False) if t != _ZERO]
    if op == "^":
        k = int(node.right.value)
        out: list = []
        for order in range(1, k + 1):
            for combo in itertools.combinations(left, order):
                t = ()
                for part in combo:
                    t = _product(t, part)
                out = _union(out, [t], check=False, text=text)
        return out
    right = [t for t in _expand(node.right, text, check=False) if t != _ZERO]
    products = [_product(a, b) for a in left for b in right]
    if op in (":", "%in%"):
        return _union([], products, check=False, text=text)
    if op == "*":
        return _union(_union(left, right, check=False, text=text), products, check=False, text=text)
    if op == "/":
        whole = ()
        for t in left:
            whole = _product(whole, t)
        return _union(left, [_product(whole, b) for b in right], check=False, text=text)
    raise FormulaError(f"operator {op!r} is not supported in {text!r}")  # pragma: no cover


TRAIT, RECORD = "trait", "units"  # generated columns of a multivariate model (long format)
