"""sparsereml: REML for large linear mixed models on sparse mixed-model equations.

>>> import sparsereml as sr
>>> m = sr.fit("dbh ~ Trial", random="~ Trial:Block + Mother + Trial:Mother", data=df)
>>> m.varcomp
"""
from . import datasets, glmm
from .api import LRTResult, PreparedFit, fit, lrt, prepare_fit, start_values
from .compare import Comparison, compare
from .control import Control
from .design import Design, build_design
from .errors import (AliasWarning, ConvergenceWarning, CovariateWarning, DataError, FormulaError, ModelError,
                     SparseREMLError)
from .formula import model_spec
from .genetics import breeding_values, vpredict
from .plan import MemoryPlan, plan
from .pedigree import Inverse, Pedigree, PedigreeWarning, dominance, dominance_matrix, grm
from .reml.optimizer import OptimResult, ai_reml
from .reml.problem import REMLProblem
from .fitresults import FitResults
from .reporting import report
from .results import FittedModel
from .results import load_model as load

__version__ = "0.1.0"

__all__ = ["fit", "plan", "MemoryPlan", "prepare_fit", "PreparedFit", "Control", "load", "CovariateWarning", "lrt", "LRTResult", "compare", "Comparison", "report", "FitResults", "FittedModel", "model_spec", "build_design", "Design", "REMLProblem", "start_values",
           "ai_reml", "OptimResult", "datasets", "glmm", "plots", "SparseREMLError", "FormulaError", "DataError", "ModelError",
           "AliasWarning", "ConvergenceWarning", "Pedigree", "PedigreeWarning", "Inverse", "grm", "dominance", "dominance_matrix", "vpredict",
           "breeding_values", "__version__"]


def __getattr__(name: str):
    # sr.plots is imported on first use: matplotlib is not needed to fit
    if name == "plots":
        import importlib

        return importlib.import_module(".plots", __name__)
    raise AttributeError(f"module 'sparsereml' has no attribute {name!r}")
