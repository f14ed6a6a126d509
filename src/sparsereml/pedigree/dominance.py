"""The dominance relationship matrix D of a pedigree, for ``vm(Tree, dom)`` terms.

Without inbreeding, d_ii = 1 and for i != j (Cockerham 1954)

    d_ij = 1/4 (a_{s_i s_j} a_{d_i d_j} + a_{s_i d_j} a_{d_i s_j}),

s and d the parents and a the additive relationships; a pair needs both parents of both known.
So d_ij depends only on the two full-sib families (unordered parent pairs): D = Delta + Z D_F Z',
with D_F the families' matrix, Z the family of each individual and Delta = diag(1 - D_F[f, f]).
When the families' parents are unrelated across families (D_F diagonal, as in a factorial or
diallel among unrelated parents) D is block diagonal, one block (1 - c) I + c 11' per family, and
its inverse and log-determinant are written down directly for any size.  Otherwise D is formed
and inverted dense, up to ``max_dense`` individuals.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import DataError, ModelError
from .pedigree import Pedigree
from .relationship import Inverse

__all__ = ["dominance", "dominance_matrix"]


def _families(ped: Pedigree, ids: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each individual's family (-1 without both parents), and the families' D_F (dense)."""
    pos = ped.index(ids)
    F = ped.inbreeding.to_numpy()[pos]
    if np.any(F > 0):
        k = int(np.flatnonzero(F > 0)[0])
        raise DataError(f"dominance(): {ids[k]!r} is inbred (F = {F[k]:.4g}); the dominance relationships "
                        f"here assume individuals that are not inbred")
    s, d = ped.sire[pos].astype(np.int64), ped.dam[pos].astype(np.int64)  # 1-based, 0 unknown
    both = (s > 0) & (d > 0)
    lo, hi = np.minimum(s, d), np.maximum(s, d)
    key = np.where(both, lo * (len(ped) + 1) + hi, -1)
    fam_keys, family = np.unique(key[both], return_inverse=True)
    fam = np.full(len(ids), -1, dtype=np.int64)
    fam[both] = family
    fs, fd = fam_keys // (len(ped) + 1), fam_keys % (len(ped) + 1)  # the families' parents (1-based)
    parents = np.unique(np.concatenate([fs, fd]))
    A = ped.A([ped.ids[p - 1] for p in parents]).to_numpy() if parents.size else np.zeros((0, 0))
    i, j = np.searchsorted(parents, fs), np.searchsorted(parents, fd)
    DF = 0.25 * (A[np.ix_(i, i)] * A[np.ix_(j, j)] + A[np.ix_(i, j)] * A[np.ix_(j, i)])
    return fam, DF, pos


def dominance_matrix(ped: Pedigree, ids=None):
    """D of ``ids`` (default every individual of the pedigree) as a dense DataFrame (small sets)."""
    import pandas as pd

    ids = list(ped.ids) if ids is None else [str(i) for i in ids]
    fam, DF, _ = _families(ped, ids)
    D = np.zeros((len(ids), len(ids)))
    inf = fam >= 0
    D[np.ix_(inf, inf)] = DF[np.ix_(fam[inf], fam[inf])]
    np.fill_diagonal(D, 1.0)
    return pd.DataFrame(D, index=ids, columns=ids)


def dominance(ped: Pedigree, ids=None, *, max_dense: int = 20_000, method: str = "auto") -> Inverse:
    """The inverse of the dominance relationship matrix D, for ``vm(x, name)`` terms.

    Parameters
    ----------
    ped : Pedigree
    ids : sequence, optional
        The individuals (default: every individual of the pedigree), e.g. the trees with records.
    max_dense : int
        The largest D formed and inverted dense (when the families' parents are related).
    method : {"auto", "families", "dense"}
        ``"families"``: the block-diagonal inverse, which needs families unrelated to each other;
        ``"dense"``: form D and invert it; ``"auto"``: the first when it applies.

    Returns
    -------
    Inverse
        ``sr.Inverse(D^-1, ids)`` with log|D|: pass it as ``matrices={"dom": ...}``.

    Raises
    ------
    DataError
        An inbred individual (the formula assumes none), naming it.
    ModelError
        Related families and more than ``max_dense`` individuals, or ``method="families"``
        with related families.
    """
    if not isinstance(ped, Pedigree):
        raise ModelError(f"dominance() takes a Pedigree, got {type(ped).__name__}")
    if method not in ("auto", "families", "dense"):
        raise ModelError(f"dominance(method={method!r}): give 'auto', 'families' or 'dense'")
    ids = list(ped.ids) if ids is None else [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        raise ModelError("dominance(): ids are listed more than once")
    fam, DF, _ = _families(ped, ids)
    related = DF.shape[0] > 1 and bool(np.any(DF[~np.eye(DF.shape[0], dtype=bool)] != 0))
    if method == "families" and related:
        raise ModelError("dominance(method='families'): parents of different families are related, so D is not "
                         "block diagonal; use method='dense' (or 'auto')")
    if method == "dense" or related:
        if len(ids) > max_dense:
            raise ModelError(f"dominance(): parents of different families are related, so D is formed dense, and "
                             f"{len(ids):,} individuals exceed max_dense={max_dense:,}; pass a larger max_dense "
                             f"(memory 8 n^2 bytes) or ids= the individuals with records")
        from ..structures.covariance import inverse_logdet

        D = dominance_matrix(ped, ids).to_numpy()
        try:
            Dinv, logdet = inverse_logdet(D)
        except np.linalg.LinAlgError:
            raise ModelError("dominance(): D is not positive definite") from None
        return Inverse(sp.csc_matrix(Dinv), ids, logdet=-logdet)
    return _family_blocks(fam, np.diag(DF).copy(), ids)


def _family_blocks(fam: np.ndarray, c: np.ndarray, ids: list) -> Inverse:
    """Block-diagonal D^-1: per family of n members ((1 - c) I + c 11')^-1 =
    I / (1 - c) - c / ((1 - c)(1 - c + n c)) 11'; 1 for an individual outside families."""
    n = np.bincount(fam[fam >= 0], minlength=c.size).astype(float)
    delta = 1.0 - c
    rows, cols, vals = [np.flatnonzero(fam < 0)], [np.flatnonzero(fam < 0)], [np.ones(int((fam < 0).sum()))]
    order = np.argsort(fam, kind="stable")
    starts = np.searchsorted(fam[order], np.arange(c.size + 1))
    for f in range(c.size):
        members = order[starts[f]:starts[f + 1]]
        off = -c[f] / (delta[f] * (delta[f] + n[f] * c[f]))
        r, q = np.meshgrid(members, members, indexing="ij")
        rows.append(r.ravel())
        cols.append(q.ravel())
        vals.append(np.full(r.size, off) + np.eye(members.size).ravel() / delta[f])
    M = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(ids),) * 2)
    logdet = float(np.sum((n - 1) * np.log(delta) + np.log(delta + n * c)))
    return Inverse(M, ids, logdet=-logdet)
