"""What a SparseLDL's factor will hold, from its analysis alone (no numeric factorisation).

The joined factor (absorbed columns, then the backend's) is known entry by entry only after the
first factorisation (:meth:`SparseLDL.storage`).  Its size is known before: the absorbed columns'
entries from the absorption's layout, the star's pattern from its analysis, and a sparse
backend's from the elimination tree and column counts of the reduced pattern in the backend's
order (CHOLMOD's own permutation after its analysis; for QDLDL, which orders by AMD inside its
first factorisation, the same SuiteSparse AMD run through CHOLMOD when it is installed, else the
grouped order the analysis chose).  CHOLMOD's supernodal factor also stores the explicit zeros
of its relaxed amalgamation; they are counted by the rule the ordering's cost model uses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .factor import _LAPACK_WIDTH
from .ordering import relaxed_supernode, symbolic_counts
from .star import StarFactor

__all__ = ["FactorLayout", "predicted_layout"]



@dataclass(frozen=True)
class FactorLayout:
    """Size of a factor predicted from its analysis.

    Attributes
    ----------
    nnz : int
        Entries of the joined unit-lower L below the diagonal, plus the diagonal (what
        ``SparseLDL.nnz_factor`` reports after a factorisation).
    dense : int
        Columns of the trailing dense block (0 when narrower than the LAPACK width).
    absorbed_pairs : int
        Entries the absorption updates (its map from pairs of absorbed entries to the reduced matrix).
    backend_stored : int
        Entries the backend's own factor stores (explicit zeros of CHOLMOD's supernodes included).
    exact : bool
        Whether ``nnz`` is the count itself (the star; QDLDL with CHOLMOD's AMD at hand) or a
        prediction (CHOLMOD's relaxed supernodes, whose amalgamation is not only of chains;
        QDLDL without CHOLMOD, counted in the grouped order).
    """

    nnz: int
    dense: int
    absorbed_pairs: int
    backend_stored: int
    exact: bool


@njit(cache=True, nogil=True)
def _stored(parent, counts):
    """Entries of a supernodal factor with CHOLMOD's relaxed amalgamation of chains
    (:func:`~.ordering.relaxed_supernode`, as the ordering's cost model), explicit zeros included."""
    n = parent.shape[0]
    total = 0.0
    j = 0
    while j < n:
        j, stored = relaxed_supernode(parent, counts, j)
        total += stored
        j += 1
    return total


def _trailing_dense(counts: np.ndarray) -> int:
    """Width of the trailing run of columns that are full below the diagonal."""
    n = counts.size
    full = counts == n - np.arange(n)
    if not full.size or not full[-1]:
        return 0
    w = int(np.argmin(full[::-1])) if not full.all() else n
    return w if w >= _LAPACK_WIDTH else 0


def _backend_counts(factor):
    """(elimination tree, counts, exact) of the backend's reduced factor in the order it will use."""
    backend = factor._backend
    if backend.name == "cholmod":
        return (*symbolic_counts(backend._lower, np.asarray(backend._factor.P(), dtype=np.int64)), False)
    lower = backend._upper.T.tocsc()  # QDLDL orders by AMD; CHOLMOD runs the same AMD when installed
    try:
        from sksparse.cholmod import analyze
    except ImportError:
        return (*symbolic_counts(lower), False)
    amd = analyze(lower, mode="simplicial", ordering_method="amd")
    return (*symbolic_counts(lower, np.asarray(amd.P(), dtype=np.int64)), True)


def predicted_layout(factor) -> FactorLayout:
    """The :class:`FactorLayout` of an analysed :class:`~.factor.SparseLDL` (before or after its
    first factorisation: only the analysis is read)."""
    plan = factor._plan
    n_abs = int(plan.Sp[-1]) if plan else 0
    pairs = 0
    if plan:
        m = np.diff(plan.Sp).astype(np.int64)
        pairs = int((m * (m + 1) // 2).sum())
    backend = factor._backend
    if isinstance(backend, StarFactor):
        red = int(backend.Li.size)
        dense = backend.n - backend.dense_start
        return FactorLayout(n_abs + red + factor.n, dense if dense >= _LAPACK_WIDTH else 0, pairs, red, True)
    parent, counts, exact = _backend_counts(factor)
    # CHOLMOD's L keeps its supernodes' explicit zeros (the joined factor copies its pattern)
    stored = int(_stored(parent, counts)) if backend.name == "cholmod" else int(counts.sum())
    red = stored - counts.size  # below the diagonal
    dense = _trailing_dense(counts)
    return FactorLayout(n_abs + red + factor.n, dense, pairs, stored, exact)
