"""Many points of one colour drawn as one image.

A scatter of 184,000 residuals or two million trees is most of its figure's drawing time when
Agg paints the marker once per point.  :class:`PointCloud` is the scatter's ``PathCollection``
(its offsets, colour, size, label and legend entry are the same) that paints itself instead as
one image: the marker's footprint as Agg rasterizes it (found once, on a tiny canvas), and per
pixel the light let through by every point that covers it, prod (1 - alpha w) over the points
with coverage w.  That is what painting one point over another gives for a single colour, in
floating point (Agg rounds each point's blend to 8 bits: where thousands of faint points pile up
the two differ by a few levels).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from matplotlib.artist import allow_rasterization
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba
from matplotlib.markers import MarkerStyle
from matplotlib.path import Path
from matplotlib.transforms import Affine2D, IdentityTransform

__all__ = ["PointCloud", "point_cloud"]


@lru_cache(maxsize=32)
def _footprint(vertices: bytes, codes: bytes | None, shape: tuple, scale: float) -> tuple:
    """The coverage (0..1) of a marker path scaled by ``scale`` pixels as Agg draws it, and the
    rows' and columns' offsets of its pixels from the point's pixel (Agg puts a marker on the
    pixel nearest its centre)."""
    from matplotlib.backends.backend_agg import RendererAgg

    path = Path(np.frombuffer(vertices).reshape(shape),
                None if codes is None else np.frombuffer(codes, dtype=Path.code_type))
    r = int(np.ceil(scale)) + 2
    k = 2 * r + 1
    canvas = RendererAgg(k, k, 72.0)
    gc = canvas.new_gc()
    gc.set_linewidth(0)
    canvas.draw_markers(gc, path, Affine2D().scale(scale), Path([[r, r]]), IdentityTransform(), (0, 0, 0, 1))
    gc.restore()
    cover = np.asarray(canvas.buffer_rgba())[..., 3].astype(float) / 255.0
    rows, cols = np.nonzero(cover)
    return cover[rows, cols], rows - (k - r), cols - r


class PointCloud(PathCollection):
    """A ``PathCollection`` of same-size, one-colour, edgeless markers painted as one image (see
    the module).  Any other collection (colours per point, edges, hatches) is drawn as matplotlib
    draws a scatter."""

    def _one_look(self) -> bool:
        return (len(self.get_paths()) == 1 and len(self.get_sizes()) == 1 and len(self.get_facecolor()) == 1
                and not self.get_hatch() and float(np.max(self.get_linewidth(), initial=0.0)) == 0.0
                and isinstance(self.get_transform(), IdentityTransform))

    @allow_rasterization
    def draw(self, renderer) -> None:
        if not self.get_visible():
            return
        if not self._one_look():
            super().draw(renderer)
            return
        xy = np.asarray(self.get_offsets(), dtype=float).reshape(-1, 2)
        xy = self.get_offset_transform().transform(xy[np.isfinite(xy).all(axis=1)])
        rgba = np.asarray(self.get_facecolor()[0], dtype=float)
        path = self.get_paths()[0]
        scale = np.sqrt(float(self.get_sizes()[0])) * renderer.points_to_pixels(1.0)
        cover, drow, dcol = _footprint(np.ascontiguousarray(path.vertices, dtype=float).tobytes(),
                                       None if path.codes is None else path.codes.tobytes(),
                                       path.vertices.shape, float(scale))
        image = _paint(xy, renderer.get_canvas_width_height(), rgba, cover, drow, dcol, self.get_clip_box())
        if image is None:
            return
        pixels, left, bottom = image
        renderer.open_group("pointcloud", self.get_gid())
        gc = renderer.new_gc()
        self._set_gc_clip(gc)
        gc.set_gid(self.get_gid())
        renderer.draw_image(gc, left, bottom, pixels[::-1])  # its first row at the bottom
        gc.restore()
        renderer.close_group("pointcloud")
        self.stale = False


def _paint(xy: np.ndarray, size: tuple, rgba: np.ndarray, cover: np.ndarray, drow: np.ndarray,
           dcol: np.ndarray, box=None) -> tuple | None:
    """The RGBA image (top row first) of the points ``xy`` (display pixels, y up, on a canvas of
    ``size`` = (width, height) pixels) painted with ``rgba``, and its left and bottom edges; only
    what falls in ``box`` (a display Bbox, e.g. the axes' clip box) and on the canvas.  None
    without points or colour there."""
    width, height = (int(v) for v in size)
    col = np.floor(xy[:, 0] + 0.5).astype(np.int64)  # Agg's marker positions
    row = height - np.floor(xy[:, 1] + 0.5).astype(np.int64)
    lo_c, hi_c, lo_r, hi_r = 0, width - 1, 0, height - 1
    if box is not None:
        lo_c, hi_c = max(lo_c, int(np.floor(box.x0))), min(hi_c, int(np.ceil(box.x1)))
        lo_r, hi_r = max(lo_r, height - int(np.ceil(box.y1))), min(hi_r, height - int(np.floor(box.y0)))
    # the points whose footprint reaches the region
    on = ((col + dcol.max() >= lo_c) & (col + dcol.min() <= hi_c) & (row + drow.max() >= lo_r)
          & (row + drow.min() <= hi_r))
    if not on.any() or cover.size == 0 or rgba[3] <= 0:
        return None
    row, col = row[on], col[on]
    rmin, cmin = row.min(), col.min()
    R, C = row.max() - rmin + 1, col.max() - cmin + 1
    centres = np.bincount((row - rmin) * C + (col - cmin), minlength=R * C).reshape(R, C).astype(float)
    dark = np.zeros((R + drow.max() - drow.min(), C + dcol.max() - dcol.min()))  # log of the light let through
    for w, dr, dc in zip(np.log1p(-np.minimum(rgba[3] * cover, 1.0 - 1e-12)), drow - drow.min(), dcol - dcol.min()):
        dark[dr:dr + R, dc:dc + C] += w * centres
    top, left = rmin + drow.min(), cmin + dcol.min()  # canvas row and column of dark[0, 0]
    r0, c0 = max(top, lo_r), max(left, lo_c)
    r1, c1 = min(top + dark.shape[0] - 1, hi_r), min(left + dark.shape[1] - 1, hi_c)
    dark = dark[r0 - top:r1 - top + 1, c0 - left:c1 - left + 1]
    pixels = np.empty(dark.shape + (4,), dtype=np.uint8)
    pixels[..., :3] = np.round(255.0 * rgba[:3]).astype(np.uint8)
    pixels[..., 3] = np.round(-255.0 * np.expm1(dark)).astype(np.uint8)
    return pixels, float(c0), float(height - r1 - 1)


def point_cloud(ax: Axes, x, y, *, s: float = 4.0, color="tab:blue", alpha: float | None = None,
                marker: str = "o", label: str | None = None, gid: str | None = None) -> PointCloud:
    """Add the points (x, y) to ``ax`` as one rasterized :class:`PointCloud`, as
    ``ax.scatter(x, y, s=s, color=color, alpha=alpha, marker=marker, linewidths=0,
    rasterized=True)`` would, and return it."""
    style = MarkerStyle(marker)
    path = style.get_path().transformed(style.get_transform())
    pc = PointCloud((path,), sizes=[s], offsets=np.column_stack([np.asarray(x, float), np.asarray(y, float)]),
                    offset_transform=ax.transData, facecolors=[to_rgba(color)], linewidths=[0.0],
                    alpha=alpha, label=label, rasterized=True)
    pc.set_transform(IdentityTransform())
    if gid is not None:
        pc.set_gid(gid)
    ax.add_collection(pc)
    ax.autoscale_view()
    return pc
