"""Several fitted models side by side, one panel (or column) per model, as a comparison report
shows them: the caterpillars of one random term on one BLUP axis, the residuals on one residual
axis, the iteration traces.  Each panel is the single-model plot of :mod:`.model` drawn on it."""
from __future__ import annotations

from matplotlib.figure import Figure

from ..errors import ModelError
from .model import _is_model, caterpillar, residuals, trace

__all__ = ["caterpillars", "compared_residuals", "compared_traces"]


def _names(models: list, names: list | None, what: str) -> list[str]:
    """The panels' names, after checking that ``models`` is a list of fitted models or results."""
    if not isinstance(models, (list, tuple)):
        raise ModelError(f"{what} takes a list of fitted models, side by side, not a {type(models).__name__}; "
                         f"for one model call its single-model plot (caterpillar, residuals, trace)")
    if not models:
        raise ModelError(f"{what} needs at least one model")
    for k, m in enumerate(models):
        if not _is_model(m):
            raise ModelError(f"{what}: model {k + 1} is a {type(m).__name__}, not a fitted model (sr.fit(...)) "
                             f"or results read with FitResults.read(dir)")
    names = [f"model {k + 1}" for k in range(len(models))] if names is None else [str(n) for n in names]
    if len(names) != len(models):
        raise ModelError(f"{what}: {len(names)} names for {len(models)} models; give one name per model")
    return names


def _width(n: int) -> float:
    return 8.0 if n <= 2 else 11.0


def caterpillars(models: list, term: str, names: list | None = None, *, level: float = 0.95) -> Figure:
    """The caterpillars of one random term in several models side by side, on one BLUP axis.

    Parameters
    ----------
    models : list of FittedModel or FitResults
        Models that all have the random term ``term``.
    term : str
    names : list of str, optional
        The models' names, as the panels' titles (default "model 1", ...).
    level : float
        Coverage of the intervals, as :func:`~sparsereml.plots.caterpillar`.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[k]`` is the caterpillar of ``models[k]`` (as :func:`~sparsereml.plots.caterpillar`
        draws it on ``ax``) titled with its name and number of levels; the first holds the legend.
    """
    names = _names(models, names, f"caterpillars of {term!r}")
    n = len(models)
    fig = Figure(figsize=(_width(n), 4.8), layout="constrained")
    axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
    for k, (model, name, ax) in enumerate(zip(models, names, axes)):
        caterpillar(model, term, level=level, ax=ax)
        ax.set_title(f"{name} ({len(ax.get_lines()[0].get_xdata()):,} levels)")
        if k:  # one legend and one BLUP label for the row
            ax.get_legend().remove()
            ax.set_ylabel("")
    return fig


def compared_residuals(models: list, names: list | None = None) -> Figure:
    """The residuals against fitted values of several models side by side, on one residual axis.

    Parameters
    ----------
    models : list of FittedModel or FitResults
    names : list of str, optional
        The models' names, as the panels' titles (default "model 1", ...).

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[k]`` holds the residuals of ``models[k]`` as :func:`~sparsereml.plots.residuals`
        draws them on ``ax`` (one point collection per residual group), titled with its name.
    """
    names = _names(models, names, "compared_residuals")
    n = len(models)
    fig = Figure(figsize=(_width(n), 4.8), layout="constrained")
    axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
    for k, (model, name, ax) in enumerate(zip(models, names, axes)):
        residuals(model, ax=ax)
        groups = len(ax.collections)
        ax.set_title(f"{name}" + (f" ({groups} residual groups)" if groups > 1 else ""))
        if k:
            ax.set_ylabel("")
    return fig


def compared_traces(models: list, names: list | None = None) -> Figure:
    """The iteration traces of several models side by side: column k is
    :func:`~sparsereml.plots.trace` of ``models[k]`` (logL above, the parameters relative to their
    final values below).

    Parameters
    ----------
    models : list of FittedModel or FitResults
    names : list of str, optional
        The models' names, at the top of their columns (default "model 1", ...).

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[2 k]`` and ``fig.axes[2 k + 1]`` are the two axes of ``models[k]``'s trace.
    """
    names = _names(models, names, "compared_traces")
    n = len(models)
    fig = Figure(figsize=(_width(n), 7.0), layout="constrained")
    grid = fig.add_gridspec(2, n)
    for k, (model, name) in enumerate(zip(models, names)):
        top = fig.add_subplot(grid[0, k])
        bottom = fig.add_subplot(grid[1, k], sharex=top)
        trace(model, axes=(top, bottom))
        top.tick_params(labelbottom=False)
        top.set_title(f"{name}: {top.get_title()}", fontsize="medium")  # as wide as a third of the figure
        bottom.set_title(bottom.get_title().replace("variance parameters relative to their final value",
                                                    "parameters / final value"), fontsize="medium")
        if k:
            top.set_ylabel("")
            bottom.set_ylabel("")
    return fig
