"""PointCloud paints what matplotlib's own scatter paints (reference: Agg's marker drawing, pixel
for pixel where its 8-bit blending is exact) and, for many faint points, the exact alpha
compositing 1 - prod(1 - alpha w)."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sparsereml.plots.points import PointCloud, point_cloud  # noqa: E402


def _pixels(draw, limits=(-0.2, 1.2)) -> np.ndarray:
    fig = Figure(figsize=(4, 3), dpi=100)
    ax = fig.add_subplot()
    out = draw(ax)
    ax.set_xlim(*limits)
    ax.set_ylim(*limits)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).astype(int), out


@pytest.mark.parametrize("alpha,size,marker", [(1.0, 4, "o"), (0.5, 4, "o"), (0.3, 20, "o"), (0.7, 30, "s")])
def test_sparse_points_are_agg_scatter_pixel_for_pixel(alpha, size, marker):
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-0.5, 1.5, 60), rng.uniform(-0.5, 1.5, 60)  # some beyond the axes: clipped as Agg does
    kw = dict(s=size, alpha=alpha, color="tab:orange", marker=marker)
    ref, _ = _pixels(lambda ax: ax.scatter(x, y, linewidths=0, rasterized=True, **kw))
    got, pc = _pixels(lambda ax: point_cloud(ax, x, y, **kw))
    assert isinstance(pc, PathCollection) and pc.get_rasterized()
    np.testing.assert_array_equal(pc.get_offsets(), np.column_stack([x, y]))
    assert np.abs(ref - got).max() <= 3  # Agg rounds each blend to 8 bits


def test_many_faint_points_composite_exactly():
    """n points on one spot: the marker's centre pixel (coverage 1) has opacity 1 - (1 - alpha)^n."""
    n, alpha = 150, 0.03
    x, y = np.full(n, 0.5), np.full(n, 0.5)
    got, pc = _pixels(lambda ax: point_cloud(ax, x, y, s=30, alpha=alpha, color="black"))
    cx, cy = pc.axes.transData.transform((0.5, 0.5))
    row, col = got.shape[0] - int(np.floor(cy + 0.5)), int(np.floor(cx + 0.5))  # the pixel Agg centres it on
    opacity = 1 - (1 - alpha) ** n
    assert got[row, col, 0] == pytest.approx(255 * (1 - opacity), abs=1)
    ref, _ = _pixels(lambda ax: ax.scatter(x, y, s=30, alpha=alpha, color="black", linewidths=0))
    assert abs(ref[row, col, 0] - got[row, col, 0]) <= 10  # Agg, blending 150 times in 8 bits, is near


def test_outside_a_simple_look_it_draws_as_a_scatter():
    """Colours per point (or edges) are drawn by PathCollection itself: the same pixels as scatter."""
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 1, 40), rng.uniform(0, 1, 40)
    colors = [to_rgba(c) for c in rng.choice(["red", "blue", "green"], 40)]

    def cloud(ax):
        pc = point_cloud(ax, x, y, s=25)
        pc.set_facecolor(colors)
        return pc

    ref, _ = _pixels(lambda ax: ax.scatter(x, y, s=25, c=colors, linewidths=0))
    got, _ = _pixels(cloud)
    np.testing.assert_array_equal(ref, got)


def test_legend_and_vector_files():
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    rng = np.random.default_rng(4)
    point_cloud(ax, rng.normal(size=50_000), rng.normal(size=50_000), alpha=0.05, label="trees", gid="points")
    leg = ax.legend()
    assert isinstance(leg.legend_handles[0], PointCloud) and leg.get_texts()[0].get_text() == "trees"
    for fmt in ("png", "pdf", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt)
        assert 0 < buf.tell() < 2_000_000  # the points are one image, not 50,000 markers


def test_nothing_visible_draws_nothing():
    empty, _ = _pixels(lambda ax: None)
    got, _ = _pixels(lambda ax: point_cloud(ax, [5.0, np.nan], [5.0, 0.5]))  # beyond the limits, or NaN
    np.testing.assert_array_equal(empty, got)
