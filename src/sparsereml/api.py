"""The public entry points: ``fit`` runs the stages in order, ``lrt`` compares two fits.

Each stage can also be called on its own (lme4 style)::

    spec    = sr.model_spec(fixed, random, residual)   # formulas -> ModelSpec
    design  = sr.build_design(spec, data)              # data -> X, Z, groups
    problem = sr.REMLProblem(design)                   # cross-products, MME, factor
    result  = sr.ai_reml(problem, start)               # AI-REML iterations
    model   = sr.FittedModel(problem, result, {})      # tables
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .design import build_design
from .errors import ConvergenceWarning, ModelError
from .formula.spec import model_spec
from .linalg.threads import single_threaded
from .reml.optimizer import ai_reml
from .reml.problem import REMLProblem
from .reml.start import resolve_start
from .results import FittedModel

__all__ = ["fit", "lrt", "LRTResult"]


def fit(fixed: str, random: str | None = None, residual: str | None = None, data=None, *,
        na_action: str = "error", start=None, fix: dict | None = None, matrices: dict | None = None,
        backend: str | None = None, max_iter: int = 50, tol: float = 1e-6, verbose: bool = False,
        callback=None) -> FittedModel:
    """Fit a linear mixed model by REML.

    Parameters
    ----------
    fixed : str
        Response and fixed effects, e.g. ``"dbh ~ Trial"``.  Factors (text or categorical
        columns, or ``C(x)`` for a numeric one), covariates, ``A:B``, ``A*B``, ``-1``.  lme4
        random intercepts may be added here: ``"dbh ~ Trial + (1|Trial:Block) + (1|Mother)"``.
    random : str, optional
        Random terms, e.g. ``"~ Trial:Block + Mother + Trial:Mother"``; ``a/b`` is
        ``a + a:b``; ``at(F):T`` gives T its own variance within each level of F, and
        ``at(F, 'x', 'y'):T`` only within the named levels.  Columns named here are factors.
    residual : str, optional
        ``"~ units"`` (default, one residual variance) or ``"~ at(F):units"`` (one per level of F).
    data : DataFrame (pandas or polars) or path to a CSV or Parquet file
    na_action : {"error", "drop"}
        Rows with a missing response are always dropped (and counted); a missing
        predictor is an error unless ``"drop"``.
    start, fix : dict, optional
        Start values, or values to hold fixed (code F), by parameter label.  ``start`` may also
        be a fitted model: parameters of the same name carry over, and a covariance model across
        a factor starts from the covariance the earlier model implied (e.g. ``fa(Trial, 2):Mother``
        from ``diag(Trial):Mother`` or from ``Mother + Trial:Mother``).
    matrices : dict, optional
        Relationship matrices for ``vm(id, name)`` terms by name: a :class:`Pedigree`, a
        relationship matrix (DataFrame indexed by ids) or ``sr.Inverse(Kinv, ids)``.
    backend : {"cholmod", "qdldl", "auto"}, optional
        Sparse factorisation; default CHOLMOD when installed.
    max_iter, tol : int, float
        Iteration limit and convergence tolerance (see :func:`sparsereml.reml.optimizer.ai_reml`).
    verbose : bool
        Print one line per iteration.
    callback : callable, optional
        Called with a dict per iteration (iteration, loglik, parameters, seconds).

    Returns
    -------
    FittedModel
    """
    t0 = time.perf_counter()
    if data is None:
        raise ModelError("fit() needs data: a DataFrame or a path to a CSV or Parquet file")
    spec = model_spec(fixed, random, residual)
    design = build_design(spec, data, na_action, matrices)
    t1 = time.perf_counter()
    with single_threaded():  # multithreaded BLAS is far slower on the small dense blocks here
        problem = REMLProblem(design, backend)
        t_start = time.perf_counter()
        theta0, fixed_mask = resolve_start(problem, start, fix)
        t_start = time.perf_counter() - t_start
        report = _progress_printer() if verbose else None

        def cb(row):
            if report:
                report(row)
            if callback:
                callback(row)

        result = ai_reml(problem, theta0, fixed_mask, max_iter=max_iter, tol=tol,
                         callback=cb if (report or callback) else None)
    t2 = time.perf_counter()
    if not result.converged:
        warnings.warn(result.message, ConvergenceWarning, stacklevel=2)
    seconds = {"design": t1 - t0, **problem.seconds, "start": t_start,
               "iterations": t2 - t1 - sum(problem.seconds.values()) - t_start, "total": t2 - t0}
    return FittedModel(problem, result, seconds)


def _progress_printer():
    state = {"prev": None}

    def report(row):
        prev = state["prev"]
        change = "" if prev is None else f"{row['loglik'] - prev:+.6g}"
        print(f"iteration {row['iteration']:3d}  logL {row['loglik']:.6f}  change {change:>12}  "
              f"{row['seconds']:.3f} s", flush=True)
        state["prev"] = row["loglik"]

    return report


@dataclass
class LRTResult:
    """Likelihood-ratio test of two nested REML fits."""

    statistic: float
    df: int
    p_value: float
    mixture: bool

    def __repr__(self) -> str:
        kind = "50:50 mixture of chi2(0) and chi2(1)" if self.mixture else f"chi2({self.df})"
        return f"LRT statistic = {self.statistic:.4f}, df = {self.df}, p = {self.p_value:.4g} ({kind})"


def lrt(small: FittedModel, big: FittedModel, mixture: bool | None = None) -> LRTResult:
    """REML likelihood-ratio test of ``small`` against ``big`` (same data and fixed effects).

    The statistic is 2 (logL_big - logL_small) on df = the difference in the number of
    variance parameters.  When ``big`` adds exactly one variance to ``small`` (a variance
    tested at zero, on the boundary) the p-value uses the 50:50 mixture of chi2(0) and
    chi2(1); set ``mixture`` to force or suppress this.
    """
    if small.nobs != big.nobs or not np.allclose(small.design.y, big.design.y):
        raise ModelError("the two fits do not use the same records: REML likelihoods are not comparable")
    if small.design.fixed.names != big.design.fixed.names:
        raise ModelError("REML likelihood-ratio tests need the same fixed effects in both models; "
                         f"got {small.spec.formulas.get('fixed')!r} and {big.spec.formulas.get('fixed')!r}")
    k_small = sum(c != "F" for c in small.codes)
    k_big = sum(c != "F" for c in big.codes)
    df = k_big - k_small
    if df <= 0:
        raise ModelError(f"the second model must have more variance parameters than the first ({k_big} vs {k_small})")
    stat = max(2.0 * (big.loglik - small.loglik), 0.0)
    if mixture is None:
        mixture = df == 1 and set(small.labels) < set(big.labels)
    p = 0.5 * stats.chi2.sf(stat, 1) if mixture and df == 1 else float(stats.chi2.sf(stat, df))
    return LRTResult(stat, df, float(p), bool(mixture and df == 1))
