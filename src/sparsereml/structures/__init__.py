"""Variance-structure layer: what each random term contributes to the mixed-model equations.

``base`` defines the interface and identity blocks (plain and at() terms); ``covariance``
the covariance models between the levels of a factor (diag, corv, corh, corgh, us, fa);
``kron`` a term whose effects follow such a model across one factor and are independent
across the levels of the others (``us(Trial):Mother``).
"""
from .base import IdentityBlocks, Structure
from .covariance import COV_MODELS, CovModel, make_cov_model
from .kron import KronStructure

__all__ = ["Structure", "IdentityBlocks", "CovModel", "COV_MODELS", "make_cov_model", "KronStructure"]
