"""The model plots draw the numbers of the data and of the fit (read back from the artists)."""
from __future__ import annotations

import io
import time
from statistics import NormalDist

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import sparsereml as sr  # noqa: E402
from sparsereml import plots  # noqa: E402
from sparsereml.errors import ModelError  # noqa: E402


@pytest.fixture(scope="module")
def network():
    df, _ = sr.datasets.trial_network(seed=3, trials=4, trees=3000, mothers=60)
    return df


@pytest.fixture(scope="module")
def m(network, backend):
    return sr.fit("dbh ~ Trial", random="~ Trial:Block + Mother + Trial:Mother", residual="~ at(Trial):units",
                  data=network, backend=backend)


def _by_gid(ax, gid):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert found, f"no artist with gid {gid!r}"
    return found


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    return buf.getvalue()


# -- overview ---------------------------------------------------------------------------------------
def test_overview_points_are_the_records_jittered_within_their_level(network):
    fig = plots.overview(network, "dbh", "Trial", jitter=0.3)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    (pts,) = _by_gid(ax, "points")
    assert isinstance(pts, PathCollection) and pts.get_rasterized()
    xy = pts.get_offsets()
    levels = list(network["Trial"].cat.categories)
    pos = network["Trial"].cat.codes.to_numpy()
    assert len(xy) == len(network)
    np.testing.assert_array_equal(xy[:, 1], network["dbh"].to_numpy())
    assert np.all(np.abs(xy[:, 0] - pos) <= 0.3)
    assert np.ptp(xy[:, 0] - pos) > 0.3  # really jittered
    (means,) = _by_gid(ax, "means")
    np.testing.assert_array_equal(means.get_xdata(), np.arange(len(levels)))
    expected = network.groupby("Trial", observed=True)["dbh"].mean().to_numpy()
    np.testing.assert_allclose(means.get_ydata(), expected, rtol=1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(v) for v in levels]
    assert ax.get_xlabel() == "Trial" and ax.get_ylabel() == "dbh" and ax.get_title()
    assert 0.02 <= pts.get_alpha() <= 0.5
    _png(fig)


def test_overview_alpha_falls_with_the_number_of_points_and_max_points_samples(network):
    few = plots.overview(network.iloc[:200], "dbh", "Trial")
    many = plots.overview(network, "dbh", "Trial")
    a_few = _by_gid(few.axes[0], "points")[0].get_alpha()
    a_many = _by_gid(many.axes[0], "points")[0].get_alpha()
    assert a_few == 0.5 and a_many == pytest.approx(20 / np.sqrt(len(network)))
    fig = plots.overview(network, "dbh", "Trial", max_points=500, alpha=0.3)
    pts = _by_gid(fig.axes[0], "points")[0]
    assert len(pts.get_offsets()) == 500 and pts.get_alpha() == 0.3
    assert set(pts.get_offsets()[:, 1]) <= set(network["dbh"])
    expected = network.groupby("Trial", observed=True)["dbh"].mean().to_numpy()  # means of every record
    np.testing.assert_allclose(_by_gid(fig.axes[0], "means")[0].get_ydata(), expected)


def test_overview_of_a_model_is_its_response_by_the_first_fixed_factor(network, m):
    fig = plots.overview(m)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Trial" and ax.get_ylabel() == "dbh"
    xy = _by_gid(ax, "points")[0].get_offsets()
    np.testing.assert_array_equal(xy[:, 1], network["dbh"].to_numpy())
    expected = network.groupby("Trial", observed=True)["dbh"].mean().to_numpy()
    np.testing.assert_allclose(_by_gid(ax, "means")[0].get_ydata(), expected)


def test_overview_draws_on_a_given_axes_and_keeps_a_numeric_factors_sorted_levels():
    df = pd.DataFrame({"site": [30, 10, 20, 10, 30], "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.overview(df, "y", "site", ax=ax) is fig
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "20", "30"]
    np.testing.assert_allclose(_by_gid(ax, "means")[0].get_ydata(), [3.0, 3.0, 3.0])
    x = _by_gid(ax, "points")[0].get_offsets()[:, 0]
    np.testing.assert_array_equal(np.round(x), [2, 0, 1, 0, 2])


def test_overview_refuses_a_missing_column_or_a_text_response(network):
    with pytest.raises(ModelError, match="'height'"):
        plots.overview(network, "height", "Trial")
    with pytest.raises(ModelError, match="'Site'"):
        plots.overview(network, "dbh", "Site")
    df = network.assign(grade=np.where(network["dbh"] > 200, "big", "small"))
    with pytest.raises(ModelError, match="'grade' is not numeric.*pd.to_numeric"):
        plots.overview(df, "grade", "Trial")


def test_overview_of_two_million_points_is_one_rasterized_scatter_and_renders():
    n = 2_000_000
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"Trial": pd.Categorical(rng.integers(1, 32, n)), "dbh": rng.normal(200, 30, n)})
    t0 = time.perf_counter()
    fig = plots.overview(df, "dbh", "Trial")
    ax = fig.axes[0]
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(scatters) == 1 and scatters[0].get_rasterized() and len(scatters[0].get_offsets()) == n
    assert scatters[0].get_alpha() == pytest.approx(0.02)
    _png(fig)
    assert time.perf_counter() - t0 < 30


# -- caterpillar and ranking ---------------------------------------------------------------------------
def test_caterpillar_sorts_the_blups_and_draws_z_sqrt_pev_intervals(m):
    b = m.blups("Mother").sort_values("BLUP")
    fig = plots.caterpillar(m, "Mother", level=0.9)
    ax = fig.axes[0]
    (pts,) = _by_gid(ax, "blups")
    np.testing.assert_allclose(pts.get_ydata(), b["BLUP"].to_numpy())
    assert np.all(np.diff(pts.get_ydata()) >= 0)
    (iv,) = _by_gid(ax, "intervals")
    assert isinstance(iv, LineCollection)
    segs = np.array(iv.get_segments())
    z = NormalDist().inv_cdf(0.95)
    np.testing.assert_allclose((segs[:, 1, 1] - segs[:, 0, 1]) / 2, z * np.sqrt(b["PEV"].to_numpy()), rtol=1e-12)
    np.testing.assert_allclose(segs[:, :, 1].mean(axis=1), b["BLUP"].to_numpy(), atol=1e-9)
    np.testing.assert_array_equal(segs[:, 0, 0], np.arange(len(b)))
    assert ax.get_ylabel() == "BLUP" and "Mother" in ax.get_title()
    _png(fig)


def test_caterpillar_band_edges_are_the_interval_ends(m):
    b = m.blups("Mother").sort_values("BLUP")
    fig = plots.caterpillar(m, "Mother", band=True)
    ax = fig.axes[0]
    (iv,) = _by_gid(ax, "intervals")
    verts = iv.get_paths()[0].vertices
    half = NormalDist().inv_cdf(0.975) * np.sqrt(b["PEV"].to_numpy())
    x = np.arange(len(b))
    for xi, lo, hi in [(x[0], *(b["BLUP"].iloc[0] + np.array([-1, 1]) * half[0])),
                       (x[-1], *(b["BLUP"].iloc[-1] + np.array([-1, 1]) * half[-1]))]:
        at = verts[np.isclose(verts[:, 0], xi)]
        assert np.isclose(at[:, 1].min(), lo, rtol=1e-12) and np.isclose(at[:, 1].max(), hi, rtol=1e-12)
    (line,) = _by_gid(ax, "blups")
    np.testing.assert_allclose(line.get_ydata(), b["BLUP"].to_numpy())
    assert len(b) < plots.model.BAND_FROM  # the default for this term is the segments
    assert isinstance(_by_gid(plots.caterpillar(m, "Mother").axes[0], "intervals")[0], LineCollection)


def test_caterpillar_top_keeps_the_largest(m):
    b = m.blups("Trial:Mother")
    fig = plots.caterpillar(m, "Trial:Mother", top=10)
    ax = fig.axes[0]
    y = _by_gid(ax, "blups")[0].get_ydata()
    np.testing.assert_allclose(y, np.sort(b["BLUP"].to_numpy())[-10:])
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [str(v) for v in b.sort_values("BLUP", kind="stable").index[-10:]]


def test_caterpillars_put_each_models_caterpillar_side_by_side(network, backend, m):
    m1 = sr.fit("dbh ~ Trial", random="~ Trial:Block + Mother", data=network, backend=backend)
    fig = plots.caterpillars([m, m1], "Mother", names=["full", "small"])
    assert len(fig.axes) == 2 and fig.axes[0].get_shared_y_axes().joined(*fig.axes)
    for ax, model, name in zip(fig.axes, [m, m1], ["full", "small"]):
        b = model.blups("Mother").sort_values("BLUP", kind="stable")
        np.testing.assert_allclose(_by_gid(ax, "blups")[0].get_ydata(), b["BLUP"].to_numpy())
        segs = np.array(_by_gid(ax, "intervals")[0].get_segments())
        z = NormalDist().inv_cdf(0.975)
        np.testing.assert_allclose((segs[:, 1, 1] - segs[:, 0, 1]) / 2, z * np.sqrt(b["PEV"].to_numpy()), rtol=1e-12)
        assert ax.get_title() == f"{name} ({len(b):,} levels)"
    assert fig.axes[0].get_legend() is not None and fig.axes[1].get_legend() is None
    with pytest.raises(ModelError, match="2 names for 1 models"):
        plots.caterpillars([m], "Mother", names=["a", "b"])
    with pytest.raises(ModelError, match="'Trial:Mother'"):
        plots.caterpillars([m, m1], "Trial:Mother")  # not a term of m1
    _png(fig)


def test_compared_residuals_and_traces_draw_each_model_as_alone(network, backend, m):
    """Panel k of the side-by-side figures holds what residuals() and trace() draw for model k."""
    m1 = sr.fit("dbh ~ Trial", random="~ Trial:Block + Mother", data=network, backend=backend)
    fig = plots.compared_residuals([m, m1], names=["full", "small"])
    assert len(fig.axes) == 2 and fig.axes[0].get_shared_y_axes().joined(*fig.axes)
    for ax, model, name in zip(fig.axes, [m, m1], ["full", "small"]):
        alone = plots.residuals(model).axes[0]
        pcs, ref = _by_gid(ax, "points"), _by_gid(alone, "points")
        assert len(pcs) == len(ref) == len(model.design.residual.labels)
        for pc, r in zip(pcs, ref):
            np.testing.assert_array_equal(pc.get_offsets(), r.get_offsets())
        assert ax.get_title().startswith(name)
    assert fig.axes[0].get_title() == "full (4 residual groups)" and fig.axes[1].get_title() == "small"
    fig = plots.compared_traces([m, m1], names=["full", "small"])
    assert len(fig.axes) == 4
    for k, (model, name) in enumerate(zip([m, m1], ["full", "small"])):
        top, bottom = fig.axes[2 * k], fig.axes[2 * k + 1]
        np.testing.assert_allclose(top.lines[0].get_ydata(), model.iterations["loglik"].to_numpy())
        assert {ln.get_label() for ln in bottom.lines if not ln.get_label().startswith("_")} == set(model.labels)
        assert top.get_title().startswith(f"{name}: REML iterations")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    leg = fig.axes[1].get_legend()  # inside its axes, not over the next column
    assert leg is not None and leg.get_window_extent().x1 <= fig.axes[1].bbox.x1
    with pytest.raises(ModelError, match="1 names for 2 models"):
        plots.compared_traces([m, m1], names=["a"])
    with pytest.raises(ModelError, match="takes a list of fitted models.*not a FittedModel"):
        plots.compared_residuals(m)
    with pytest.raises(ModelError, match="model 2 is a str"):
        plots.compared_traces([m, "m1"])
    _png(fig)


def test_ranking_bars_are_the_top_blups_with_their_accuracy(m):
    b = m.blups("Mother").sort_values("BLUP", ascending=False).iloc[:12]
    s2 = m.varcomp.loc["Mother", "component"]
    fig = plots.ranking(m, "Mother", top=12)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_gid() == "blups"]
    assert len(bars) == 12
    np.testing.assert_allclose([p.get_width() for p in bars], b["BLUP"].to_numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(v) for v in b.index]
    acc = np.sqrt(1 - b["PEV"].to_numpy() / s2)
    assert np.all((acc > 0.2) & (acc < 1))
    texts = [t.get_text() for t in ax.texts]
    assert texts == [f"acc {a:.2f}" for a in acc]
    assert ax.yaxis_inverted()  # the largest at the top
    _png(fig)


def test_unknown_terms_and_terms_with_several_variances_are_refused(network, backend, m):
    with pytest.raises(ModelError, match="'Father'"):
        plots.caterpillar(m, "Father")
    with pytest.raises(ModelError, match="'Father'"):
        plots.ranking(m, "Father")
    m2c = sr.fit("dbh ~ Trial", random="~ at(Trial):Block + Mother", data=network, backend=backend)
    term = next(t for t in m2c.random_terms if t.startswith("at("))
    with pytest.raises(ModelError, match="one variance.*" + term.replace("(", r"\(").replace(")", r"\)")):
        plots.ranking(m2c, term)
    plots.caterpillar(m2c, term)  # drawable: one PEV per level


# -- residuals and trace -------------------------------------------------------------------------------
def test_residual_plot_draws_fitted_against_residual_per_group(m):
    fig = plots.residuals(m)
    ax = fig.axes[0]
    groups = m.design.residual
    pcs = _by_gid(ax, "points")
    assert len(pcs) == len(groups.labels) == 4
    fitted, res = m.fitted.to_numpy(), m.residuals.to_numpy()
    for k, pc in enumerate(pcs):
        on = groups.record_group == k
        assert pc.get_label() == str(groups.labels[k]) and pc.get_rasterized()
        np.testing.assert_allclose(pc.get_offsets(), np.column_stack([fitted[on], res[on]]))
    assert sum(len(pc.get_offsets()) for pc in pcs) == m.nobs
    assert ax.get_xlabel() == "fitted value" and ax.get_ylabel() == "residual"
    _png(fig)


def test_trace_draws_the_iteration_history(m):
    fig = plots.trace(m)
    top, bottom = fig.axes
    it = m.iterations
    line = top.lines[0]
    np.testing.assert_array_equal(line.get_xdata(), it.index.to_numpy())
    np.testing.assert_allclose(line.get_ydata(), it["loglik"].to_numpy())
    lines = {ln.get_label(): ln for ln in bottom.lines if not ln.get_label().startswith("_")}
    assert set(lines) == set(m.labels)
    for lab, ln in lines.items():
        np.testing.assert_allclose(ln.get_ydata(), it[lab].to_numpy() / it[lab].to_numpy()[-1])
        assert ln.get_ydata()[-1] == pytest.approx(1.0)
    assert top.get_ylabel() and bottom.get_xlabel() == "iteration"
    _png(fig)
