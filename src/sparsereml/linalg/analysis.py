"""How SparseLDL factors the reduced equations: their order, and the star or the backend.

:func:`choose_method` runs once, when the factor is analysed: it orders the unknowns left after
the absorption by the cost model (``ordering.py``), and hands a star-shaped factor (dense
leaves around the dense block) to :class:`~.star.StarFactor`, anything else to the sparse
backend.
"""
from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from .ordering import choose_order, permute_lower, predicted_cost
from .star import StarFactor

__all__ = ["choose_method", "NARROW_LEAF"]

NARROW_LEAF = 64  # a star whose leaves are at most this wide is not compared with CHOLMOD's AMD


def choose_method(reduced: sp.csc_matrix, rest: np.ndarray, groups: np.ndarray | None, opts: dict,
                  star: bool | None, backend: str):
    """Order of the reduced unknowns and how to factor them: the cheapest of the grouped orders
    (and, with CHOLMOD, its AMD) by the cost model; a star-shaped factor in that order goes to
    StarFactor, anything else to the backend (QDLDL orders by AMD itself).

    CHOLMOD's AMD is not tried when the best grouped order already gives a star of narrow leaves
    (at most NARROW_LEAF columns): there the dense block is forced by the leaves' neighbourhoods
    and the grouped orders already compare leaves first with the dense block first, so AMD's
    order rarely wins and then by little, while its analysis costs a sizeable part of a
    factorisation (see benchmarks/RESULTS.md, 2026-12-07, issue 14).

    Parameters
    ----------
    reduced : scipy.sparse.csc_matrix
        Lower pattern of the unknowns left after the absorption.
    rest : ndarray of int
        Those unknowns (natural numbering), in the order of ``reduced``.
    groups : ndarray of int or None
        Ordering group of every unknown (natural numbering).
    opts : dict
        Backend options (updated and returned).
    star : bool or None
        Whether a star may be used (None: unless the environment variable SPARSEREML_STAR is 0).
    backend : {"cholmod", "qdldl"}

    Returns
    -------
    tuple
        (order of ``reduced``'s unknowns, backend options, permuted lower pattern, StarFactor or
        None, table of (candidate order, predicted cost), name of the order used).
    """
    identity = np.arange(rest.size)
    use_star = star if star is not None else os.environ.get("SPARSEREML_STAR", "1") != "0"
    order, table, found, post, red_q = identity, [], None, None, None
    best = "natural"
    if groups is not None:
        order, _, table, symbolic = choose_order(reduced, np.asarray(groups)[rest])
        best = min(table, key=lambda t: t[1])[0] if table else best
        red_q = permute_lower(reduced, order)
        if use_star:
            found, post = StarFactor.detect(red_q, symbolic)
        narrow = found is not None and int(np.diff(found.leaf_start).max(initial=0)) <= NARROW_LEAF
        if backend == "cholmod" and not narrow:
            from sksparse.cholmod import analyze

            amd = analyze(reduced, mode="supernodal", ordering_method="amd")
            amd_order = np.asarray(amd.P(), dtype=np.int64)
            table.append(("amd", predicted_cost(reduced, amd_order)))
            if min(table, key=lambda t: t[1])[0] == "amd":  # keep CHOLMOD's own analysis
                order, found, post, red_q = identity, None, None, None
                opts["factor"] = amd
    if red_q is None:
        red_q = reduced.copy()
        red_q.sort_indices()
    if found is None and use_star and "factor" not in opts:
        found, post = StarFactor.detect(red_q)
    if found is not None:
        order, red_q = order[post], found.pattern
    if found is None and backend == "qdldl" and not np.array_equal(order, identity):
        order, red_q = identity, reduced.copy()  # QDLDL orders by AMD itself
        red_q.sort_indices()
    if backend == "cholmod":  # without groups CHOLMOD orders by itself
        opts.setdefault("ordering", "natural" if groups is not None else "default")
    if found is not None:
        used = best
    elif "factor" in opts:
        used = "amd"
    elif backend == "qdldl":
        used = "amd (QDLDL's own)"
    else:
        used = best if groups is not None else "CHOLMOD's own"
    return order, opts, red_q, found, table, used
