"""Plots of the data and of fitted models; every function returns a matplotlib Figure."""
from .model import caterpillar, overview, ranking, residuals, trace

__all__ = ["overview", "caterpillar", "ranking", "residuals", "trace"]
