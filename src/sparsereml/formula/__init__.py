"""Formula grammar (``parser``) and meaning (``terms``)."""
from .parser import parse
from .terms import At, FixedSpec, ModelSpec, RandomTerm, ResidualSpec, Var, model_spec, term_label

__all__ = ["parse", "model_spec", "ModelSpec", "FixedSpec", "RandomTerm", "ResidualSpec", "Var", "At",
           "term_label"]
