"""What the mixed-model equations hold and how their factor stores them.

``m.equations`` of a fitted model is an :class:`EquationsDescription`: one
:class:`BlockDescription` row per block of unknowns (the fixed effects, each random term or
level block of an at()/diag() term, the missing-value unknowns of residual grids), with the
totals of the equations and of their factor.  It prints as an aligned table and converts to a
DataFrame (:meth:`EquationsDescription.to_frame`) or a plain dict of the totals
(:meth:`EquationsDescription.to_dict`).

Storage says how the factorisation holds a block's unknowns:

- ``absorbed``: eliminated one by one before the rest are ordered (``linalg/absorb.py``);
- ``star leaf``: in a leaf of a star-shaped factor, eliminated with small dense kernels
  (``linalg/star.py``);
- ``dense block``: in the factor's trailing dense block, factorised and inverted by LAPACK;
- ``sparse``: in the sparse backend's (CHOLMOD's or QDLDL's) supernodal factor.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from .formula.terms import VM
from .linalg.factor import STORAGE

__all__ = ["BlockDescription", "EquationsDescription", "describe_equations"]

_KEYS = ("sparse", "absorbed", "star_leaf", "dense_block")  # field of each storage code (STORAGE)


@dataclass(frozen=True)
class BlockDescription:
    """One block of unknowns of the mixed-model equations.

    Attributes
    ----------
    term : str
        ``"fixed effects"``, a random term's label (an at() or diag() term gives one row per
        level, labelled like its variance parameter) or ``"missing cells"``.
    levels : int
        Levels of the term (of its other factors for a correlated term: the units its
        covariance model is repeated over).
    columns : int
        Unknowns of the block.
    structure : str
        ``"fixed"``, ``"identity"`` (one variance), a covariance model (``"us(Trial)"``,
        ``"fa(Trial, 2)"``), a relationship (``"vm(Mother, ped)"``, ``"us(Trial) x vm(Mother,
        ped)"``) or ``"residual grid"``.
    start : int
        First unknown of the block in the equations' order.
    absorbed, star_leaf, dense_block, sparse : int
        How many of its unknowns the factorisation holds each way (see the module docstring).
    """

    term: str
    levels: int
    columns: int
    structure: str
    start: int
    absorbed: int = 0
    star_leaf: int = 0
    dense_block: int = 0
    sparse: int = 0

    @property
    def storage(self) -> str:
        """How the block is held: one of ``STORAGE``'s names when all its unknowns are held
        alike, else the counts, most first (``"absorbed 7,700, sparse 11"``)."""
        counts = [(getattr(self, k), name) for k, name in zip(_KEYS, STORAGE) if getattr(self, k)]
        if len(counts) == 1:
            return counts[0][1]
        counts.sort(key=lambda t: -t[0])  # stable: ties keep STORAGE's order
        return ", ".join(f"{name} {c:,}" for c, name in counts) or "-"


@dataclass(frozen=True)
class EquationsDescription:
    """The mixed-model equations of a fit: their blocks and the totals of their factor.

    Attributes
    ----------
    blocks : tuple of BlockDescription
        One per block of unknowns, in the equations' order.
    unknowns : int
        Size of the equations.
    absorbed : int
        Unknowns eliminated before the backend.
    factor_nonzeros : int
        Entries of the joined factor L (its diagonal included).
    largest_supernode : int
        Columns of the factor's widest supernode.
    dense_block : int
        Columns of the factor's dense block (0 when it has none).
    ordering : str
        The fill-reducing order used (a grouped candidate ``"groups<k>"``, ``"amd"``, or the
        backend's own).
    backend : str
        ``"cholmod"`` or ``"qdldl"``.
    factorisation : str
        The backend's name, or ``"leaves + dense block (LAPACK)"`` for a star.
    """

    blocks: tuple
    unknowns: int
    absorbed: int
    factor_nonzeros: int
    largest_supernode: int
    dense_block: int
    ordering: str
    backend: str
    factorisation: str

    def to_frame(self) -> pd.DataFrame:
        """The blocks as a DataFrame: term, levels, columns, structure, storage, start and the
        counts of each way of storage."""
        cols = ["term", "levels", "columns", "structure", "storage", "start", *_KEYS]
        rows = [{**asdict(b), "storage": b.storage} for b in self.blocks]
        return pd.DataFrame(rows, columns=cols)

    def to_dict(self) -> dict:
        """The totals (every attribute but ``blocks``) as a plain dict, e.g. for JSON."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "blocks"}

    def __str__(self) -> str:
        head = [f"mixed-model equations: {self.unknowns:,} unknowns ({self.absorbed:,} absorbed); factor "
                f"{self.factor_nonzeros:,} nonzeros, dense block {self.dense_block:,} columns, largest "
                f"supernode {self.largest_supernode:,}",
                f"factorisation: {self.factorisation}; backend {self.backend}; ordering {self.ordering}"]
        table = [("term", "levels", "columns", "structure", "storage")]
        table += [(b.term, f"{b.levels:,}", f"{b.columns:,}", b.structure, b.storage) for b in self.blocks]
        width = [max(len(r[i]) for r in table) for i in range(5)]
        right = (False, True, True, False, False)
        lines = ["  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, width, right)).rstrip()
                 for row in table]
        return "\n".join(head + [""] + lines)

    def __repr__(self) -> str:
        return self.__str__()


def _structure(rb) -> str:
    """The variance structure of a random term's block, as written in the model."""
    st = rb.term.struct
    vm = next((f for f in rb.term.factors if isinstance(f, VM)), None)
    if vm is not None:
        return vm.label if st is None else f"{st.label} x {vm.label}"
    return st.label if rb.cov_levels is not None else "identity"


def describe_equations(design, factor) -> EquationsDescription:
    """Describe the equations of ``design`` as ``factor`` holds them.

    Parameters
    ----------
    design : Design
        The coded model: fixed effects first, then the random terms (``design.offsets``), then
        any missing-value unknowns of residual grids.
    factor : SparseLDL
        The factor of its equations, factorised at least once.

    Returns
    -------
    EquationsDescription
    """
    code = factor.storage()

    def block(term: str, levels: int, start: int, size: int, structure: str) -> BlockDescription:
        counts = np.bincount(code[start:start + size], minlength=len(STORAGE))
        return BlockDescription(term, int(levels), int(size), structure, int(start),
                                **{k: int(c) for k, c in zip(_KEYS, counts)})

    rows = []
    if design.p:
        rows.append(block("fixed effects", design.p, 0, design.p, "fixed"))
    for rb, off in zip(design.random, design.offsets):
        structure = _structure(rb)
        for b in rb.blocks:
            levels = b.size // len(rb.cov_levels) if rb.cov_levels is not None else b.size
            rows.append(block(b.label, levels, off + b.start, b.size, structure))
    if factor.n > design.n_columns:
        extra = factor.n - design.n_columns
        rows.append(block("missing cells", extra, design.n_columns, extra, "residual grid"))
    return EquationsDescription(tuple(rows), unknowns=int(factor.n), absorbed=int(factor.n_absorbed),
                                factor_nonzeros=int(factor.nnz_factor),
                                largest_supernode=int(factor.largest_supernode),
                                dense_block=int(factor.dense_block_size), ordering=factor.ordering,
                                backend=factor.backend, factorisation=factor.method)
