"""Exceptions raised for bad input.  Each message names the column, level, term or line."""
from __future__ import annotations


class SparseREMLError(ValueError):
    """Base class for errors in what the user passed in."""


class FormulaError(SparseREMLError):
    """A formula that cannot be read or has no meaning."""


class DataError(SparseREMLError):
    """Data that cannot be used as given (missing values, unknown columns, ...)."""


class ModelError(SparseREMLError):
    """A model that cannot be fitted as specified (repeated terms, bad start values, ...)."""


class NotPositiveDefinite(ModelError):
    """The mixed-model equations, or a covariance matrix of the model, are not positive definite
    at these parameters."""


class ConvergenceWarning(UserWarning):
    """The REML iterations stopped before the convergence rule was met."""


class AliasWarning(UserWarning):
    """Fixed-effect columns were dropped because they are linear combinations of earlier ones."""
