"""Design stage: from a model specification and data to X, Z and residual groups.

``build_design(spec, data)`` is usable on its own: it returns a :class:`Design`
holding everything later stages need, with no reference back to the data frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..data import ModelData, prepare_data
from ..formula.terms import ModelSpec
from .coding import Factor, combine, encode
from .fixed import FixedDesign, find_aliased, fixed_design
from .random import RandomBlock, ResidualGroups, random_block, residual_groups

__all__ = ["Design", "build_design", "Factor", "encode", "combine", "find_aliased", "RandomBlock",
           "ResidualGroups", "FixedDesign"]


@dataclass
class Design:
    """The coded model: response, fixed design, random terms and residual groups.

    The mixed-model unknowns are ordered fixed effects first, then the random
    terms in the order written; ``offsets[k]`` is the first column of random term k.
    """

    spec: ModelSpec
    data: ModelData
    fixed: FixedDesign
    random: list
    residual: ResidualGroups

    @property
    def y(self) -> np.ndarray:
        return self.data.y

    @property
    def n(self) -> int:
        return len(self.data.y)

    @property
    def p(self) -> int:
        return self.fixed.X.shape[1]

    @property
    def offsets(self) -> list[int]:
        out, start = [], self.p
        for rb in self.random:
            out.append(start)
            start += rb.size
        return out

    @property
    def n_columns(self) -> int:
        return self.p + sum(rb.size for rb in self.random)

    def W(self) -> sp.csr_matrix:
        """W = [X Z] as a CSR matrix with sorted column indices (one row per record)."""
        X = self.fixed.X.tocoo()
        rows, cols, vals = [X.row.astype(np.int64)], [X.col.astype(np.int64)], [X.data]
        for off, rb in zip(self.offsets, self.random):
            r = np.flatnonzero(rb.codes >= 0)
            rows.append(r)
            cols.append(rb.codes[r] + off)
            vals.append(np.ones(r.size))
        W = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(self.n, self.n_columns))
        W.sum_duplicates()
        W.sort_indices()
        return W


def build_design(spec: ModelSpec, data, na_action: str = "error") -> Design:
    """Code the data for a model.

    Parameters
    ----------
    spec : ModelSpec
        From :func:`sparsereml.formula.model_spec`.
    data : DataFrame or path
    na_action : {"error", "drop"}

    Returns
    -------
    Design
    """
    md = data if isinstance(data, ModelData) else prepare_data(spec, data, na_action)
    n = len(md.y)
    fx = fixed_design(spec.fixed, md.columns, n)
    blocks = [random_block(t, md.columns) for t in spec.random]
    groups = residual_groups(spec.residual, md.columns, n)
    return Design(spec, md, fx, blocks, groups)
