"""Generalized linear mixed models on the sparse engine (binomial, Poisson, negative binomial): the Laplace
approximation (default) and PQL.  ``sr.fit(..., family=...)`` is the entry point."""
from .families import Binomial, Family, NegativeBinomial, Poisson, resolve_family
from .genetics import observed_scale

__all__ = ["Binomial", "Poisson", "NegativeBinomial", "Family", "resolve_family", "observed_scale"]
