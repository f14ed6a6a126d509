"""Structured residuals (grids, e.g. ``at(Trial):ar1(Row):ar1(Col)``) on partitioned data.

A grid couples every record of its residual group (R_g is not diagonal), so the group's
cross-products W_g'B_b W_g, W_g'B_b y_g and y_g'B_b y_g are formed where all its records are:
in the one partition that holds the group, with ``crossprod.grid_products`` as in memory.  A
group split across partitions is refused, naming the partitions, with the fix
(:func:`sparsereml.datasets.repartition`).  The grid's coordinates are keys of the cells, so a
cell of a grid group is one record, and the node knows every record's place in its grid (the
design's :class:`~sparsereml.design.GridLayout`, on the cells); a worker takes a record's place
from its cell.  The group's W and y on the grid come back to the node, which needs them at every
iteration (the residual's average information), as the in-memory fit keeps them."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp

from ..crossprod import _plain_products, grid_products
from ..errors import DataError

__all__ = ["GridPlan", "check_whole_groups"]


def check_whole_groups(design, groups_in: dict, count: np.ndarray) -> None:
    """Refuse grid groups split across partitions, or with two records on one cell of the data."""
    res = design.residual
    at = design.spec.residual.at
    split = []
    for g, lay in enumerate(res.grids):
        if lay is None:
            continue
        if np.any(count[lay.records] > 1):
            raise DataError(f"two records share one grid position in the residual {res.labels[g]}: each cell of "
                            f"{':'.join(d.label for d in lay.dims)} may hold one record")
        key = "(all records)" if at is None else design.data.columns[at.factor].iloc[int(lay.records[0])]
        where = groups_in.get(str(key), [])
        if len(where) > 1:
            split.append((res.labels[g], where))
    if split:
        shown = "; ".join(f"{label} in {', '.join(map(str, where[:4]))}{' ...' if len(where) > 4 else ''}"
                          for label, where in split[:5])
        by = at.factor if at is not None else None
        fix = (f"sr.datasets.repartition(src, out, by={by!r}) writes the files again with every {by} whole"
               if by else "put every record in one file (the residual is one grid)")
        raise DataError(f"a structured residual needs each of its groups whole in one partition (its records are "
                        f"correlated on the grid); {len(split)} group(s) are split: {shown}. {fix}, then fit "
                        f"the new directory")


@dataclass
class GridPlan:
    """What a worker needs to form the grid groups' products: each cell's place in its grid group's
    grid (``position``, -1 off every grid: groups share no cell, so one array serves them all), per
    grid group its records (``n_records``), the grid's size and missing cells, the
    residual's basis matrices and the first unknown of its missing cells; and the layout of the
    components (plain groups first, then each grid group's bases, as ``cross_products``)."""

    groups: list
    position: np.ndarray
    n_records: dict
    n_cells: dict
    missing: dict
    basis: dict
    first: dict
    N: int
    comp_of_group: np.ndarray  # component of each plain group, -1 for a grid group
    comp_start: dict
    n_comps: int

    @classmethod
    def build(cls, design, grids: list, n_cells_data: int) -> "GridPlan":
        K = design.residual.n_groups
        first = design.n_columns
        plan = cls([], np.full(n_cells_data, -1, dtype=np.int64), {}, {}, {}, {}, {}, 0,
                   np.full(K, -1, dtype=np.int64), {}, 0)
        plain = [g for g in range(K) if grids[g] is None]
        plan.comp_of_group[plain] = np.arange(len(plain))
        c = len(plain)
        for g, spec in enumerate(grids):
            if spec is None:
                continue
            lay, basis = spec
            plan.position[lay.records] = lay.cells
            plan.groups.append(g)
            plan.n_records[g], plan.n_cells[g], plan.missing[g] = lay.records.size, lay.n_cells, lay.missing
            plan.basis[g], plan.first[g], plan.comp_start[g] = basis, first, c
            first += lay.missing.size
            c += len(basis)
        plan.N, plan.n_comps = first, c
        return plan

    @property
    def group_of(self) -> np.ndarray:
        """The residual group of each component."""
        out = np.empty(self.n_comps, dtype=np.int64)
        plain = np.flatnonzero(self.comp_of_group >= 0)
        out[self.comp_of_group[plain]] = plain
        for g in self.groups:
            out[self.comp_start[g]: self.comp_start[g] + len(self.basis[g])] = g
        return out

    def products(self, W: sp.csr_matrix, e: np.ndarray, group: np.ndarray, cell: np.ndarray, name: str):
        """The partition's products on the components (a :class:`~.products.Products`)."""
        from .products import Products, _pairs

        K, C, N = self.comp_of_group.size, self.n_comps, self.N
        W = sp.csr_matrix((W.data, W.indices, W.indptr), shape=(W.shape[0], N))
        pr = _pairs(_plain_products(W, e, group, K, []), N)
        wtw, wty = [_to_components(pr.wtw, K, C, self.comp_of_group)], [_to_components(pr.wty, K, C,
                                                                                         self.comp_of_group)]
        yty = np.zeros(C)
        plain = self.comp_of_group >= 0
        yty[self.comp_of_group[plain]] = pr.yty[plain]
        cells = {}
        present = set(np.unique(group).tolist())
        for g in self.groups:
            if g not in present:
                continue
            idx = np.flatnonzero(group == g)
            pos = self.position[cell[idx]]
            if idx.size != self.n_records[g]:  # pragma: no cover - refused by the design
                raise DataError(f"{name} holds part of a grid group only; was the partition changed during the fit?")
            order = np.argsort(pos, kind="stable")
            layout = SimpleNamespace(n_cells=self.n_cells[g], cells=pos[order], records=idx[order],
                                     missing=self.missing[g])
            Wc, yc, comps = grid_products(W, e, layout, self.basis[g], self.first[g])
            for b, (M, v, yy) in enumerate(comps):
                c = self.comp_start[g] + b
                wtw.append(((M.row.astype(np.int64) + N * M.col.astype(np.int64)) * C + c, M.data))
                nz = np.flatnonzero(v)
                wty.append((nz.astype(np.int64) * C + c, v[nz]))
                yty[c] = yy
            cells[g] = (Wc, yc)
        from .products import _summed

        return Products(pr.total, _summed(*map(np.concatenate, zip(*wtw))), _summed(*map(np.concatenate, zip(*wty))),
                        yty, pr.counts, cells, pr.yty)

    def pattern(self, wtw_keys: np.ndarray) -> list:
        """The grid components' entries (rows, cols), which the equations' pattern must hold."""
        C, N = self.n_comps, self.N
        grid = (wtw_keys % C) >= int(np.count_nonzero(self.comp_of_group >= 0))
        low = wtw_keys[grid] // C
        return [(low % N, low // N)]


def _to_components(pairs: tuple, K: int, C: int, comp_of_group: np.ndarray) -> tuple:
    """(key x K + group) pairs of the plain groups as (key x C + component); grid groups' dropped."""
    keys, vals = pairs
    comp = comp_of_group[keys % K]
    keep = comp >= 0
    return (keys[keep] // K) * C + comp[keep], vals[keep]
