"""Plots of the data and of fitted models; every function returns a matplotlib Figure.

``model``: the network overview, BLUP caterpillar (one model's, or several side by side) and
ranking, residuals against fitted values, the iteration trace.  ``spatial``: the sample variogram
and residual map on a residual grid, the correlation heat map of a covariance model between
levels, the fa loadings biplot."""
from .model import caterpillar, caterpillars, overview, ranking, residuals, trace
from .spatial import correlation_heatmap, fa_biplot, residual_map, variogram

__all__ = ["overview", "caterpillar", "caterpillars", "ranking", "residuals", "trace", "variogram",
           "residual_map", "correlation_heatmap", "fa_biplot"]
