"""Genetic groups (unknown parent groups) of a pedigree: each individual's expected fraction of
genes from each group, Q, and A^-1 with group equations by Quaas' (1988) rules.

Groups fitted as fixed effects are the model y = X b + Z (Q g + a), a ~ N(0, A s2): the columns
Z Q join the fixed effects (``group_contributions`` gives Q by individual; merge it into the data
and write the groups as covariates, one of them aliased with the intercept).  The same model in
ASReml's form has the group equations inside A*^-1 = [[A^-1, -A^-1 Q], [-Q'A^-1, Q'A^-1 Q]],
which :func:`ainverse_with_groups` builds directly, sparse, by Quaas' rules.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import ModelError
from .pedigree import Pedigree

__all__ = ["group_contributions", "ainverse_with_groups"]


def _check(ped: Pedigree) -> None:
    if not isinstance(ped, Pedigree) or not ped.groups:
        raise ModelError("genetic groups need a Pedigree made with groups=[...] (the names written for unknown "
                         "parents of each origin)")


def group_contributions(ped: Pedigree, ids=None) -> pd.DataFrame:
    """Q: for each individual the expected fraction of its genes from each group (rows ``ids``,
    default all; columns the groups), q_i = (q_sire + q_dam) / 2 with a group parent's q its unit
    vector and an unknown parent without a group contributing nothing."""
    _check(ped)
    n, g = len(ped), len(ped.groups)
    Q = np.zeros((n + 1, g))  # row 0: unknown parent
    eye = np.eye(g)
    for i in range(n):  # parents first, so their rows are done
        s, d = ped.sire[i], ped.dam[i]
        qs = Q[s] if s else (eye[ped.sire_group[i]] if ped.sire_group[i] >= 0 else 0.0)
        qd = Q[d] if d else (eye[ped.dam_group[i]] if ped.dam_group[i] >= 0 else 0.0)
        Q[i + 1] = 0.5 * (qs + qd)
    out = pd.DataFrame(Q[1:], index=pd.Index(ped.ids, name="id"), columns=ped.groups)
    return out if ids is None else out.loc[[str(i) for i in ids]]


def ainverse_with_groups(ped: Pedigree) -> sp.csc_matrix:
    """A*^-1 of size (n + groups): A^-1 by Henderson's rules with each unknown parent's group in
    its place (Quaas 1988); rows and columns ``ped.ids`` then ``ped.groups``."""
    _check(ped)
    n = len(ped)
    delta = 1.0 / ped.mendelian_variances  # groups count as unknown parents for D
    rows, cols, vals = [], [], []
    for i in range(n):
        slots = []
        for parent, group in ((ped.sire[i], ped.sire_group[i]), (ped.dam[i], ped.dam_group[i])):
            if parent:
                slots.append(parent - 1)
            elif group >= 0:
                slots.append(n + group)
        dl = delta[i]
        rows.append(i), cols.append(i), vals.append(dl)
        for p in slots:
            rows += [i, p]
            cols += [p, i]
            vals += [-dl / 2, -dl / 2]
            for q in slots:
                rows.append(p), cols.append(q), vals.append(dl / 4)
    m = n + len(ped.groups)
    M = sp.csc_matrix((vals, (rows, cols)), shape=(m, m))
    M.sum_duplicates()
    return M
