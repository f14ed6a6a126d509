"""The variance parameters of a model: one structure per random term and residual group, and the
table that places their parameters in one vector (random terms first, residual groups last)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..design import Design
from ..errors import UnknownName
from ..registry import residual_dim
from ..structures import IdentityBlocks, KronStructure, Structure, make_cov_model
from ..structures.covariance import DiagCov
from ..structures.residual import GroupResidual

__all__ = ["ParameterTable", "parameter_table", "structures_for", "residuals_for"]


@dataclass
class ParameterTable:
    """Labels and bookkeeping of the variance parameters, random terms first, residual last."""

    labels: list
    term_slices: list  # slice of theta for each random term
    residual_slice: slice
    lower: np.ndarray  # smallest admissible value (0 for variances, -1 for correlations)
    upper: np.ndarray  # largest admissible value (inf, or 1 for correlations)
    kinds: list  # 'var', 'cor', 'cov' or 'load'
    scale_of: np.ndarray | None = None  # index of the variance that scales a correlation, else -1
    group_slices: list | None = None  # slice of the residual parameters (theta[residual_slice]) per group

    @property
    def n(self) -> int:
        return len(self.labels)

    def index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise UnknownName(f"{label!r} is not a parameter of this model (parameters: "
                              f"{', '.join(self.labels)})") from None


def structures_for(design: Design) -> list[Structure]:
    """One variance structure per random term: identity blocks (plain, at() and diag() terms) or
    a covariance model across a factor (us, fa, corh, ...) for correlated terms."""
    out = []
    for rb in design.random:
        rel = rb.relationship
        if rel is not None:
            st = rb.term.struct
            model = make_cov_model(st.model, rb.cov_levels, st.args) if st is not None else DiagCov(["var"])
            out.append(KronStructure(model, len(rel.ids), rb.label, rel.kinv, rel.logdet, scalar=st is None))
        elif rb.cov_levels is not None:
            st = rb.term.struct
            out.append(KronStructure(make_cov_model(st.model, rb.cov_levels, st.args), rb.units, rb.label))
        else:
            out.append(IdentityBlocks([b.size for b in rb.blocks], [b.label for b in rb.blocks]))
    return out


def residuals_for(design: Design) -> list[GroupResidual]:
    """One residual structure per residual group: independent records with one variance, or a
    Kronecker product over the dimensions of the group's grid."""
    out = []
    counts = design.group_counts()
    random_labels = {b.label for rb in design.random for b in rb.blocks}
    clash = any(lab in random_labels for lab in design.residual.labels)  # a random units term
    for label, grid, n_g in zip(design.residual.labels, design.residual.grids, counts):
        var_label = f"{label}!R" if clash else None
        if grid is None:
            out.append(GroupResidual(label, [], n_g, var_label))
            continue
        dims = [residual_dim(d.model).build(d.model, d.column, m, levels, d.args)
                for d, m, levels in zip(grid.dims, grid.shape, grid.levels)]
        out.append(GroupResidual(label, dims, grid.n_cells, var_label))
    return out


def parameter_table(structures: list, residuals: list) -> ParameterTable:
    """The parameter table of these random-term structures and residual groups."""
    labels, slices, lower, upper, kinds, k = [], [], [], [], [], 0
    for st in structures:
        labels += st.labels
        slices.append(slice(k, k + st.n_params))
        lo, hi = st.bounds()
        lower.append(lo)
        upper.append(hi)
        kinds += st.kinds
        k += st.n_params
    group_slices = []
    for res in residuals:
        group_slices.append(slice(len(labels) - k, len(labels) - k + res.n_params))
        labels += res.labels
        lo, hi = res.bounds()
        lower.append(lo)
        upper.append(hi)
        kinds += res.kinds
    # a residual group's correlations mean nothing while its variance is held at zero
    scale_of = np.full(len(labels), -1, dtype=np.int64)
    for res, sl in zip(residuals, group_slices):
        if res.scaled and res.n_params > 1:
            scale_of[k + sl.start + 1: k + sl.stop] = k + sl.start
    empty = np.zeros(0)
    return ParameterTable(labels, slices, slice(k, len(labels)), np.concatenate(lower) if lower else empty,
                          np.concatenate(upper) if upper else empty, kinds, scale_of, group_slices)
