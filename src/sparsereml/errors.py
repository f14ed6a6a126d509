"""Exceptions raised for bad input.  Each message names the column, level, term or line."""
from __future__ import annotations

import sys
import warnings


class SparseREMLError(ValueError):
    """Base class for errors in what the user passed in."""


class FormulaError(SparseREMLError):
    """A formula that cannot be read or has no meaning."""


class DataError(SparseREMLError):
    """Data that cannot be used as given (missing values, unknown columns, ...)."""


class ModelError(SparseREMLError):
    """A model that cannot be fitted as specified (repeated terms, bad start values, ...)."""


class UnknownName(ModelError, KeyError):
    """A term, parameter or id asked for by name that the model or pedigree does not have (also a
    KeyError, as a lookup)."""

    __str__ = BaseException.__str__  # the message as written, not KeyError's quoted repr


class NotPositiveDefinite(ModelError):
    """The mixed-model equations, or a covariance matrix of the model, are not positive definite
    at these parameters."""


class ConvergenceWarning(UserWarning):
    """The REML iterations stopped before the convergence rule was met."""


class CovariateWarning(UserWarning):
    """A numeric column with few distinct whole values is used as a covariate (one slope); it may
    have been meant as a factor (write ``C(x)``, or ``lin(x)`` to say that a slope is meant)."""


class AliasWarning(UserWarning):
    """Fixed-effect columns were dropped because they are linear combinations of earlier ones."""


def warn_user(message: str, category: type[Warning]) -> None:
    """warnings.warn() pointing at the first caller outside sparsereml (the user's line), however
    deep in the stages the warning arises."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is the caller of warn_user
    while frame is not None and frame.f_globals.get("__name__", "").startswith("sparsereml"):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
