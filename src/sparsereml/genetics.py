"""Genetic parameters from a fitted model: functions of the variance components with
delta-method standard errors (``vpredict``), and breeding values with accuracies.

Expressions name components by their varcomp labels; labels that are not plain identifiers are
quoted with backticks, as in pandas: ``"4 * Mother / (Mother + `Trial:Mother` + units)"``.
Derivatives are exact (forward-mode dual numbers through the expression), so the standard error
is sqrt(g' V g) with V the sampling covariance of the components (inverse AI, delta method).
"""
from __future__ import annotations

import ast
import math
import re

import numpy as np
import pandas as pd

from .errors import ModelError, UnknownName

__all__ = ["vpredict", "breeding_values", "check_expressions"]

_FUNCS = {"sqrt": (math.sqrt, lambda x: 0.5 / math.sqrt(x)), "log": (math.log, lambda x: 1.0 / x),
          "exp": (math.exp, math.exp), "abs": (abs, lambda x: 1.0 if x >= 0 else -1.0)}


class _Dual:
    """A value and its gradient with respect to the components."""

    __slots__ = ("v", "g")

    def __init__(self, v: float, g: np.ndarray):
        self.v, self.g = float(v), g

    def __add__(self, o):
        return _Dual(self.v + o.v, self.g + o.g)

    def __sub__(self, o):
        return _Dual(self.v - o.v, self.g - o.g)

    def __mul__(self, o):
        return _Dual(self.v * o.v, self.g * o.v + o.g * self.v)

    def __truediv__(self, o):
        return _Dual(self.v / o.v, (self.g * o.v - o.g * self.v) / o.v**2)

    def __pow__(self, o):
        if not o.g.any():  # constant exponent
            return _Dual(self.v ** o.v, o.v * self.v ** (o.v - 1.0) * self.g)
        val = self.v ** o.v
        return _Dual(val, val * (o.g * math.log(self.v) + o.v * self.g / self.v))


def _parse(expr: str, labels: list) -> tuple[ast.Expression, dict]:
    """Replace `quoted labels` by placeholders and parse; return the tree and placeholder map."""
    names = {}

    def quote(m):
        key = f"__c{len(names)}"
        names[key] = m.group(1)
        return key

    text = re.sub(r"`([^`]+)`", quote, expr)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        hint = "; quote labels such as `Trial:Mother` with backticks" if ":" in text or "(" in text else ""
        raise ModelError(f"cannot read the expression {expr!r}: {exc.msg}{hint}") from None
    return tree, names


def _evaluate(node, values: dict, names: dict, n: int, expr: str) -> _Dual:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, values, names, n, expr)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return _Dual(node.value, np.zeros(n))
    if isinstance(node, ast.Name):
        label = names.get(node.id, node.id)
        if label not in values:
            # a GLMM without a latent residual has a placeholder in the residual's place: not offered
            shown = ", ".join(f"`{k}`" if not k.isidentifier() else k for k in values if not k.startswith("("))
            extra = (" (a negative binomial's theta is its family's dispersion, not a variance component: "
                     "m.varcomp has it with its standard error)") if label == "theta" else ""
            raise ModelError(f"{label!r} in {expr!r} is not a variance component{extra} (components: {shown}; "
                             f"quote labels that are not plain names with backticks)")
        return values[label]
    if isinstance(node, ast.BinOp):
        a, b = _evaluate(node.left, values, names, n, expr), _evaluate(node.right, values, names, n, expr)
        ops = {ast.Add: a.__add__, ast.Sub: a.__sub__, ast.Mult: a.__mul__, ast.Div: a.__truediv__,
               ast.Pow: a.__pow__}
        if type(node.op) not in ops:
            raise ModelError(f"operator {type(node.op).__name__} is not allowed in {expr!r}")
        return ops[type(node.op)](b)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        x = _evaluate(node.operand, values, names, n, expr)
        return _Dual(-x.v, -x.g) if isinstance(node.op, ast.USub) else x
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS \
            and len(node.args) == 1 and not node.keywords:
        x = _evaluate(node.args[0], values, names, n, expr)
        f, df = _FUNCS[node.func.id]
        return _Dual(f(x.v), df(x.v) * x.g)
    hint = "; quote labels such as `vm(Mother, ped)` or `Trial:Mother` with backticks" \
        if isinstance(node, (ast.Call, ast.Attribute)) else ""
    raise ModelError(f"{ast.unparse(node)!r} is not allowed in {expr!r} (numbers, components, + - * / **, "
                     f"sqrt, log, exp, abs){hint}")


def check_expressions(expressions, labels: list) -> dict:
    """Read every expression against the parameter labels of a model before it is fitted, so that
    a typo is reported before the fit, not after it.  Returns the expressions as a dict.

    Raises ModelError for an expression that cannot be read, names an unknown component or uses
    what is not allowed; a value-dependent failure (a division by zero at the estimates) can only
    show after the fit."""
    if isinstance(expressions, str):
        expressions = {expressions: expressions}
    if not isinstance(expressions, dict) or not all(isinstance(e, str) for e in expressions.values()):
        raise ModelError(f"functions must be a dict of name -> expression, e.g. {{'h2': '4 * Mother / (Mother + "
                         f"units)'}}; got {expressions!r}")
    n = len(labels)
    values = {lab: _Dual(1.0 + 0.1 * k, np.zeros(n)) for k, lab in enumerate(labels)}
    for expr in expressions.values():
        tree, names = _parse(expr, labels)
        try:
            _evaluate(tree, values, names, n, expr)
        except ModelError:  # (a ValueError too) what the expression says is wrong
            raise
        except (ZeroDivisionError, ValueError, OverflowError):
            pass  # arithmetic at made-up values says nothing of the estimates
    return dict(expressions)


def vpredict(fit, expressions) -> pd.DataFrame:
    """Estimates and delta-method standard errors of functions of the variance components.

    Parameters
    ----------
    fit : FittedModel
    expressions : dict of name -> str, or one str
        E.g. ``{"h2": "4 * Mother / (Mother + `Trial:Mother` + units)"}``.

    Returns
    -------
    DataFrame indexed by name: ``estimate``, ``std.error``.
    """
    if isinstance(expressions, str):
        expressions = {expressions: expressions}
    labels = list(fit.labels)
    V = fit.vcov_reported()  # parameters held at a bound or fixed count as known, the others not
    n = len(labels)
    values = {lab: _Dual(v, np.eye(n)[k]) for k, (lab, v) in enumerate(zip(labels, fit.theta))}
    rows = []
    for name, expr in expressions.items():
        tree, names = _parse(expr, labels)
        try:
            d = _evaluate(tree, values, names, n, expr)
        except ModelError:
            raise
        except (ZeroDivisionError, ValueError, OverflowError) as exc:
            raise ModelError(f"{name}: {expr!r} cannot be evaluated at the estimates ({exc})") from None
        rows.append((name, d.v, math.sqrt(max(float(d.g @ V @ d.g), 0.0))))
    return pd.DataFrame(rows, columns=["name", "estimate", "std.error"]).set_index("name")


def breeding_values(fit, term: str) -> pd.DataFrame:
    """BLUPs of a vm() term for every individual of its relationship (ancestors without records
    too), with PEV, standard error, reliability 1 - PEV / ((1 + F) s2) and accuracy its square
    root, s2 the term's variance (per level for a structured term such as us(trait):vm(...)).

    With genetic groups (``groups(id, ped)`` fixed or random) ``BLUP`` is a, the deviation from
    the individual's group mean, and three more columns give ``group`` = Q g (its expected value
    from the groups' effects), ``total`` = Q g + a (the total genetic value) and
    ``std.error.total``, from PEV(Q g + a) = PEV(a) + 2 Q C_ga + Q C_gg Q' (C the inverse of the
    mixed-model equations).  With fixed groups and an intercept, group and total are relative
    to the base group (the first, its effect 0)."""
    k = fit.random_terms.index(term) if term in fit.random_terms else -1
    if k < 0:
        raise UnknownName(f"{term!r} is not a random term of this model (terms: {', '.join(fit.random_terms)})")
    rb = fit.design.random[k]
    if rb.relationship is None:
        raise ModelError(f"{term!r} has no relationship matrix: breeding values are for vm() terms")
    b = fit.blups(term)
    rel = rb.relationship
    F = rel.inbreeding
    q = len(rel.ids)
    S = fit.vcov(term)["covariance"].to_numpy()
    nlev = S.shape[0]
    prior = (1.0 + np.repeat(F, nlev)) * np.tile(np.diag(S), q)
    with np.errstate(invalid="ignore"):
        rel_ = np.clip(1.0 - b["PEV"].to_numpy() / prior, 0.0, 1.0)
    out = pd.DataFrame({"BLUP": b["BLUP"].to_numpy(), "PEV": b["PEV"].to_numpy(),
                        "std.error": b["std.error"].to_numpy(), "reliability": rel_, "accuracy": np.sqrt(rel_),
                        "inbreeding": np.repeat(F, nlev)})
    if nlev == 1 and rel.pedigree is not None and rel.pedigree.groups:
        out = _with_groups(fit, k, rb, out)
    if nlev == 1:
        out.index = pd.Index(list(rel.ids), name="id")
    else:
        out.index = pd.MultiIndex.from_product([list(rel.ids), list(fit.vcov(term)["covariance"].index)],
                                               names=["id", rb.term.struct.factor])
    return out


def _with_groups(fit, k: int, rb, out: pd.DataFrame) -> pd.DataFrame:
    """``out`` (the breeding values a of vm term k) with Q g, Q g + a and the standard error of
    Q g + a added, the groups fitted fixed or random by a groups() term on the same pedigree."""
    from .design.groups import groups_of
    from .pedigree.groups import group_fractions

    vm = rb.term.factors[0]
    found = [(f, how) for f, how in groups_of(fit.spec) if (f.column, f.matrix) == (vm.column, vm.matrix)]
    if not found:  # check_groups refuses a fit like this; a model saved before groups() could have one
        return out
    f, how = found[0]
    if fit.likelihood != "REML":  # a GLMM's errors of the fixed effects are not this factor's inverse (Laplace)
        raise ModelError(f"breeding values with genetic groups ({f.label}: Q g + a) are offered for linear mixed "
                         f"models only so far; a GLMM's a is m.blups({rb.label!r}) and its groups are in m.fixed or "
                         f"m.blups({f.label!r})")
    ped, rel, design = rb.relationship.pedigree, rb.relationship, fit.design
    Q = group_fractions(ped, rel.ids)
    if how == "random":
        off = design.offsets[fit.random_terms.index(f.label)]
        pos = {g: off + j for j, g in enumerate(ped.groups)}
    else:  # a base group (left out beside the intercept) has effect 0 and no equation
        names = list(design.fixed.names)
        pos = {g: names.index(f"{f.label}_{g}") for g in ped.groups if f"{f.label}_{g}" in names}
    cols = [j for j, g in enumerate(ped.groups) if g in pos]
    P = np.array([pos[ped.groups[j]] for j in cols], dtype=np.int64)
    g_hat = np.zeros(len(ped.groups))
    g_hat[cols] = fit.solution[P]
    # the columns of C^-1 at the group equations: a few solves with the fit's factor
    E = np.zeros((design.n_columns, P.size))
    E[P, np.arange(P.size)] = 1.0
    with fit.control.threading():
        fit.problem.hold(fit.result.evaluation)
        X = np.atleast_2d(fit.problem.factor.solve(E).reshape(design.n_columns, P.size))
    off_a = design.offsets[k]
    C_ag, C_gg = X[off_a:off_a + rb.size], X[P]
    Qm = Q[:, cols]
    pev = out["PEV"].to_numpy() + 2.0 * np.sum(Qm * C_ag, axis=1) + np.einsum("ij,jk,ik->i", Qm, C_gg, Qm)
    out = out.copy()
    out["group"] = Q @ g_hat
    out["total"] = out["group"] + out["BLUP"]
    out["std.error.total"] = np.sqrt(np.clip(pev, 0.0, None))
    return out
