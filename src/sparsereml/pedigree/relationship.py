"""Relationship matrices for ``vm(id, name)`` terms: what the design and structure stages need
of K (G = sigma2 K): the individuals' ids, K^-1 (sparse) and log|K|.

A :class:`~sparsereml.pedigree.Pedigree` gives A^-1 directly; a dense K (a DataFrame indexed
by ids, e.g. a genomic relationship matrix) is inverted once; :class:`Inverse` carries a given
K^-1 (dense or sparse) with its ids.  :func:`grm` builds VanRaden's genomic relationship matrix
and blends it with A so that it can be inverted.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError, ModelError
from ..structures.covariance import inverse_logdet
from .pedigree import Pedigree

__all__ = ["Inverse", "Relationship", "as_relationship", "grm"]


class Inverse:
    """A relationship matrix given by its inverse: ``sr.Inverse(Kinv, ids)`` (dense or sparse,
    rows in ``ids`` order), e.g. an A^-1 from other software."""

    def __init__(self, matrix, ids, logdet: float | None = None):
        self.matrix = sp.csc_matrix(matrix)
        self.ids = tuple(str(i) for i in ids)
        if self.matrix.shape != (len(self.ids), len(self.ids)):
            raise ModelError(f"Inverse: the matrix is {self.matrix.shape[0]} x {self.matrix.shape[1]} but "
                             f"{len(self.ids)} ids were given")
        self.logdet_inverse = logdet


class Relationship:
    """K for a vm() term: ids, K^-1 and log|K|, and matching of the data's ids."""

    def __init__(self, ids, kinv: sp.csc_matrix, logdet: float, source: str, pedigree: Pedigree | None = None):
        self.ids = tuple(ids)
        self.kinv = sp.csc_matrix(kinv)
        self.logdet = float(logdet)
        self.source = source
        self.pedigree = pedigree
        self._lookup = pd.Index(self.ids)

    @property
    def inbreeding(self) -> np.ndarray:
        """F of each individual (0 without a pedigree's; diag(K) - 1 for a dense K is not kept)."""
        if self.pedigree is None:
            return np.zeros(len(self.ids))
        return self.pedigree.inbreeding.reindex(list(self.ids)).fillna(0.0).to_numpy()

    def codes(self, values: pd.Series, term: str, add_missing: bool = False) -> tuple[np.ndarray, "Relationship"]:
        """Position of each record's id among ``ids`` (the relationship, extended by founders
        for ids missing from a pedigree when ``add_missing``)."""
        keys = values.astype("string").str.strip().str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
        pos = self._lookup.get_indexer(keys.to_numpy(dtype=object))
        if np.all(pos >= 0):
            return pos.astype(np.int64), self
        absent = pd.unique(keys.to_numpy(dtype=object)[pos < 0])
        if add_missing and self.pedigree is not None:
            k = len(absent)
            kinv = sp.block_diag([self.kinv, sp.identity(k)], format="csc")  # founders: unrelated, F = 0
            ext = Relationship(self.ids + tuple(absent), kinv, self.logdet, self.source + f" + {k} added", self.pedigree)
            return ext._lookup.get_indexer(keys.to_numpy(dtype=object)).astype(np.int64), ext
        hint = ""
        data_numeric = bool(keys.str.fullmatch(r"-?\d+").all())  # numbers, in a numeric, text or categorical column
        ped_numeric = self.pedigree is not None and bool(pd.Series(self.ids, dtype="string").str.fullmatch(r"-?\d+").all())
        if self.pedigree is not None and data_numeric != ped_numeric:
            kind = ("numbers", "names") if data_numeric else ("names", "numbers")
            hint = (f" (the data's {values.name!r} holds {kind[0]} but the pedigree's ids are {kind[1]}: check that "
                    f"they name the same individuals)")
        more = "" if self.pedigree is None else "; pass add_missing=True to the Pedigree to add them as founders"
        raise DataError(f"{term}: {len(absent)} id(s) of {values.name!r} are not in the {self.source}, e.g. "
                        f"{', '.join(map(repr, absent[:5]))}{hint}{more}")


def as_relationship(obj, name: str) -> Relationship:
    """The relationship for ``vm(id, name)`` from what the user gave under ``name``."""
    if isinstance(obj, Relationship):
        return obj
    if isinstance(obj, Pedigree):
        return Relationship(obj.ids, obj.ainverse(), obj.logdet(), f"pedigree {name!r}", obj)
    if isinstance(obj, Inverse):
        M = obj.matrix
        logdet = -obj.logdet_inverse if obj.logdet_inverse is not None else -_logdet_sparse(M, name)
        return Relationship(obj.ids, M, logdet, f"inverse matrix {name!r}")
    if isinstance(obj, pd.DataFrame):
        if list(map(str, obj.index)) != list(map(str, obj.columns)):
            raise ModelError(f"matrix {name!r}: rows and columns must carry the same ids in the same order")
        K = obj.to_numpy(dtype=float)
        if not np.allclose(K, K.T, atol=1e-10 * max(1.0, float(np.abs(K).max()))):
            raise ModelError(f"matrix {name!r} is not symmetric")
        try:
            Kinv, logdet = inverse_logdet(K)
        except np.linalg.LinAlgError:
            raise ModelError(f"matrix {name!r} is not positive definite; blend it with A or add a small "
                             f"multiple of I (sr.grm(..., blend=...))") from None
        return Relationship(map(str, obj.index), sp.csc_matrix(Kinv), logdet, f"matrix {name!r}")
    raise ModelError(f"matrices[{name!r}] must be a Pedigree, a DataFrame (a relationship matrix indexed by ids) "
                     f"or sr.Inverse(matrix, ids); got {type(obj).__name__}")


def _logdet_sparse(M: sp.spmatrix, name: str) -> float:
    from ..linalg import SparseLDL  # the same factorisation the MME use

    low = sp.tril(sp.csc_matrix(M), format="csc")
    low.sort_indices()
    f = SparseLDL(low)
    try:
        f.factorize(low.data)
    except Exception as exc:  # noqa: BLE001 - reported with the matrix's name
        raise ModelError(f"inverse matrix {name!r} is not positive definite ({exc})") from None
    return f.logdet()


def grm(markers, ids=None, blend: float = 0.05, pedigree: Pedigree | None = None) -> pd.DataFrame:
    """VanRaden's (2008) genomic relationship matrix G = Z Z' / (2 sum p(1 - p)).

    Parameters
    ----------
    markers : array or DataFrame (individuals x markers)
        Allele counts 0, 1, 2 (missing values are set to the marker's mean).
    ids : sequence, optional
        Individuals (the DataFrame's index by default).
    blend : float
        w in (1 - w) G + w A (or w I without a pedigree), so that the matrix can be inverted.
    pedigree : Pedigree, optional
        For A of the same individuals.
    """
    if isinstance(markers, pd.DataFrame):
        ids = markers.index if ids is None else ids
        M = markers.to_numpy(dtype=float)
    else:
        M = np.asarray(markers, dtype=float)
    if ids is None:
        raise ModelError("grm(): give the individuals' ids (or a DataFrame indexed by them)")
    ids = [str(i) for i in ids]
    if M.ndim != 2 or M.shape[0] != len(ids):
        raise ModelError(f"grm(): {M.shape[0]} rows of markers for {len(ids)} ids")
    bad = np.isfinite(M) & ~np.isin(M, (0.0, 1.0, 2.0))
    if bad.any():
        raise DataError("grm(): markers must be allele counts 0, 1 or 2 (or missing)")
    p = np.nanmean(M, axis=0) / 2.0
    M = np.where(np.isfinite(M), M, 2.0 * p)
    Z = M - 2.0 * p
    denom = 2.0 * float(np.sum(p * (1.0 - p)))
    if denom <= 0:
        raise DataError("grm(): every marker is fixed; there is no genomic variation")
    G = Z @ Z.T / denom
    other = pedigree.A(ids).to_numpy() if pedigree is not None else np.eye(len(ids))
    return pd.DataFrame((1.0 - blend) * G + blend * other, index=ids, columns=ids)
