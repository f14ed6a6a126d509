"""Spatial and covariance-model plots: the numbers each figure shows, and the refusals."""
from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import sparsereml as sr
from sparsereml.errors import ModelError
from sparsereml.plots.spatial import correlation_heatmap, fa_biplot, residual_map, variogram

from ..structures.test_residual_mme import field


@pytest.fixture(scope="module")
def spatial():
    df = field()
    df = df[df.trial == "A"]
    m = sr.fit("y ~ 1", random="~ gen", residual="~ ar1(row):ar1(col)", data=df)
    return m, df


@pytest.fixture(scope="module")
def network():
    df, _ = sr.datasets.trial_network(trials=5, trees=3000, mothers=60)
    return {r: sr.fit("dbh ~ Trial", random=f"~ {r}", data=df) for r in ("us(Trial):Mother", "fa(Trial, 2):Mother")}


def _plots(m, df) -> pd.DataFrame:
    """Row, column and residual of each record used (NaN yields dropped)."""
    e = m.residuals
    return pd.DataFrame({"row": df.loc[e.index, "row"].to_numpy(), "col": df.loc[e.index, "col"].to_numpy(),
                         "e": e.to_numpy()})


def test_variogram_matches_double_loop_over_pairs(spatial):
    m, df = spatial
    p = _plots(m, df)
    full = (df.row.max() - df.row.min() + 1) * (df.col.max() - df.col.min() + 1)
    assert len(p) < full  # the grid has empty plots, which must be skipped
    sums, counts = {}, {}
    for i, j in itertools.combinations(range(len(p)), 2):
        lag = (abs(int(p.row[i] - p.row[j])), abs(int(p.col[i] - p.col[j])))
        sums[lag] = sums.get(lag, 0.0) + (p.e[i] - p.e[j]) ** 2 / 2
        counts[lag] = counts.get(lag, 0) + 1

    fig, table = variogram(m)
    assert isinstance(fig, Figure)
    assert list(table.columns) == ["row_lag", "col_lag", "gamma", "n_pairs"]
    got = table.set_index(["row_lag", "col_lag"])
    for lag in [(0, 1), (1, 0), (1, 1), (2, 3)]:
        assert got.loc[lag, "n_pairs"] == counts[lag]
        assert got.loc[lag, "gamma"] == pytest.approx(sums[lag] / counts[lag], rel=1e-12)
    # every lag pair, not only the near ones, and nothing counted twice
    for lag, n in counts.items():
        assert got.loc[lag, "n_pairs"] == n
    assert got.n_pairs.sum() == len(p) * (len(p) - 1) // 2
    assert got.loc[(0, 0), "gamma"] == 0
    # the figure shows the table: image rows = row lag, columns = column lag
    img = np.asarray(fig.axes[0].images[0].get_array())
    assert img[1, 1] == pytest.approx(sums[(1, 1)] / counts[(1, 1)])
    assert img[2, 3] == pytest.approx(sums[(2, 3)] / counts[(2, 3)])


def test_variogram_max_lag(spatial):
    m, _ = spatial
    _, table = variogram(m, max_lag=2)
    assert table.row_lag.max() == 2 and table.col_lag.max() == 2
    _, table2 = variogram(m, max_lag=(1, 3))
    assert table2.row_lag.max() == 1 and table2.col_lag.max() == 3
    full = variogram(m)[1].set_index(["row_lag", "col_lag"])
    assert np.allclose(table.set_index(["row_lag", "col_lag"]).gamma, full.loc[table.set_index(["row_lag", "col_lag"]).index].gamma)


def test_residual_map_is_residuals_on_grid(spatial):
    m, df = spatial
    p = _plots(m, df)
    expect = np.full((df.row.max() - df.row.min() + 1, df.col.max() - df.col.min() + 1), np.nan)
    expect[p.row - df.row.min(), p.col - df.col.min()] = p.e
    fig = residual_map(m)
    ax = fig.axes[0]
    img = ax.images[0].get_array()
    assert np.ma.isMaskedArray(img)
    np.testing.assert_array_equal(np.ma.getmaskarray(img), np.isnan(expect))  # empty plots blank
    np.testing.assert_allclose(np.ma.filled(img, np.nan), expect, rtol=0, atol=1e-12, equal_nan=True)
    assert ax.get_ylabel() == "row" and ax.get_xlabel() == "col"


def test_several_grids_choose_a_group():
    df = field()
    m = sr.fit("y ~ trial", random="~ gen", residual="~ at(trial):ar1(row):ar1(col)", data=df)
    with pytest.raises(ModelError, match="group="):
        variogram(m)
    fig = residual_map(m, "B")
    b = df[(df.trial == "B") & df.y.notna()]
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (b.row.max() - b.row.min() + 1, b.col.max() - b.col.min() + 1)
    assert np.ma.count(img) == len(b)
    _, t_label = variogram(m, "at(trial, B):units")
    _, t_level = variogram(m, "B")
    pd.testing.assert_frame_equal(t_label, t_level)
    with pytest.raises(ModelError, match="not a residual group"):
        variogram(m, "Z")


def test_variogram_refuses_model_without_grid():
    df = field()
    m = sr.fit("y ~ trial", random="~ gen", data=df)
    with pytest.raises(ModelError, match=r"units.*ar1\(Row\):ar1\(Col\)"):
        variogram(m)
    with pytest.raises(ModelError, match="two-dimensional grid"):
        residual_map(m)


def test_variogram_refuses_one_dimensional_grid():
    df = field()
    df = df[df.trial == "A"].drop_duplicates("row")
    m = sr.fit("y ~ 1", residual="~ ar1(row)", data=df)
    with pytest.raises(ModelError, match="two-dimensional"):
        variogram(m)


def _tick_text(labels) -> list[str]:
    return [t.get_text() for t in labels]


def test_correlation_heatmap_is_clustered_correlation(network):
    m = network["us(Trial):Mother"]
    R = m.vcov("us(Trial):Mother")["correlation"]
    fig = correlation_heatmap(m, "us(Trial):Mother")
    ax = fig.axes[0]
    order = _tick_text(ax.get_xticklabels())
    assert order == _tick_text(ax.get_yticklabels())
    assert sorted(order) == sorted(str(x) for x in R.index)  # a permutation of the levels
    pos = [[str(x) for x in R.index].index(o) for o in order]
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), R.to_numpy()[np.ix_(pos, pos)])
    # the order is the leaf order of average-linkage clustering on 1 - correlation
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    D = 1 - R.to_numpy()
    np.fill_diagonal(D, 0)
    leaves = leaves_list(linkage(squareform(D, checks=False), "average", optimal_ordering=True))
    assert pos == list(leaves)
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "estimated correlation"  # colour bar


def test_correlation_heatmap_of_fa_term(network):
    m = network["fa(Trial, 2):Mother"]
    fig = correlation_heatmap(m, "fa(Trial, 2):Mother")
    img = np.asarray(fig.axes[0].images[0].get_array())
    assert np.allclose(np.diag(img), 1) and np.allclose(img, img.T)


def test_correlation_heatmap_refuses_plain_term(spatial):
    m, _ = spatial
    with pytest.raises(ModelError, match="'gen' has no covariance model"):
        correlation_heatmap(m, "gen")


def test_fa_biplot_points_are_loadings(network):
    m = network["fa(Trial, 2):Mother"]
    L = m.vcov("fa(Trial, 2):Mother")["loadings"]
    fig = fa_biplot(m, "fa(Trial, 2):Mother")
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), L.iloc[:, :2].to_numpy())
    assert [t.get_text() for t in ax.texts] == [str(x) for x in L.index]


def test_fa_biplot_refuses_us_term(network):
    with pytest.raises(ModelError, match="not a factor-analytic"):
        fa_biplot(network["us(Trial):Mother"], "us(Trial):Mother")
