"""How SparseLDL factors the equations: what it absorbs, the order, and the star or the backend.

Both run once, when the factor is analysed.  :func:`choose_absorption` picks the unknowns
absorbed before the sparse factor (``absorb.py``), keeping whole a term of which only a few
levels would be absorbed when the cost model says so.  :func:`choose_method` orders the unknowns
left after the absorption by the cost model (``ordering.py``), and hands a star-shaped factor
(dense leaves around the dense block) to :class:`~.star.StarFactor`, anything else to the sparse
backend.
"""
from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from .absorb import AbsorbPlan, choose_absorbed, enough_absorbed
from .ordering import _SCATTER_RATE, choose_order, permute_lower, predicted_cost
from .star import StarFactor

__all__ = ["choose_absorption", "choose_method", "NARROW_LEAF"]

NARROW_LEAF = 64  # a star whose leaves are at most this wide is not compared with CHOLMOD's AMD
# a term (group) of which less than this share would be absorbed is a candidate to keep whole ...
MINORITY = 0.5
# ... when absorbing its levels would add at least this share of the reduced pattern's entries
FILL_SHARE = 0.05


def _absorbed(lower: sp.csc_matrix, absorbed: np.ndarray):
    """(AbsorbPlan or None, the reduced lower pattern) for absorbing ``absorbed``."""
    if not absorbed.size:
        return None, lower
    plan = AbsorbPlan(lower, absorbed)
    return plan, plan.reduced_pattern()


def choose_absorption(lower: sp.csc_matrix, groups: np.ndarray | None, absorb: bool = True):
    """What to absorb before the sparse factor: the independent set of low-degree unknowns
    (:func:`~.absorb.choose_absorbed`), or that set less the levels of terms it would absorb
    only a few of, whichever the cost model predicts cheaper.

    A crossed term that the grouped orders put in the dense block as a whole (mothers across
    trials, say) can have a few levels of low degree (a mother planted in few blocks).
    Absorbing those joins the units they meet (blocks of different trials) into one large
    dense front, which costs far more than the few columns they add to the dense block.  The
    other candidate is weighed only when such levels would add at least FILL_SHARE of the
    reduced pattern's entries (a couple of stray levels are not worth a second analysis).

    Parameters
    ----------
    lower : scipy.sparse.csc_matrix
        Lower pattern of the matrix (sorted rows, full diagonal).
    groups : ndarray of int or None
        Ordering group (term) of every unknown.
    absorb : bool
        Whether to absorb at all.

    Returns
    -------
    tuple
        (AbsorbPlan or None, reduced lower pattern, the result of
        :func:`~.ordering.choose_order` on it when it was computed here, else None).
    """
    absorbed = choose_absorbed(lower) if absorb else np.empty(0, dtype=np.int64)
    plan, reduced = _absorbed(lower, absorbed)
    if groups is None or not absorbed.size:
        return plan, reduced, None
    groups = np.asarray(groups)
    size = np.bincount(groups)
    share = np.bincount(groups[absorbed], minlength=size.size) / np.maximum(size, 1)
    few = share[groups[absorbed]] < MINORITY  # absorbed levels of terms mostly kept
    if not few.any():
        return plan, reduced, None
    n = lower.shape[0]
    degree = np.diff(lower.indptr) + np.bincount(lower.indices, minlength=n) - 2  # diagonal counted twice
    pairs = degree[absorbed] * (degree[absorbed] + 1) / 2.0  # entries each absorbed column updates
    if pairs[few].sum() < FILL_SHARE * reduced.nnz:
        return plan, reduced, None
    other = absorbed[~few] if enough_absorbed(int((~few).sum()), n) else np.empty(0, dtype=np.int64)
    cands = [(plan, reduced, pairs.sum()), (*_absorbed(lower, other), pairs[~few].sum() if other.size else 0.0)]
    best = None
    for plan_c, reduced_c, work in cands:
        rest = plan_c.rest if plan_c else np.arange(n)
        ordered = choose_order(reduced_c, groups[rest])
        cost = ordered[1] + work / _SCATTER_RATE  # the reduced factor, and the absorption's updates
        if best is None or cost < best[0]:
            best = (cost, plan_c, reduced_c, ordered)
    return best[1:]


def choose_method(reduced: sp.csc_matrix, rest: np.ndarray, groups: np.ndarray | None, opts: dict,
                  star: bool | None, backend: str, ordered: tuple | None = None):
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
    ordered : tuple, optional
        :func:`~.ordering.choose_order` of ``reduced`` with these groups, when known already.

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
        if ordered is None:
            ordered = choose_order(reduced, np.asarray(groups)[rest])
        order, _, table, symbolic = ordered
        table = list(table)  # AMD's row is added below
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
