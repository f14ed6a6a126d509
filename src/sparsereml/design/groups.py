"""Genetic groups as model terms: ``groups(Tree, ped)`` beside ``vm(Tree, ped)``.

The model is y = X b + Z (Q g + a), a ~ N(0, A s2_a), Q each individual's fractions of genes
from the pedigree's groups (:func:`~sparsereml.pedigree.groups.group_contributions`).  Written
in the fixed formula, the columns Z Q join X (fixed groups: an ordinary REML likelihood, no flat
prior and so no bogus log-determinant); written in the random formula, Z Q is a random term with
g ~ N(0, I s2_g), its own variance.  Both are the same likelihood as ASReml's groups inside A*^-1
(Quaas 1988), whose unknowns are u = Q g + a and g; here the unknowns are a and g, and
:func:`sparsereml.genetics.breeding_values` reports a, Q g and Q g + a.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import AliasWarning, ModelError, warn_user
from ..formula.terms import VM, Groups

__all__ = ["group_rows", "fixed_group_columns", "random_group_block", "check_groups", "groups_of"]


def _pedigree(term: Groups, matrices: dict | None):
    """The pedigree named in ``groups(id, name)``, refused unless it has groups."""
    from ..pedigree.pedigree import Pedigree

    matrices = matrices or {}
    if term.matrix not in matrices:
        given = ", ".join(map(repr, matrices)) or "none"
        raise ModelError(f"{term.label}: no pedigree named {term.matrix!r} was given (given: {given}); pass "
                         f"fit(..., matrices={{{term.matrix!r}: ped}})")
    ped = matrices[term.matrix]
    if not isinstance(ped, Pedigree) or not ped.groups:
        what = "a pedigree without genetic groups" if isinstance(ped, Pedigree) else type(ped).__name__
        raise ModelError(f"{term.label}: {term.matrix!r} is {what}; groups() needs sr.Pedigree(..., "
                         f"groups=[...]) with the group names written for unknown parents")
    return ped


def group_rows(term: Groups, columns: dict, matrices: dict | None) -> tuple[np.ndarray, list]:
    """(records x groups) Q rows of each record's individual, and the group names.  Ids matched
    as vm() matches them; individuals added as founders (``add_missing``) have no group (a row
    of zeros).  A group none of whose descendants has a record is refused: its effect would
    have no data."""
    from ..pedigree.groups import group_fractions
    from ..pedigree.relationship import as_relationship

    ped = _pedigree(term, matrices)
    rel = as_relationship(ped, term.matrix)
    codes, rel = rel.codes(columns[term.column], term.label, add_missing=ped.add_missing)
    rows = group_fractions(ped, rel.ids)[codes]
    empty = [g for g, used in zip(ped.groups, (rows > 0).any(axis=0)) if not used]
    if empty:
        raise ModelError(f"{term.label}: group {empty[0]!r} has no descendant among the records, so its effect "
                         f"has no data; drop it from the Pedigree's groups (write its founders' parents as unknown, "
                         f"0) or add records of its descendants")
    return rows, list(ped.groups)


def fixed_group_columns(term: Groups, columns: dict, n: int, matrices: dict | None, intercept: bool):
    """Rows, columns, values and names of the fixed group columns Z Q.  When every record's genes
    all come from the groups (Q's rows sum to 1) the groups add up to the intercept: the first
    group is then the base, its column left out as a factor's first level is, and said."""
    rows, names = group_rows(term, columns, matrices)
    if n and intercept and np.allclose(rows.sum(axis=1), 1.0, atol=1e-12):
        warn_user(f"{term.label}: every record's genes come from the groups, so with the intercept the groups are "
                  f"estimated as differences from the first, {names[0]!r} (its effect 0); the total genetic values "
                  f"Q g + a are relative to it as well", AliasWarning)
        rows, names = rows[:, 1:], names[1:]
    r, c = np.nonzero(rows)
    return r, c, rows[r, c], [f"{term.label}_{g}" for g in names]


def random_group_block(term, factor: Groups, columns: dict, matrices: dict | None) -> object:
    """Random groups, g ~ N(0, I s2_g), as a :class:`~sparsereml.design.random.RandomBlock`: each
    record has one entry per group it has genes from, the fraction as the entry's value (as an
    overlay's weights)."""
    from .random import ColumnBlock, RandomBlock

    rows, names = group_rows(factor, columns, matrices)
    if len(names) < 2:
        raise ModelError(f"{term.label}: one group only; its variance cannot be estimated: fit it in the fixed "
                         f"formula instead")
    k = rows.shape[1]
    codes = np.where(rows > 0, np.arange(k)[None, :], -1).T  # groups in increasing order, as W needs
    return RandomBlock(term, np.ascontiguousarray(codes, dtype=np.int64), tuple(names),
                       [ColumnBlock(term.label, 0, k)], values=np.ascontiguousarray(rows.T))  # Q >= 0: 0 off


def groups_of(spec) -> list[tuple[Groups, str]]:
    """Every groups() term of the model: (Groups, "fixed" or "random")."""
    out = [(f, "fixed") for t in spec.fixed.terms for f in t if isinstance(f, Groups)]
    return out + [(f, "random") for r in spec.random for f in r.factors if isinstance(f, Groups)]


def check_groups(spec, matrices: dict | None) -> None:
    """Refuse what would be ambiguous or silently wrong: a vm() term on a pedigree with groups
    and no groups() term saying how to fit them, groups() without its vm() term (or with a
    structured one), and the same groups fitted twice."""
    from ..pedigree.pedigree import Pedigree

    matrices = matrices or {}
    fitted = groups_of(spec)
    keys = [(f.column, f.matrix) for f, _ in fitted]
    if len(set(keys)) < len(keys):
        dup = next(f for f, _ in fitted if keys.count((f.column, f.matrix)) > 1)
        raise ModelError(f"{dup.label} is written twice: genetic groups are fitted either fixed (in the fixed "
                         f"formula) or random (in the random formula), not both")
    vms = {}
    for r in spec.random:
        for f in r.factors:
            if isinstance(f, VM):
                vms.setdefault((f.column, f.matrix), r)
    for f, _ in fitted:
        r = vms.get((f.column, f.matrix))
        if r is None:
            raise ModelError(f"{f.label} goes with the additive term it splits, vm({f.column}, {f.matrix}), in the "
                             f"random formula: the model is u = Q g + a with a ~ N(0, A s2_a)")
        if r.struct is not None or r.at is not None or r.overlays:
            raise ModelError(f"{f.label} with a structured, at() or and() term {r.written!r} is not supported yet; "
                             f"genetic groups go with a plain vm({f.column}, {f.matrix})")
    for (col, name), r in vms.items():
        ped = matrices.get(name)
        if isinstance(ped, Pedigree) and ped.groups and (col, name) not in keys:
            shown = ", ".join(map(repr, ped.groups[:5])) + (" ..." if len(ped.groups) > 5 else "")
            g = Groups(col, name).label
            raise ModelError(f"{r.label}: pedigree {name!r} has genetic groups ({shown}); say how to fit them: "
                             f"{g} in the fixed formula (fixed group effects) or in the random formula (random, "
                             f"with their own variance); or pass {name}.without_groups() to treat the groups' "
                             f"founders as plain unknown parents")


def fixed_group_block(term: tuple, columns: dict, n: int, matrices: dict | None,
                      intercept: bool) -> tuple[sp.csc_matrix, list]:
    """The CSC block of a fixed groups() term and its column names (see :func:`fixed_group_columns`)."""
    r, c, v, names = fixed_group_columns(term[0], columns, n, matrices, intercept)
    return sp.csc_matrix((v, (r, c)), shape=(n, len(names))), names
