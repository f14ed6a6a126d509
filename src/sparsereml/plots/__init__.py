"""Plots of the data and of fitted models; every function returns a matplotlib Figure.

``model``: the network overview, BLUP caterpillar and ranking, residuals against fitted values,
the iteration trace.  ``compared``: several models side by side (caterpillars of one term,
residuals, iteration traces).  ``spatial``: the sample variogram
and residual map on a residual grid, the correlation heat map of a covariance model between
levels, the fa loadings biplot."""
from .compared import caterpillars, compared_residuals, compared_traces
from .model import caterpillar, overview, ranking, residuals, trace
from .spatial import correlation_heatmap, fa_biplot, residual_map, variogram

__all__ = ["overview", "caterpillar", "caterpillars", "ranking", "residuals", "trace", "compared_residuals",
           "compared_traces", "variogram", "residual_map", "correlation_heatmap", "fa_biplot"]
