"""Variance-structure layer: what each random term contributes to the mixed-model equations.

``base`` defines the interface and identity blocks (plain and at() terms); ``covariance``
the covariance models between the levels of a factor (diag, corv, corh, ar1; us and corgh in
``unstructured``, fa in ``fa``, exp in ``exp``); ``kron`` a term whose effects follow such a
model across one factor and are independent across the levels of the others
(``us(Trial):Mother``); ``residual`` the residual grid dimensions.

Every module of this package is imported here, so a new covariance model or residual dimension
is one new file that registers itself (:mod:`sparsereml.registry`).
"""
import importlib
import pkgutil

from .base import IdentityBlocks, Structure
from .covariance import CovModel, make_cov_model
from .kron import KronStructure

for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["Structure", "IdentityBlocks", "CovModel", "make_cov_model", "KronStructure"]
