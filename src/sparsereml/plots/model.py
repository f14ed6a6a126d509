"""Plots of the data and of a fitted model, each returned as a matplotlib Figure.

Every function draws on ``ax`` when given (and returns its figure), else on a new
:class:`matplotlib.figure.Figure` that belongs to no pyplot window, so nothing is shown or kept
alive by pyplot: save it with ``fig.savefig(path)`` or display it in a notebook.  Large sets of
points are one rasterized :class:`~sparsereml.plots.points.PointCloud` (a scatter's
``PathCollection`` painted as one image), so that a vector file (PDF, SVG) of two million trees
stays a few megabytes and draws in a fraction of the time of a marker per point.  What cannot be drawn is refused with a
:class:`~sparsereml.errors.ModelError` that names the column or term.
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd
import matplotlib
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..errors import ModelError, UnknownName
from ..records import factor_levels, level_codes
from .points import point_cloud

__all__ = ["overview", "caterpillar", "ranking", "residuals", "trace"]

#: matplotlib ``gid`` of the artists a test or a caller may want to find again.
POINTS, MEANS, INTERVALS, BLUPS = "points", "means", "intervals", "blups"


def _axes(ax: Axes | None, figsize=(8.0, 5.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _is_model(obj) -> bool:
    from ..fitresults import FitResults
    from ..results import FittedModel

    return isinstance(obj, (FittedModel, FitResults))


def _auto_alpha(n: int) -> float:
    """Point transparency from the number of points: 0.5 up to 1,600 points, 20 / sqrt(n) beyond,
    down to 0.02 from a million points."""
    return float(np.clip(20.0 / np.sqrt(max(n, 1)), 0.02, 0.5))


def _model_frame(model) -> tuple[pd.DataFrame, str, str]:
    """The response and the first factor of the first fixed term of a fitted model (or results)."""
    from ..records import records_and_names

    rec, names = records_and_names(model)
    if rec is None:
        raise ModelError(names["why"])
    if names.get("by") is None:
        raise ModelError(names["why_no_by"])
    by = pd.Categorical.from_codes(level_codes(rec["by"], names["by_levels"]), categories=names["by_levels"])
    frame = pd.DataFrame({names["response"]: rec["response"].to_numpy(), names["by"]: by})
    return frame, names["response"], names["by"]


def overview(data, response: str | None = None, by: str | None = None, *, jitter: float = 0.35,
             alpha: float | None = None, max_points: int | None = None, ax: Axes | None = None,
             seed: int = 0) -> Figure:
    """The response by a factor: every record a jittered, transparent point, each level's mean marked.

    Parameters
    ----------
    data : pandas.DataFrame or FittedModel
        The records.  For a fitted model, ``response`` and ``by`` are taken from it: its response
        (the records it used) by the first factor of the first term of its fixed formula (``Trial``
        for ``dbh ~ Trial + Age``; the first variable of an interaction ``Trial:Age``).
    response, by : str
        Column names: a numeric response and the factor whose levels make the columns (levels in
        the factor's order: a categorical's categories, else the sorted values).
    jitter : float
        Half-width of the horizontal spread of the points around their level's position (0 to 0.5).
    alpha : float, optional
        Transparency of the points; by default from their number n: 0.5 up to 1,600 points,
        20 / sqrt(n) beyond (0.2 for 10,000), 0.02 from a million.
    max_points : int, optional
        Draw at most this many points, drawn at random (``seed``); the means use every record.
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.
    seed : int
        Seed of the jitter and of the sample.

    Returns
    -------
    matplotlib.figure.Figure
        The points are one rasterized ``PathCollection`` (gid ``"points"``), the means one
        ``Line2D`` of markers (gid ``"means"``) at x = 0, 1, ... (the level's position).
    """
    if _is_model(data):
        if response is not None or by is not None:
            raise ModelError("overview(model) takes no response or by: they are the model's own; "
                             "call overview(data, response, by) to choose them")
        frame, response, by = _model_frame(data)
    else:
        if not isinstance(data, pd.DataFrame):
            raise ModelError(f"overview needs a pandas DataFrame or a fitted model, not {type(data).__name__}")
        if response is None or by is None:
            raise ModelError("overview(data, response, by): name the response column and the factor column")
        for name in (response, by):
            if name not in data.columns:
                raise ModelError(f"column {name!r} is not in the data (columns: "
                                 f"{', '.join(map(str, data.columns[:20]))}); pass one of its column names")
        frame = data
    y_all = frame[response]
    if not pd.api.types.is_numeric_dtype(y_all) or pd.api.types.is_bool_dtype(y_all):
        raise ModelError(f"column {response!r} is not numeric ({y_all.dtype}): the response of overview must be "
                         f"numbers; convert it (pd.to_numeric) or pass a numeric column")
    if not 0 <= jitter <= 0.5:
        raise ModelError(f"jitter={jitter}: give a half-width between 0 and 0.5")
    codes, labels = factor_levels(frame[by])
    y = y_all.to_numpy(dtype=float)
    keep = (codes >= 0) & np.isfinite(y)
    codes, y = codes[keep], y[keep]
    rng = np.random.default_rng(seed)
    if max_points is not None and codes.size > max_points:
        pick = np.sort(rng.choice(codes.size, size=int(max_points), replace=False))
        pc, py = codes[pick], y[pick]
    else:
        pc, py = codes, y
    x = pc + rng.uniform(-jitter, jitter, size=pc.size)
    counts = np.bincount(codes, minlength=len(labels))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.bincount(codes, weights=y, minlength=len(labels)) / counts
    fig, ax = _axes(ax)
    a = _auto_alpha(pc.size) if alpha is None else float(alpha)
    point_cloud(ax, x, py, s=4, alpha=a, color="tab:blue", gid=POINTS)
    (mk,) = ax.plot(np.arange(len(labels)), means, linestyle="none", marker="_", markersize=24,
                    markeredgewidth=2.5, color="black", label="mean", zorder=3)
    mk.set_gid(MEANS)
    step = -(-len(labels) // 60)  # at most 60 labels: more would print on top of each other
    ax.set_xticks(np.arange(0, len(labels), step), [str(v) for v in labels[::step]],
                  rotation=90 if len(labels) > 15 else 0)
    ax.set_xlim(-0.5 - jitter, len(labels) - 0.5 + jitter)
    ax.set_xlabel(str(by))
    ax.set_ylabel(str(response))
    ax.set_title(f"{response} by {by} ({codes.size:,} records, {len(labels)} levels)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: 'best' would scan every point
    return fig


def _blups(model, term: str) -> tuple[pd.DataFrame, str]:
    """The BLUP table of a random term and the name of its PEV column, or a refusal naming the term."""
    try:
        b = model.blups(term)
    except UnknownName as exc:
        raise UnknownName(str(exc)) from None
    pev = next((c for c in b.columns if str(c).upper().startswith("PEV")), None)
    if pev is None or "BLUP" not in b.columns:
        raise ModelError(f"the BLUPs of {term!r} have no BLUP and PEV columns to draw (columns: "
                         f"{', '.join(map(str, b.columns))})")
    return b, pev


#: from this many levels a caterpillar draws its intervals as one band (see caterpillar)
BAND_FROM = 2000


def caterpillar(model, term: str, *, top: int | None = None, level: float = 0.95, band: bool | None = None,
                ax: Axes | None = None) -> Figure:
    """The BLUPs of a random term in increasing order, each with its prediction interval.

    Parameters
    ----------
    model : FittedModel
    term : str
        A random term of the model (``model.random_terms``), e.g. ``"Mother"``.
    top : int, optional
        Keep only the ``top`` largest BLUPs.
    level : float
        Coverage of the intervals BLUP +- z sqrt(PEV), z the normal quantile (1.96 for 0.95).
    band : bool, optional
        Draw the intervals as one shaded band through their ends and the BLUPs as a line, instead
        of a segment and a dot per level.  By default a band from :data:`BAND_FROM` levels, where
        the segments would merge into one anyway and cost far more to draw.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        The BLUPs are one ``Line2D`` (gid ``"blups"``) at x = 0, 1, ... in increasing order, the
        intervals one ``LineCollection`` (gid ``"intervals"``) of vertical segments, or with a
        band one ``PolyCollection`` (gid ``"intervals"``) whose lower and upper edges are the
        intervals' ends.
    """
    if not 0 < level < 1:
        raise ModelError(f"level={level}: give a coverage between 0 and 1, e.g. 0.95")
    b, pev = _blups(model, term)
    b = b.sort_values("BLUP", kind="stable")
    if top is not None:
        if int(top) < 1:
            raise ModelError(f"top={top}: keep at least one BLUP of {term!r}")
        b = b.iloc[-int(top):]
    z = NormalDist().inv_cdf(0.5 + level / 2)
    u = b["BLUP"].to_numpy(dtype=float)
    half = z * np.sqrt(np.clip(b[pev].to_numpy(dtype=float), 0, None))
    x = np.arange(u.size)
    fig, ax = _axes(ax)
    if band if band is not None else u.size >= BAND_FROM:
        iv = ax.fill_between(x, u - half, u + half, color="tab:blue", alpha=0.4, linewidth=0,
                             label=f"{100 * level:g}% intervals")
        (pt,) = ax.plot(x, u, color="black", linewidth=1.0, label="BLUP")
    else:
        segments = np.stack([np.column_stack([x, u - half]), np.column_stack([x, u + half])], axis=1)
        iv = ax.add_collection(LineCollection(segments, colors="tab:blue", alpha=0.6, linewidths=1.0,
                                              label=f"{100 * level:g}% interval"))  # vlines' masked arrays cost more
        ax.autoscale_view()
        (pt,) = ax.plot(x, u, linestyle="none", marker="o", markersize=3, color="black", label="BLUP")
    iv.set_gid(INTERVALS)
    pt.set_gid(BLUPS)
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
    if u.size <= 40:
        ax.set_xticks(x, [str(v) for v in b.index], rotation=90)
    ax.set_xlabel(f"{term} (levels ordered by BLUP)")
    ax.set_ylabel("BLUP")
    shown = f"top {u.size} of {len(model.blups(term))}" if top is not None else f"{u.size} levels"
    ax.set_title(f"BLUPs of {term} with {100 * level:g}% intervals ({shown})")
    ax.legend(loc="upper left")
    return fig


def ranked_blups(model, term: str) -> tuple[pd.DataFrame, float]:
    """The BLUPs of a term with one variance sigma2, largest first, with ``accuracy`` =
    sqrt(1 - PEV / sigma2); and sigma2.  ModelError for a term with several variances or a zero one."""
    b, pev = _blups(model, term)
    cov = model.vcov(term)["covariance"]
    if cov.shape != (1, 1):
        raise ModelError(f"ranking needs a term with one variance for its accuracy, and {term!r} has a "
                         f"{cov.shape[0]} x {cov.shape[1]} covariance ({', '.join(map(str, cov.index))}): "
                         f"use caterpillar(model, {term!r}) or a term with one variance")
    s2 = float(cov.iloc[0, 0])
    if not s2 > 0:
        raise ModelError(f"the variance of {term!r} is {s2:g}: its BLUPs are all 0 and have no accuracy to rank")
    b = b.sort_values("BLUP", ascending=False, kind="stable")
    return b.assign(accuracy=np.sqrt(np.clip(1.0 - b[pev].to_numpy(dtype=float) / s2, 0.0, 1.0))), s2


def ranking(model, term: str, *, top: int = 30, ax: Axes | None = None) -> Figure:
    """The ``top`` largest BLUPs of a random term as horizontal bars, annotated with their accuracy.

    Accuracy = sqrt(1 - PEV / sigma2), sigma2 the term's variance, so the term must have exactly
    one variance (``Mother``, not ``at(Trial):Block`` or a ``us()`` term).  For a ``vm()`` term
    this ignores inbreeding; :meth:`FittedModel.breeding_values` gives the exact accuracy.

    Parameters
    ----------
    model : FittedModel
    term : str
        A random term with one variance.
    top : int
        Number of bars, the largest BLUP at the top.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One bar per level (``ax.patches``, width = BLUP, largest first), each with a text
        ``"acc 0.83"`` at its end.
    """
    if int(top) < 1:
        raise ModelError(f"top={top}: show at least one BLUP of {term!r}")
    ranked, s2 = ranked_blups(model, term)
    b = ranked.iloc[:int(top)]
    u = b["BLUP"].to_numpy(dtype=float)
    acc = b["accuracy"].to_numpy(dtype=float)
    fig, ax = _axes(ax, figsize=(7.0, max(3.0, 0.25 * u.size + 1.2)))
    y = np.arange(u.size)
    bars = ax.barh(y, u, color=[(0.12, 0.47, 0.71, 0.35 + 0.65 * a) for a in acc], edgecolor="tab:blue")
    span = float(np.max(np.abs(u))) if u.size else 1.0
    for yi, ui, ai in zip(y, u, acc):
        ax.text(ui + 0.01 * span * (1 if ui >= 0 else -1), yi, f"acc {ai:.2f}", va="center",
                ha="left" if ui >= 0 else "right", fontsize=8)
    ax.set_yticks(y, [str(v) for v in b.index])
    ax.invert_yaxis()
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.margins(x=0.15)
    ax.set_xlabel(f"BLUP (accuracy = sqrt(1 - PEV / {s2:.4g}))")
    ax.set_ylabel(term)
    ax.set_title(f"Top {u.size} of {len(model.blups(term))} {term} by BLUP")
    for bar in bars:
        bar.set_gid(BLUPS)
    return fig


def residuals(model, *, ax: Axes | None = None) -> Figure:
    """Residuals against fitted values, one colour per residual group (e.g. per trial under
    ``at(Trial):units``), every group one rasterized ``PathCollection`` labelled with the group.

    Parameters
    ----------
    model : FittedModel
    ax : matplotlib Axes, optional
        Draw here (the legend of up to 20 residual groups then goes inside it, not on its right).

    Returns
    -------
    matplotlib.figure.Figure
        ``ax.collections[k]`` holds the (fitted, residual) points of residual group ``k``
        (``model.design.residual.labels[k]``), its label the group's.
    """
    from ..records import grids_of, records_of

    rec = records_of(model)
    fitted = rec["fitted"].to_numpy(dtype=float)
    res = rec["residual"].to_numpy(dtype=float)
    labels = grids_of(model)[0]
    rg = level_codes(rec["group"], labels)
    own = ax is None
    fig, ax = _axes(ax)
    a = _auto_alpha(fitted.size)
    cmap = matplotlib.colormaps["tab20" if len(labels) > 10 else "tab10"]
    for k, lab in enumerate(labels):
        on = rg == k
        one = len(labels) == 1
        point_cloud(ax, fitted[on], res[on], s=4, alpha=a, color="tab:blue" if one else cmap(k % cmap.N),
                    label=str(lab), gid=POINTS)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("fitted value")
    ax.set_ylabel("residual")
    ax.set_title(f"Residuals against fitted values ({fitted.size:,} records"
                 + (f", {len(labels)} residual groups)" if len(labels) > 1 else ")"))
    if 1 < len(labels) <= 20:
        where = dict(loc="upper left", bbox_to_anchor=(1.0, 1.0)) if own else dict(loc="upper right")
        leg = ax.legend(**where, fontsize=7, markerscale=3, title="residual group")
        for h in leg.legend_handles:
            h.set_alpha(1.0)
    return fig


def trace(model, *, axes: tuple[Axes, Axes] | None = None) -> Figure:
    """The iterations (REML's; a GLMM's Laplace or PQL ones): logL by iteration (top) and every variance parameter relative to its
    final value (bottom, 1 at convergence), from ``model.iterations``.

    A parameter whose final value is 0 has no relative value and is left out (the title counts it).

    Parameters
    ----------
    model : FittedModel
    axes : (Axes, Axes), optional
        Draw on these (top, bottom) instead of a new figure; the parameters' legend then goes
        inside the bottom axes.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: ``fig.axes[0].lines[0]`` is logL by iteration, ``fig.axes[1].lines`` one line
        per parameter (label = the parameter's label).
    """
    it = model.iterations
    if "loglik" not in it.columns or it.empty:
        raise ModelError("this model has no iteration history to draw (m.iterations has no loglik)")
    params = [lab for lab in model.labels if lab in it.columns]
    if axes is None:
        fig = Figure(figsize=(8.0, 7.0), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True)
    else:
        top, bottom = axes
        fig = top.figure
    x = it.index.to_numpy()
    top.plot(x, it["loglik"].to_numpy(dtype=float), marker="o", color="black")
    kind = getattr(model, "likelihood", "REML")  # a GLMM's: Laplace, or PQL's working-variate REML
    top.set_ylabel(f"{kind} logL")
    top.ticklabel_format(axis="y", useOffset=False, style="plain")  # logL as printed, not -1.896e4 + ...
    top.set_title(f"{kind} iterations ({model.n_iterations}, "
                  f"{'converged' if model.converged else 'not converged'})")
    skipped = []
    for lab in params:
        v = it[lab].to_numpy(dtype=float)
        final = v[-1]
        if not np.isfinite(final) or final == 0:
            skipped.append(lab)
            continue
        bottom.plot(x, v / final, marker=".", label=lab)
    bottom.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    bottom.set_xlabel("iteration")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))  # no iteration 1.5
    bottom.set_ylabel("parameter / final value")
    bottom.set_title("variance parameters relative to their final value"
                     + (f" ({len(skipped)} with final value 0 left out)" if skipped else ""))
    if 0 < len(params) - len(skipped) <= 12:
        if axes is None:
            bottom.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        else:
            bottom.legend(loc="best", fontsize=7)  # a few points per line: 'best' is cheap here
    return fig
