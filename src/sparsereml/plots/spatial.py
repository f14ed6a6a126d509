"""Plots of spatial residuals and of covariance models between levels (issue 16).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (so no global
figure state and any backend), with the numbers it shows available from public matplotlib
objects (``ax.images[0].get_array()``, ``ax.collections[0].get_offsets()``) and, for the
variogram, as a DataFrame.

* :func:`variogram` -- the sample variogram of the residuals on a residual group's row x column
  grid (as ASReml and breedR print it), drawn as a heat map over (row lag, column lag).
* :func:`residual_map` -- the residuals on the grid, empty plots blank.
* :func:`correlation_heatmap` -- the estimated correlations between the levels of a covariance
  model (``us``, ``corgh``, ``fa``, ...), levels ordered by hierarchical clustering.
* :func:`fa_biplot` -- the loadings of an ``fa()`` term on its first two factors.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ModelError
from ..records import grid_array, grids_of, group_level

__all__ = ["variogram", "residual_map", "correlation_heatmap", "fa_biplot"]

_SPATIAL_HINT = "a variogram needs a residual such as `~ ar1(Row):ar1(Col)`"


# -- residual grids ----------------------------------------------------------------------------
def _grid_of(model, group, what: str):
    """The label and GridInfo of a residual group with a row x column grid (ModelError otherwise)."""
    labels, grids = grids_of(model)
    if group is None:
        if len(grids) > 1:
            raise ModelError(f"{what}: the model has {len(grids)} residual grids "
                             f"({', '.join(grids)}); choose one with group=")
        label = next(iter(grids)) if grids else labels[0]
    else:
        hits = [lab for lab in labels if lab == str(group) or group_level(lab) == str(group)]
        if not hits:
            raise ModelError(f"{what}: {group!r} is not a residual group of this model "
                             f"(groups: {', '.join(labels)})")
        label = hits[0]
    grid = grids.get(label)
    if grid is None or len(grid.shape) != 2:
        dims = "independent records" if grid is None else grid.structure
        raise ModelError(f"{what}: residual group {label} has no two-dimensional grid ({dims}); {_SPATIAL_HINT}")
    if grid.covariance:
        raise ModelError(f"{what}: residual group {label} is a grid over a covariance model "
                         f"({grid.structure}), not over rows and columns; {_SPATIAL_HINT}")
    return label, grid


def _pairs(A: np.ndarray, dr: int, dc: int) -> tuple[float, int]:
    """Sum of (a - b)^2 / 2 and count over the pairs of non-missing cells at offset (dr, dc),
    dr >= 0 and dc of either sign."""
    nr, nc = A.shape
    a = A[dr:, max(dc, 0): nc + min(dc, 0)]
    b = A[: nr - dr, max(-dc, 0): nc - max(dc, 0)]
    d = a - b
    ok = ~np.isnan(d)
    return float(0.5 * np.sum(d[ok] ** 2)), int(ok.sum())


def variogram_table(A: np.ndarray, max_lag: int | tuple | None = None) -> pd.DataFrame:
    """Sample variogram of values on a grid (NaN = missing cell).

    Parameters
    ----------
    A : ndarray, shape (rows, cols)
    max_lag : int or (int, int), optional
        Largest row and column lag (default: the grid's extent).

    Returns
    -------
    DataFrame
        ``row_lag``, ``col_lag``, ``gamma`` (mean of (e_i - e_j)^2 / 2 over the unordered pairs of
        plots at those absolute lags; NaN without pairs, 0 at the origin) and ``n_pairs``.
    """
    nr, nc = A.shape
    if max_lag is None:
        mr, mc = nr - 1, nc - 1
    else:
        mr, mc = (max_lag, max_lag) if np.isscalar(max_lag) else max_lag
        mr, mc = min(int(mr), nr - 1), min(int(mc), nc - 1)
    rows = []
    for dr in range(mr + 1):
        for dc in range(mc + 1):
            s, n = 0.0, 0
            offsets = [(dr, dc), (dr, -dc)] if dr > 0 and dc > 0 else [(dr, dc)]
            if dr or dc:
                for o in offsets:
                    s_o, n_o = _pairs(A, *o)
                    s, n = s + s_o, n + n_o
            gamma = 0.0 if dr == dc == 0 else (s / n if n else np.nan)
            rows.append((dr, dc, gamma, n))
    return pd.DataFrame(rows, columns=["row_lag", "col_lag", "gamma", "n_pairs"])


def variogram(model, group: str | None = None, *, max_lag: int | tuple | None = None) -> tuple[Figure, pd.DataFrame]:
    """Sample variogram of the residuals on a residual group's row x column grid.

    For each pair of absolute lags (row lag ``|dr|``, column lag ``|dc|``), ``gamma`` is the
    mean of ``(e_i - e_j)^2 / 2`` over the pairs of plots at those lags (empty plots skipped),
    as in ASReml's and breedR's variograms.  The figure is a heat map of ``gamma`` over the
    lags (row lag down, column lag across; lag pairs without plots blank) rather than ASReml's
    3-D wireframe: the heat map shows every lag without hiding any behind others.

    "Row" is the grid's first dimension and "column" its second, in the order the residual
    names them (``ar1(col):ar1(row)`` puts ``col`` first); the axes carry the column names.

    Parameters
    ----------
    model : FittedModel
        A fit with a two-dimensional residual grid, e.g. ``residual="~ ar1(Row):ar1(Col)"``.
    group : str, optional
        The residual group (its label, e.g. ``"at(Trial, A):units"``, or the level ``"A"``);
        needed when the model has several grids.
    max_lag : int or (int, int), optional
        Largest row and column lag (default: the whole grid).

    Returns
    -------
    (Figure, DataFrame)
        The DataFrame has ``row_lag``, ``col_lag``, ``gamma`` and ``n_pairs``.

    Raises
    ------
    ModelError
        When the group has no two-dimensional grid.
    """
    label, grid = _grid_of(model, group, "variogram")
    table = variogram_table(grid_array(model, grid), max_lag)
    G = table.pivot(index="row_lag", columns="col_lag", values="gamma")
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    im = ax.imshow(G.to_numpy(), origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="semivariance gamma")
    ax.set_xlabel(f"{grid.dims[1]} lag")
    ax.set_ylabel(f"{grid.dims[0]} lag")
    ax.set_title(f"Sample variogram of the residuals, {label}")
    return fig, table


def residual_map(model, group: str | None = None) -> Figure:
    """The residuals of a residual group as a heat map on its grid (empty plots blank).

    Rows of the image are the grid's first dimension, columns its second; the axes are
    labelled with the dimensions' column names and their ticks with the columns' values.
    The image's array (``fig.axes[0].images[0].get_array()``) is the residual grid.

    Parameters
    ----------
    model : FittedModel
    group : str, optional
        As for :func:`variogram`.

    Returns
    -------
    Figure
    """
    label, grid = _grid_of(model, group, "residual map")
    A = grid_array(model, grid)
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    lim = float(np.nanmax(np.abs(A))) if np.isfinite(A).any() else 1.0
    im = ax.imshow(np.ma.masked_invalid(A), origin="lower", aspect="auto", cmap="RdBu_r",
                   vmin=-lim, vmax=lim, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="residual")
    for k, (set_ticks, set_labels, set_name) in enumerate(
            [(ax.set_yticks, ax.set_yticklabels, ax.set_ylabel), (ax.set_xticks, ax.set_xticklabels, ax.set_xlabel)]):
        labels = grid.ticks[k]
        step = max(1, len(labels) // 12)
        ticks = list(range(0, len(labels), step))
        set_ticks(ticks)
        set_labels([labels[t] for t in ticks])
        set_name(grid.dims[k])
    ax.set_title(f"Residuals, {label}")
    return fig


# -- covariance models -------------------------------------------------------------------------
def _structured_vcov(model, term: str, what: str) -> dict:
    """``model.vcov(term)`` for a term with correlations between levels (ModelError otherwise)."""
    v = model.vcov(term)
    R = v["correlation"].to_numpy()
    if R.shape[0] < 2 or np.allclose(R[~np.eye(R.shape[0], dtype=bool)], 0):
        raise ModelError(f"{what}: {term!r} has no covariance model between levels (a plain or diag "
                         f"variance term); use e.g. us(Trial):Mother, corgh(Trial):Mother or fa(Trial, 2):Mother")
    return v


def clustered_order(R: np.ndarray) -> np.ndarray:
    """Order of the levels by average-linkage hierarchical clustering on ``1 - R`` (leaf order)."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    D = np.clip(1.0 - np.nan_to_num(np.asarray(R, dtype=float)), 0.0, 2.0)
    D = (D + D.T) / 2
    np.fill_diagonal(D, 0.0)
    return leaves_list(linkage(squareform(D, checks=False), method="average", optimal_ordering=True))


def correlation_heatmap(model, term: str) -> Figure:
    """Heat map of the estimated correlations between the levels of a covariance-model term.

    The matrix is ``model.vcov(term)["correlation"]`` with its levels ordered by hierarchical
    clustering (average linkage on the distance ``1 - correlation``), so that levels that
    correlate closely sit together.  The colour bar runs from -1 to 1; cells carry their value
    when there are at most 12 levels.

    Parameters
    ----------
    model : FittedModel
    term : str
        A random term with a covariance model, e.g. ``"us(Trial):Mother"``, or a residual
        covariance model (``"units"``).

    Returns
    -------
    Figure
        Its image array is the reordered correlation matrix; the tick labels give the order.

    Raises
    ------
    ModelError
        For a term without correlations between levels.
    """
    R = _structured_vcov(model, term, "correlation heat map")["correlation"]
    order = clustered_order(R.to_numpy())
    Rs = R.iloc[order, order]
    n = len(Rs)
    size = min(12.0, 3.0 + 0.3 * n)
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.add_subplot()
    im = ax.imshow(Rs.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("estimated correlation")
    labels = [str(x) for x in Rs.index]
    ax.set_xticks(range(n))
    ax.set_xticklabels(labels, rotation=90, fontsize=max(4, 10 - n // 10))
    ax.set_yticks(range(n))
    ax.set_yticklabels(labels, fontsize=max(4, 10 - n // 10))
    if n <= 12:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{Rs.iat[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(Rs.iat[i, j]) > 0.6 else "black")
    ax.set_title(f"Correlations of {term} (clustered)")
    return fig


def fa_biplot(model, term: str) -> Figure:
    """The loadings of an ``fa()`` term's levels on its first two factors, labelled by level.

    The loadings are those ``model.vcov(term)["loadings"]`` reports (identified by
    ``lambda_ir = 0`` for ``r > i``, up to sign; no further rotation).  With one factor the
    points lie on the horizontal axis.

    Parameters
    ----------
    model : FittedModel
    term : str
        An ``fa(F, k)`` term, e.g. ``"fa(Trial, 2):Mother"``.

    Returns
    -------
    Figure
        ``fig.axes[0].collections[0].get_offsets()`` are the points (factor 1, factor 2).

    Raises
    ------
    ModelError
        For a term that is not a factor-analytic model.
    """
    v = model.vcov(term)
    if "loadings" not in v:
        raise ModelError(f"fa biplot: {term!r} is not a factor-analytic term (fa(F, k)); it has no loadings")
    L = v["loadings"]
    x = L.iloc[:, 0].to_numpy(dtype=float)
    y = L.iloc[:, 1].to_numpy(dtype=float) if L.shape[1] > 1 else np.zeros_like(x)
    fig = Figure(figsize=(6, 6))
    ax = fig.add_subplot()
    ax.scatter(x, y, s=18, color="tab:blue")
    for xi, yi, lab in zip(x, y, L.index):
        ax.annotate(str(lab), (xi, yi), textcoords="offset points", xytext=(3, 3), fontsize=8)
    ax.axhline(0, color="grey", lw=0.6)
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_xlabel(f"loading on {L.columns[0]}")
    ax.set_ylabel(f"loading on {L.columns[1]}" if L.shape[1] > 1 else "(one factor)")
    ax.set_title(f"Loadings of {term}")
    return fig
