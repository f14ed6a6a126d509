"""Model terms: the fixed formula (:class:`FixedSpec`) and the random terms (:class:`RandomTerm`)
read from expanded formula terms (:mod:`sparsereml.formula.terms`), with lme4's ``(1 | g)`` bars
and ASReml's ``and()`` overlays folded into the terms they belong to."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import FormulaError
from .parser import Bar, BinOp, Call, Formula, Name, parse
from .terms import (_ZERO, VM, And, At, Cross, Groups, Overlay, Struct, Term, Units, Var, _expand, quote_name,
                    term_label)

__all__ = ["FixedSpec", "RandomTerm"]

@dataclass(frozen=True)
class FixedSpec:
    response: str
    intercept: bool
    terms: tuple  # of Term, without the intercept
    responses: tuple = ()  # the columns of cbind(a, b, ...): a multivariate model

    @property
    def multivariate(self) -> bool:
        return bool(self.responses)


@dataclass(frozen=True)
class RandomTerm:
    """One random term: the factors whose combinations are its levels, and an optional at()."""

    factors: tuple  # of Var
    at: At | None = None
    struct: Struct | None = None
    overlays: tuple = ()  # ((factors, weight), ...): and() terms merged into this one

    @property
    def label(self) -> str:
        """The term's label, for an overlay that of its first part (ASReml's: ``Mother`` for
        ``Mother + and(Father)``)."""
        parts = ([self.at.label] if self.at else []) + ([self.struct.label] if self.struct else [])
        return ":".join(parts + [f.label for f in self.factors])

    @property
    def written(self) -> str:
        """The term as written, overlays included: ``Mother + and(Father, 0.5)``."""
        prefix = ([self.at.label] if self.at else []) + ([self.struct.label] if self.struct else [])
        out = self.label
        for factors, w in self.overlays:
            out += " + " + ":".join(prefix + [And(factors, w).label])
        return out

    def level_label(self, level: str) -> str:
        return ":".join([self.at.level_label(level)] + [f.label for f in self.factors])


def _split_bars(node, text: str) -> tuple[object | None, list[Bar]]:
    """Split ``a + (1|g) + b`` into the non-bar part and the list of bars."""
    if isinstance(node, Bar):
        return None, [node]
    if isinstance(node, BinOp) and node.op == "+":
        left, lb = _split_bars(node.left, text)
        right, rb = _split_bars(node.right, text)
        if left is None:
            return right, lb + rb
        if right is None:
            return left, lb + rb
        return BinOp("+", left, right), lb + rb
    return node, []


def _bar_terms(bar: Bar, text: str) -> list[RandomTerm]:
    lhs = _expand(bar.lhs, text, check=False)
    if lhs != [()]:
        raise FormulaError(
            f"only random intercepts (1|g) are supported in lme4 syntax; found a random slope in {text!r}")
    out = [_random_term(t, text) for t in _expand(bar.rhs, text) if t not in ((), _ZERO)]
    if any(not isinstance(t, RandomTerm) for t in out):
        raise FormulaError(f"and() belongs in the random formula (random='~ Mother + and(Father)'), not in "
                           f"(1 | ...) of {text!r}")
    return out


@dataclass(frozen=True)
class _AndPart:
    """A term holding and(): its columns, to be merged into the term written before it."""

    term: RandomTerm
    weight: float
    written: str


def _replace(term: Term, old, new: tuple) -> Term:
    out = []
    for f in term:
        out += list(new) if f is old else [f]
    return tuple(out)


def _random_term(term: Term, text: str):
    """A RandomTerm (an overlay() term with its parts), or an _AndPart for a term holding and()."""
    special = [f for f in term if isinstance(f, (And, Overlay))]
    if len(special) > 1:
        raise FormulaError(f"a random term can hold one and() or overlay(), found {term_label(term)!r} in {text!r}")
    if special and isinstance(special[0], Overlay):
        parts = special[0].parts
        first = _plain_random_term(_replace(term, special[0], (parts[0],)), text)
        others = tuple((_plain_random_term(_replace(term, special[0], (p,)), text).factors, 1.0) for p in parts[1:])
        return RandomTerm(first.factors, first.at, first.struct, others)
    if special:
        a = special[0]
        return _AndPart(_plain_random_term(_replace(term, a, a.factors), text), a.weight, term_label(term))
    return _plain_random_term(term, text)


def _merge_and(terms: list, text: str) -> list:
    """Fold each and() term into the term written just before it (same at() and structure, as
    many columns in the same roles): ``Trial:Mother + and(Trial:Father)`` is one term."""
    out: list = []
    for t in terms:
        if not isinstance(t, _AndPart):
            out.append(t)
            continue
        if not out:
            raise FormulaError(f"{t.written} adds its columns to the random term before it, and it comes first in "
                               f"{text!r}: write it after that term, as in Mother + and(Father)")
        prev, new = out[-1], t.term
        same = (prev.at == new.at and prev.struct == new.struct and len(prev.factors) == len(new.factors)
                and all(type(a) is type(b) and (not isinstance(a, VM) or a.matrix == b.matrix)
                        for a, b in zip(prev.factors, new.factors)))
        if not same or any(isinstance(f, Units) for f in prev.factors):
            raise FormulaError(f"{t.written} must match the term before it, {prev.label!r}, in its at(), structure "
                               f"and number of columns (e.g. Trial:Mother + and(Trial:Father), "
                               f"fa(Trial, 1):Mother + fa(Trial, 1):and(Father)), in {text!r}")
        if prev.struct is not None and prev.struct.covariates is not None:
            raise FormulaError(f"{t.written}: a random regression cannot take and(), in {text!r}")
        out[-1] = RandomTerm(prev.factors, prev.at, prev.struct, prev.overlays + ((new.factors, t.weight),))
    return out


def _plain_random_term(term: Term, text: str) -> RandomTerm:
    ats = [f for f in term if isinstance(f, At)]
    structs = [f for f in term if isinstance(f, Struct)]
    if len(ats) > 1:
        raise FormulaError(f"a random term can have one at(), found {term_label(term)!r} in {text!r}")
    if len(structs) > 1:
        raise FormulaError(f"a random term can have one covariance structure, found {term_label(term)!r} "
                           f"in {text!r}")
    if structs and ats:
        raise FormulaError(f"at() and {structs[0].model}() cannot be combined in one term yet: {term_label(term)!r}")
    if any(isinstance(f, Units) for f in term) and (structs or any(isinstance(f, Var) for f in term)):
        raise FormulaError(f"'units' stands alone as a random term (or as at(F):units), not in "
                           f"{term_label(term)!r} of {text!r}")
    lins = [f for f in term if isinstance(f, Var) and f.as_covariate]
    if len(lins) > 1 or (lins and (structs or ats or len(term) < 2)):
        raise FormulaError(f"{term_label(term)!r} in {text!r}: a random term takes one covariate, lin(x), beside its "
                           f"factors (comb:lin(dr): an effect per level of comb times dr, ASReml's comb:dr); random "
                           f"slopes with their own covariance are written us(~ 1 + {quote_name(lins[0].name)}):g")
    grp = [f for f in term if isinstance(f, Groups)]
    if grp and len(term) > 1:
        raise FormulaError(f"groups() stands alone as a random term, as in ~ vm(Tree, ped) + groups(Tree, ped); found "
                           f"{term_label(term)!r} in {text!r}")
    vms = [f for f in term if isinstance(f, VM)]
    if vms and (len(vms) > 1 or ats or any(isinstance(f, (Var, Units)) for f in term)):
        raise FormulaError(f"vm() stands alone or with a covariance structure across a factor, as in "
                           f"vm(Mother, ped) or fa(Trial, 2):vm(Mother, ped); found {term_label(term)!r} in {text!r}")
    # random columns are factors anyway; C(x) is kept in the label (x may also be a fixed covariate);
    # units: one effect per record (a nugget beside a spatial residual)
    factors = tuple(f for f in term if isinstance(f, (Var, Units, VM, Cross, Groups)))
    if not factors:
        example = f"{structs[0].label}:Mother" if structs else "at(F):Block"
        raise FormulaError(f"{term_label(term)!r} in {text!r} has no factor to give levels, as in {example}")
    if structs and structs[0].factor in {f.name for f in factors}:
        raise FormulaError(f"{structs[0].factor!r} appears twice in {term_label(term)!r}")
    return RandomTerm(factors, ats[0] if ats else None, structs[0] if structs else None)


def _parse_fixed(fixed: str) -> tuple[FixedSpec, list[RandomTerm]]:
    tree = parse(fixed)
    if not isinstance(tree, Formula) or tree.lhs is None:
        raise FormulaError(f"the fixed formula needs a response and '~', as in 'dbh ~ Trial'; got {fixed!r}")
    responses: tuple = ()
    if isinstance(tree.lhs, Call) and tree.lhs.func == "cbind":
        if len(tree.lhs.args) < 2 or not all(isinstance(a, Name) for a in tree.lhs.args) or tree.lhs.kwargs:
            raise FormulaError(f"cbind() takes two or more column names, as in cbind(dbh, height) ~ trait; got {fixed!r}")
        responses = tuple(a.id for a in tree.lhs.args)
        if len(set(responses)) < len(responses):
            raise FormulaError(f"a column appears twice in cbind() in {fixed!r}")
        response = f"cbind({', '.join(responses)})"
    elif isinstance(tree.lhs, Name):
        response = tree.lhs.id
    else:
        raise FormulaError(f"the response must be one column name, or cbind(a, b, ...) for several traits; "
                           f"got {fixed!r}")
    rest, bars = _split_bars(tree.rhs, fixed)
    random = [t for b in bars for t in _bar_terms(b, fixed)]
    terms = _expand(rest, fixed) if rest is not None else [()]
    intercept = _ZERO not in terms
    # R orders fixed terms by degree: main effects, then two-way interactions, ...
    body = tuple(sorted((t for t in terms if t not in ((), _ZERO)), key=len))
    for t in body:
        if any(isinstance(f, Groups) for f in t) and len(t) > 1:
            raise FormulaError(f"groups() stands alone as a term, as in dbh ~ Trial + groups(Tree, ped); found "
                               f"{term_label(t)!r} in {fixed!r}")
        for f in t:
            if isinstance(f, Groups) and not responses:
                continue
            if isinstance(f, Groups):
                raise FormulaError(f"{f.label}: genetic groups in a model of several traits are not supported yet "
                                   f"(each trait would need its own group effects); fit the traits one at a time")
            if not isinstance(f, Var):
                raise FormulaError(f"{f.label} cannot be used in the fixed formula {fixed!r}")
    for name in responses or (response,):
        if any(f.name == name for t in body for f in t):
            raise FormulaError(f"the response {name!r} also appears on the right of {fixed!r}")
    return FixedSpec(response, intercept, body, responses), random


def _parse_random(random: str | None) -> list[RandomTerm]:
    if random is None or random.strip() in ("", "~"):
        return []
    tree = parse(random)
    if isinstance(tree, Formula):
        if tree.lhs is not None:
            raise FormulaError(f"the random formula has no response: write '~ {random.split('~', 1)[1].strip()}'")
        tree = tree.rhs
    rest, bars = _split_bars(tree, random)
    out = [t for b in bars for t in _bar_terms(b, random)]
    if rest is not None:
        terms = _expand(rest, random)
        if _ZERO in terms or () in terms:
            raise FormulaError(f"an intercept (1 or 0) has no meaning in the random formula {random!r}")
        out += _merge_and([_random_term(t, random) for t in terms], random)
    return out
