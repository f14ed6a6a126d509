"""Formula grammar (``parser``) and meaning: terms and their expansion (``terms``), residual
formulas (``residual``), and the three formulas of a model together (``spec``)."""
from .parser import parse
from .residual import ResidualDim, ResidualSection, ResidualSpec
from .spec import ModelSpec, model_spec
from .model_terms import FixedSpec, RandomTerm
from .terms import At, Var, term_label

__all__ = ["parse", "model_spec", "ModelSpec", "FixedSpec", "RandomTerm", "ResidualSpec", "ResidualSection",
           "ResidualDim", "Var", "At", "term_label"]
