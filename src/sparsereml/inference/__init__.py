"""Inference on the fixed effects after a fit: their covariance and its derivatives in MME space
(:mod:`fixed_cov`), the information matrices of the variance parameters (:mod:`information`),
Kenward-Roger and Satterthwaite degrees of freedom (:mod:`ddf`) and Wald tests (:mod:`wald`)."""
from .fixed_cov import FixedEffectsCovariance

__all__ = ["FixedEffectsCovariance"]
