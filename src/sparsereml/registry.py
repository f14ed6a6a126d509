"""Registries of the extension points: covariance models, residual grid dimensions, formula specials.

Each is a table from the name written in a formula (keywords such as ``units`` too) to the class (or function) that gives it
meaning, in the spirit of formulaic's registries.  This module imports nothing of the package,
so the formula layer can ask it about a name without loading the structures; the modules that
define the entries register them when they are imported, and ``sparsereml/__init__`` imports
them all (``sparsereml.structures`` imports every module of its package), so the tables are
full whenever a formula is read.

Adding a covariance model is one new file under ``src/sparsereml/structures/``: a
:class:`~sparsereml.structures.covariance.CovModel` subclass decorated with
:func:`register_cov_model`.  Its name becomes a formula function (``name(F)`` in a random term,
``name(F):...`` in a residual grid), its ``formula_args`` its extra arguments.
"""
from __future__ import annotations

from typing import Callable

__all__ = ["register_cov_model", "cov_model", "cov_model_names", "is_cov_model", "register_residual_dim",
           "residual_dim", "residual_dim_names", "COVARIANCE_DIM", "register_special", "special", "special_names",
           "register_keyword", "keyword"]

_COV_MODELS: dict[str, type] = {}
_RESIDUAL_DIMS: dict[str, type] = {}
_SPECIALS: dict[str, Callable] = {}
_KEYWORDS: dict[str, Callable] = {}
COVARIANCE_DIM = "<covariance model>"  # the residual dimension that carries any covariance model


def _add(table: dict, name: str, entry, what: str) -> None:
    if name in table and table[name] is not entry:
        raise ValueError(f"{what} {name!r} is registered twice ({table[name]!r} and {entry!r})")
    table[name] = entry


def register_cov_model(cls: type) -> type:
    """Class decorator: make the covariance model ``cls`` (named by ``cls.name``) a formula function.

    Parameters
    ----------
    cls : type
        A subclass of ``CovModel`` with a class attribute ``name``.

    Returns
    -------
    type
        ``cls`` itself.
    """
    _add(_COV_MODELS, cls.name, cls, "covariance model")
    return cls


def cov_model(name: str) -> type:
    """The covariance model class registered under ``name`` (KeyError if none)."""
    return _COV_MODELS[name]


def is_cov_model(name: str) -> bool:
    """Whether ``name`` is a registered covariance model."""
    return name in _COV_MODELS


def cov_model_names() -> tuple:
    """Names of the registered covariance models, in order of registration."""
    return tuple(_COV_MODELS)


def register_residual_dim(cls: type, name: str | None = None) -> type:
    """Register a residual grid dimension class under ``name`` (default ``cls.name``).

    A dedicated dimension (``id``, ``ar1``) takes precedence over a covariance model of the same
    name; the class registered as :data:`COVARIANCE_DIM` serves every other covariance model.
    """
    _add(_RESIDUAL_DIMS, name or cls.name, cls, "residual dimension")
    return cls


def residual_dim(name: str) -> type:
    """The residual dimension class for the formula name ``name`` (KeyError if none)."""
    if name in _RESIDUAL_DIMS:
        return _RESIDUAL_DIMS[name]
    if name in _COV_MODELS:
        return _RESIDUAL_DIMS[COVARIANCE_DIM]
    raise KeyError(name)


def residual_dim_names() -> tuple:
    """Names usable as residual dimensions: the dedicated ones, then the covariance models."""
    own = tuple(n for n in _RESIDUAL_DIMS if n != COVARIANCE_DIM)
    return own + tuple(n for n in _COV_MODELS if n not in own)


def register_special(*names: str) -> Callable:
    """Decorator: ``handler(node, text)`` expands the formula function(s) ``names`` into terms."""
    def deco(handler: Callable) -> Callable:
        for name in names:
            _add(_SPECIALS, name, handler, "formula function")
        return handler
    return deco


def special(name: str) -> Callable | None:
    """The handler of the formula function ``name``, or None."""
    return _SPECIALS.get(name)


def special_names() -> tuple:
    """Names of the registered formula functions (covariance models not included)."""
    return tuple(_SPECIALS)


def register_keyword(name: str) -> Callable:
    """Decorator: ``handler(text)`` gives the terms of the bare name ``name`` in a formula (``units``)."""
    def deco(handler: Callable) -> Callable:
        _add(_KEYWORDS, name, handler, "formula keyword")
        return handler
    return deco


def keyword(name: str) -> Callable | None:
    """The handler of the formula keyword ``name``, or None (then it is a column)."""
    return _KEYWORDS.get(name)
