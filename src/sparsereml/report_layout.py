"""Margins of a report figure measured from its labels, without drawing it first.

Constrained layout measures every text of a figure in a pass of its own before drawing it, a fifth
of the drawing's cost; a report's figures are grids of subplots whose outside texts are known: the
tick labels (from the axis' locator and formatter, as the drawing will make them), the axis
labels, the titles and a legend put outside on the right.  :func:`place_axes` measures those and
sets the subplots' positions; :func:`drawn_to_the_edge` tells, once drawn, whether anything still
reaches the figure's edge (a long title, an annotation), for the caller to lay it out again.
"""
from __future__ import annotations

import matplotlib as mpl
import numpy as np
from matplotlib.ticker import FixedLocator, NullLocator
from matplotlib.transforms import ScaledTranslation

__all__ = ["place_axes", "drawn_to_the_edge"]

#: space kept free along the figure's edges, inches
EDGE = 0.08
#: tick labels measured per axis, the longest by characters (the rest are assumed no wider)
MEASURED = 8


try:  # matplotlib's own cache of text sizes: the drawing then finds the tick labels measured
    from matplotlib.text import _get_text_metrics_with_cache
except ImportError:  # pragma: no cover - a matplotlib without it measures each text twice
    _get_text_metrics_with_cache = None


def _text_size(renderer, text: str, prop) -> tuple[float, float]:
    """Width and height (pixels) of one line of plain text."""
    if _get_text_metrics_with_cache is not None:
        w, h, _ = _get_text_metrics_with_cache(renderer, text, prop, False, renderer.dpi)
    else:
        w, h, _ = renderer.get_text_width_height_descent(text, prop, ismath=False)
    return w, h


def _reach(axis, renderer) -> tuple[float, float]:
    """How far (pixels) an axis' tick labels and label reach out from the axes, and half the
    largest tick label along the axis (an end label's overhang beyond the axes)."""
    points = axis.figure.dpi / 72.0
    across_is_width = axis.axis_name == "y"  # a y axis' horizontal labels stand out by their width
    reach = half = 0.0
    tick = axis.get_major_ticks(1)[0]
    if tick.label1.get_visible():
        locs = axis.get_majorticklocs()
        lo, hi = sorted(axis.get_view_interval())
        shown = {s for v, s in zip(locs, axis.get_major_formatter().format_ticks(locs)) if lo <= v <= hi and s}
        if shown:
            prop, turned = tick.label1.get_fontproperties(), tick.label1.get_rotation() % 180 == 90
            sizes = [_text_size(renderer, s, prop) for s in sorted(shown, key=len)[-MEASURED:]]
            out = 0 if across_is_width != turned else 1
            reach += max(s[out] for s in sizes)
            half = max(s[1 - out] for s in sizes) / 2
        reach += (tick.get_tick_padding() + tick.get_pad()) * points
    elif tick.tick1line.get_visible():
        reach += tick.get_tick_padding() * points
    if axis.label.get_visible() and axis.label.get_text():
        reach += axis.labelpad * points
        _pin_label(axis, reach)
        reach += _text_size(renderer, axis.label.get_text(), axis.label.get_fontproperties())[1]
    return reach, half


def _pin_label(axis, distance: float) -> None:
    """Put a left y or bottom x axis label ``distance`` pixels out from the axes, beyond its tick
    labels: where matplotlib would put it after measuring every tick label again at drawing."""
    fig = axis.figure
    if axis.get_label_position() not in ("left", "bottom"):
        return
    d = distance / fig.dpi
    shift = ScaledTranslation(-d, 0, fig.dpi_scale_trans) if axis.axis_name == "y" else \
        ScaledTranslation(0, -d, fig.dpi_scale_trans)
    x, y = (0.0, 0.5) if axis.axis_name == "y" else (0.5, 0.0)
    axis.set_label_coords(x, y, transform=axis.axes.transAxes + shift)


def _title_reach(ax, renderer) -> float:
    """How far (pixels) the axes' titles (and a y offset text such as 1e6) reach above it."""
    points = ax.figure.dpi / 72.0
    heights = [_text_size(renderer, text, ax.title.get_fontproperties())[1]
               for text in (ax.get_title(loc) for loc in ("center", "left", "right")) if text]
    reach = max(heights) + mpl.rcParams["axes.titlepad"] * points if heights else 0.0
    formatter = ax.yaxis.get_major_formatter()
    if hasattr(formatter, "get_offset") and formatter.get_offset():
        offset = _text_size(renderer, formatter.get_offset(), ax.yaxis.offsetText.get_fontproperties())[1]
        reach = max(reach, offset + 4 * points)
    return reach


def _fix_titles(ax) -> None:
    """Titles at the top of the axes, no longer moved at each drawing above what could be there
    (x tick labels on top, a y offset text): measuring that costs a pass over the y tick labels."""
    formatter = ax.yaxis.get_major_formatter()
    if ax.xaxis.get_major_ticks(1)[0].label2.get_visible() or ax.xaxis.get_label_position() == "top" or (
            hasattr(formatter, "get_offset") and formatter.get_offset()):
        return
    if any(ax.get_title(loc) for loc in ("center", "left", "right")):
        # a position given to one title fixes them all; the centre one is given its own font and
        # colour again, as set_title would reset them
        font = ax.title.get_fontproperties().copy()  # a copy: set_title resets the title's own
        ax.set_title(ax.title.get_text(), loc="center", y=1.0, fontproperties=font, color=ax.title.get_color())


def _legend_reach(ax, renderer) -> float:
    """The width (pixels) of a legend put outside the axes on the right, else 0."""
    leg = ax.get_legend()
    if leg is None or leg.get_bbox_to_anchor().x0 < ax.bbox.x1 - 1:
        return 0.0
    box = leg.get_window_extent(renderer)
    return box.x1 - ax.bbox.x1


def place_axes(fig, renderer) -> None:
    """Give the figure's grid of subplots the room its outside texts need (measured with the Agg
    ``renderer`` that will draw it) and no layout engine.  Measured again once placed: the number
    of ticks, hence their labels, follows the axes' length."""
    fig.set_layout_engine(None)
    before = None
    for _ in range(3):  # until the labels measured are those of the axes as placed
        need = _measure(fig, renderer)
        if before is not None and np.array_equal(need, before):
            _clip_ticks(fig)
            return
        _place(fig, need)
        before = need
    _measure(fig, renderer)  # the axis labels beyond the tick labels the figure will have


def _clip_ticks(fig) -> None:
    """Fix each automatic axis' ticks to those inside its limits, as the axes are now placed: the
    locators also give one beyond each end, which matplotlib makes (a tick is five artists) and
    then leaves undrawn.  The ticks drawn and their labels are the same."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            loc = axis.get_major_locator()
            if isinstance(loc, (FixedLocator, NullLocator)):
                continue
            locs = axis.get_majorticklocs()
            lo, hi = sorted(axis.get_view_interval())
            axis.set_major_locator(FixedLocator([v for v in locs if lo <= v <= hi]))


def _measure(fig, renderer) -> np.ndarray:
    """What each subplot of the grid needs on its left, right, bottom and top (pixels); the axis
    labels are pinned beyond the tick labels measured."""
    rows, cols = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()
    grid: dict[tuple[int, int], list] = {}
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is None:
            continue
        (left, top_half), (bottom, right_half) = _reach(ax.yaxis, renderer), _reach(ax.xaxis, renderer)
        grid[(spec.rowspan.start, spec.colspan.start)] = [
            left, max(_legend_reach(ax, renderer), right_half), bottom, max(_title_reach(ax, renderer), top_half)]
        _fix_titles(ax)
    need = np.zeros((rows, cols, 4))
    for (r, c), sides in grid.items():
        need[r, c] = sides
    return need


def _place(fig, need: np.ndarray) -> None:
    """Subplot positions giving every subplot of the grid what it ``need``s (:func:`_measure`)."""
    rows, cols = need.shape[:2]
    edge = EDGE * fig.dpi
    left, right = need[:, 0, 0].max() + edge, need[:, -1, 1].max() + edge
    top, bottom = need[0, :, 3].max() + edge, need[-1, :, 2].max() + edge
    hgap = max((need[:-1, :, 2].max(axis=1) + need[1:, :, 3].max(axis=1)).max() if rows > 1 else 0.0, 0.0) + edge
    wgap = max((need[:, :-1, 1].max(axis=0) + need[:, 1:, 0].max(axis=0)).max() if cols > 1 else 0.0, 0.0) + edge
    w, h = fig.bbox.width, fig.bbox.height
    height = max(h - top - bottom - (rows - 1) * hgap, 0.2 * h) / rows
    width = max(w - left - right - (cols - 1) * wgap, 0.2 * w) / cols
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        hspace=hgap / height, wspace=wgap / width)


def drawn_to_the_edge(canvas) -> bool:
    """Whether anything is drawn on the outermost pixels of a drawn Agg canvas (a text that the
    margins cut)."""
    a = np.asarray(canvas.buffer_rgba())
    edge = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return bool((edge != a[0, 0]).any())
