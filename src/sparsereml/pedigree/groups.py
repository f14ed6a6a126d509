"""Genetic groups (unknown parent groups) of a pedigree: each individual's expected fraction of
genes from each group, Q, and A^-1 with group equations by Quaas' (1988) rules.

The model is y = X b + Z (Q g + a), a ~ N(0, A s2).  As model terms, ``groups(Tree, ped)``
beside ``vm(Tree, ped)`` fits g fixed (in the fixed formula) or random with its own variance
(in the random one): see :mod:`sparsereml.design.groups`.  ASReml's form has the group
equations inside A*^-1 = [[A^-1, -A^-1 Q], [-Q'A^-1, Q'A^-1 Q]], which
:func:`ainverse_with_groups` builds directly, sparse, by Quaas' rules; with a constant on the
groups' diagonal it is ASReml's random groups with the additive variance, offered as
:func:`groups_inverse` for a ``vm()`` term.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import ModelError
from .pedigree import Pedigree

__all__ = ["group_contributions", "ainverse_with_groups", "groups_inverse"]


def _check(ped: Pedigree) -> None:
    if not isinstance(ped, Pedigree) or not ped.groups:
        raise ModelError("genetic groups need a Pedigree made with groups=[...] (the names written for unknown "
                         "parents of each origin)")


def group_contributions(ped: Pedigree, ids=None) -> pd.DataFrame:
    """Q: for each individual the expected fraction of its genes from each group (rows ``ids``,
    default all; columns the groups), q_i = (q_sire + q_dam) / 2 with a group parent's q its unit
    vector and an unknown parent without a group contributing nothing."""
    from scipy.sparse.linalg import spsolve_triangular

    _check(ped)
    n, g = len(ped), len(ped.groups)
    # (I - P) Q = B, P half of each known parent, B half of each group parent: one sparse
    # triangular solve (parents precede offspring), not a loop over individuals
    r = np.arange(n)
    rows, cols = [r], [r]
    for par in (ped.sire, ped.dam):
        rows.append(r[par > 0])
        cols.append(par[par > 0] - 1)
    vals = np.r_[np.ones(n), np.full(sum(x.size for x in rows[1:]), -0.5)]
    M = sp.csr_matrix((vals, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    B = np.zeros((n, g))
    for grp in (ped.sire_group, ped.dam_group):
        np.add.at(B, (r[grp >= 0], grp[grp >= 0]), 0.5)
    Q = spsolve_triangular(M, B, lower=True) if n else B
    out = pd.DataFrame(Q.reshape(n, g), index=pd.Index(ped.ids, name="id"), columns=ped.groups)
    return out if ids is None else out.loc[[str(i) for i in ids]]


def group_fractions(ped: Pedigree, ids) -> np.ndarray:
    """Q's rows (:func:`group_contributions`) for ``ids`` in their order, as an array: a
    relationship's ids, where a founder added for an id the pedigree does not hold has no group
    (a row of zeros)."""
    return group_contributions(ped).reindex([str(i) for i in ids]).fillna(0.0).to_numpy()


def ainverse_with_groups(ped: Pedigree, offset: float = 0.0) -> sp.csc_matrix:
    """A*^-1 of size (n + groups): A^-1 by Henderson's rules with each unknown parent's group in
    its place (Quaas 1988); rows and columns ``ped.ids`` then ``ped.groups``.  The groups count as
    unknown parents for the Mendelian variances, so A^-1's own kernel serves, given the group's
    code (n + 1 + k) where a parent is a group.  ``offset`` is added to the groups' diagonal
    (ASReml's ``!Goffset``): with offset o > 0 it is the precision of (u, g), u = Q g + a,
    g ~ N(0, I s2_a / o), times s2_a."""
    from . import _kernels

    _check(ped)
    n, m = len(ped), len(ped) + len(ped.groups)
    s = np.where((ped.sire == 0) & (ped.sire_group >= 0), n + 1 + ped.sire_group, ped.sire)
    d = np.where((ped.dam == 0) & (ped.dam_group >= 0), n + 1 + ped.dam_group, ped.dam)
    r, c, v = _kernels.ainverse_triplets(np.concatenate([[0], s]).astype(np.int64),
                                         np.concatenate([[0], d]).astype(np.int64),
                                         np.concatenate([[0.0], ped.mendelian_variances]))
    low = sp.csc_matrix((v, (r, c)), shape=(m, m))
    low.sum_duplicates()
    out = (low + sp.tril(low, -1, format="csc").T).tocsc()
    if offset:
        out = (out + sp.diags(np.r_[np.zeros(n), np.full(len(ped.groups), float(offset))])).tocsc()
    return out


def groups_inverse(ped: Pedigree, offset: float = 1.0):
    """Random groups with the additive variance (ASReml's convention): an ``sr.Inverse`` of
    size individuals + groups for ``vm(Tree, name)``, whose effects are then the total genetic
    values u = Q g + a of the individuals and g of the groups, g ~ N(0, I s2_a / offset) (offset
    1: the groups' variance is the additive variance).  log|K^-1| = log|A^-1| + groups x log(offset)
    (the Schur complement of A^-1 in the matrix is offset I)."""
    from .relationship import Inverse

    _check(ped)
    if not offset > 0:
        raise ModelError(f"groups_inverse: offset must be positive (the ratio s2_a / s2_g), got {offset!r}; for "
                         f"fixed groups write groups(Tree, ped) in the fixed formula")
    M = ainverse_with_groups(ped, offset)
    return Inverse(M, list(ped.ids) + list(ped.groups), logdet=-ped.logdet() + len(ped.groups) * np.log(offset))

