"""The public entry points: ``fit`` runs the stages in order (``lrt``, which compares two fits,
lives with ``compare`` in :mod:`sparsereml.compare`).

Each stage can also be called on its own (lme4 style)::

    spec    = sr.model_spec(fixed, random, residual)   # formulas -> ModelSpec
    design  = sr.build_design(spec, data)              # data -> X, Z, groups
    problem = sr.REMLProblem(design)                   # cross-products, MME, factor
    result  = sr.ai_reml(problem, start)               # AI-REML iterations
    model   = sr.FittedModel(problem, result, {})      # tables
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from .compare import LRTResult, lrt
from .control import Control, resolve_control
from .design import build_design
from .errors import ConvergenceWarning, FormulaError, ModelError, warn_user
from .formula.spec import model_spec
from .plan import Budget, MemoryPlan, check_memory, forecast
from .progress import FitProgress, iteration_line
from .reml.optimizer import ai_reml
from .reml.problem import REMLProblem
from .reml.user_start import resolve_start
from .results import FittedModel

__all__ = ["fit", "prepare_fit", "PreparedFit", "start_values", "lrt", "LRTResult"]


def fit(fixed: str, random: str | None = None, residual: str | None = None, data=None, *,
        factors=None, na_action: str = "error", start=None, fix: dict | None = None, matrices: dict | None = None,
        control: Control | None = None, backend: str | None = None, max_iter: int | None = None,
        tol: float | None = None, verbose: bool = False, callback=None, family=None, method: str | None = None,
        weights=None, offset=None, before=None, scheduler=None, max_memory=None) -> FittedModel:
    """Fit a linear mixed model by REML, or a generalized linear mixed model (``family=``).

    Parameters
    ----------
    fixed : str
        Response and fixed effects, e.g. ``"dbh ~ Trial"``.  Factors (text, categorical or
        boolean columns, ``C(x)`` for a numeric one), covariates (numeric columns; ``lin(x)``
        says so explicitly), ``A:B``, ``A*B``, ``-1``.  lme4 random intercepts may be added
        here: ``"dbh ~ Trial + (1|Trial:Block) + (1|Mother)"``.
    random : str, optional
        Random terms, e.g. ``"~ Trial:Block + Mother + Trial:Mother"``; ``a/b`` is
        ``a + a:b``; ``at(F):T`` gives T its own variance within each level of F, and
        ``at(F, 'x', 'y'):T`` only within the named levels.  Columns named here are factors.
    residual : str, optional
        ``"~ units"`` (default, one residual variance), ``"~ at(F):units"`` (one per level of
        F) or a grid such as ``"~ ar1(Row):ar1(Col)"`` (see the README).
    data : DataFrame (pandas or polars), path to a CSV or Parquet file, or partitioned data
        Only read, never modified.  A directory or glob of Parquet (or CSV) files
        (``"trees/*.parquet"``) or a Dask DataFrame is read partition by partition with Dask:
        the data pass runs over the partitions, the equations and iterations here, with the
        results of the same data in memory: any random structure (at(), vm(), us/fa/...),
        covariates, and residual grids whose groups are whole in one partition (see the README);
        per-record outputs (fitted values, residuals) are not kept.
    factors : list of str, optional
        Numeric columns to use as factors in every formula (trial or block numbers read from a
        file).  A numeric column that the fixed formula would use as a covariate while the random
        or residual formula uses it as a factor is an error that says so.
    na_action : {"error", "drop"}
        Rows with a missing response are always dropped (and counted); a missing predictor,
        or an infinite value, is an error unless ``"drop"``.
    start, fix : dict, optional
        Start values, or values to hold fixed (code F), by parameter label.  ``start`` may also
        be a fitted model: parameters of the same name carry over, and a covariance model across
        a factor starts from the covariance the earlier model implied (e.g. ``fa(Trial, 2):Mother``
        from ``diag(Trial):Mother`` or from ``Mother + Trial:Mother``).
    matrices : dict, optional
        Relationship matrices for ``vm(id, name)`` terms by name: a :class:`Pedigree`, a
        relationship matrix (DataFrame indexed by ids) or ``sr.Inverse(Kinv, ids)``.
    control : Control, optional
        Iteration limit, tolerances, backend and threads (:class:`sparsereml.Control`).
    backend, max_iter, tol : optional
        Shortcuts that replace the same fields of ``control``.
    verbose : bool
        Report progress: a line per stage and per iteration, under a live status line in a
        terminal (:class:`sparsereml.progress.FitProgress`).
    callback : callable, optional
        Called with a dict per iteration (iteration, loglik, parameters, seconds).
    family : {"gaussian", "binomial", "poisson", "negative.binomial"} or a family object, optional
        A GLMM (:mod:`sparsereml.glmm`): ``sr.glmm.Binomial(link="probit")``, links logit
        (default), probit and cloglog; ``sr.glmm.Poisson()`` (log link);
        ``sr.glmm.NegativeBinomial()`` (log link; glmmTMB's nbinom2, its theta estimated by the
        Laplace likelihood, Laplace only).  A binomial response is
        0/1, a proportion with ``weights`` giving the trials, or ``cbind(successes, failures)``
        (also ``cbind(s, n - s)``).  Variance components are on the link scale.
    method : {"laplace", "pql"}, optional
        GLMMs only: the Laplace approximation to the marginal likelihood (default; glmer's nAGQ = 1
        and glmmTMB's) or PQL (ASReml's: REML on the working variate, iterated).
    weights : str or array, optional
        GLMMs only: binomial trials of a proportion response, or Poisson prior weights (a column
        name or one value per row of the data).
    offset : str or array, optional
        GLMMs only: added to the linear predictor (e.g. log exposure for counts).
    before : callable, optional
        GLMMs only: called with the parameter labels and the design before the iterations (to
        check what depends on them; see :func:`sparsereml.glmm.fit.fit_glmm`).
    scheduler : str or dask.distributed.Client, optional
        Partitioned data only: where the data pass runs ("threads", "processes", "synchronous",
        or a Client); default Dask's (threads on this machine, or the active Client).
    max_memory : int or str, optional
        The memory the fit may use: bytes, or text such as ``"4GB"`` or ``"500MB"``.  Default: the
        memory available when the fit starts (a cgroup limit less its use, or MemAvailable).  The
        fit's peak is forecast after the data pass and the factor's symbolic analysis
        (:func:`sparsereml.plan`); a fit that would exceed it is refused (ModelError) before it
        factorises, with the figures and the options that would fit.  A fit option, not a
        :class:`Control` field: it is about the machine, not the model.

    Returns
    -------
    FittedModel
        (:class:`~sparsereml.glmm.GLMMFit` for a GLMM.)
    """
    if not isinstance(verbose, bool):
        raise ModelError(f"verbose must be True or False, got {verbose!r}")
    from .glmm.families import resolve_family
    fam = resolve_family(family)
    if fam is not None:
        if max_memory is not None:
            raise ModelError("max_memory= is forecast for Gaussian REML fits; a GLMM (family=) has no memory forecast "
                             "yet: leave max_memory out")
        from .partitioned import is_partitioned
        if is_partitioned(data) or scheduler is not None:
            raise ModelError("generalized linear mixed models (family=) are not fitted to partitioned data (a "
                             "directory, a glob or a Dask DataFrame) yet; read the data into a pandas DataFrame")
        from .glmm.fit import fit_glmm
        return fit_glmm(fixed, random, residual, data, family=fam, method=method or "laplace", weights=weights,
                        offset=offset, factors=factors, na_action=na_action, start=start, fix=fix,
                        matrices=matrices, control=control, backend=backend, max_iter=max_iter, tol=tol,
                        callback=callback, before=before)
    for name, value in (("method", method), ("weights", weights), ("offset", offset), ("before", before)):
        if value is not None:
            raise ModelError(f"{name}= is for generalized linear mixed models (family='binomial' or 'poisson'); "
                             f"a Gaussian fit is by REML without it")
    with FitProgress() if verbose else nullcontext() as progress:
        prepared = prepare_fit(fixed, random, residual, data, factors=factors, na_action=na_action, start=start,
                               fix=fix, matrices=matrices, control=control, backend=backend, max_iter=max_iter,
                               tol=tol, progress=progress, scheduler=scheduler, max_memory=max_memory)
        return prepared.run(callback=callback, progress=progress)


@dataclass
class PreparedFit:
    """A model read, coded and analysed, with its start values: everything but the iterations.

    ``labels`` are the parameters the fit will report (what ``start``, ``fix`` and functions of
    the components name); :meth:`run` iterates and returns the :class:`FittedModel`."""

    problem: REMLProblem
    theta0: np.ndarray
    fixed_mask: np.ndarray
    control: Control
    seconds: dict
    memory: MemoryPlan | None = None  # the forecast the fit was checked against

    @property
    def labels(self) -> list:
        return list(self.problem.report_labels)

    def run(self, verbose: bool = False, callback=None, progress: FitProgress | None = None) -> FittedModel:
        """Run the AI-REML iterations (:func:`sparsereml.ai_reml`) and wrap the result.

        ``verbose`` reports each iteration (:class:`~sparsereml.progress.FitProgress`);
        ``progress``, a FitProgress already in use (the one given to :func:`prepare_fit`),
        reports them instead and is closed when the iterations end."""
        if not isinstance(verbose, bool):
            raise ModelError(f"verbose must be True or False, got {verbose!r}")
        if callback is not None and not callable(callback):
            raise ModelError(f"callback must be a function of one dict, got {type(callback).__name__}")
        t1 = time.perf_counter()
        c = self.control
        if progress is None and verbose:
            progress = FitProgress()
        if progress is not None:
            progress.max_iter = progress.max_iter or c.max_iter
            progress.start("AI-REML iteration 0 (the start values)")
        report = progress.iteration if progress is not None else None

        def cb(row):
            if report:
                report(row)
            if callback:
                callback(row)

        try:
            result = ai_reml(self.problem, self.theta0, self.fixed_mask, control=c,
                             callback=cb if (report or callback) else None)
        except BaseException:
            if progress is not None:
                progress.close()
            raise
        if progress is not None:  # the live line goes before any warning is shown
            progress.close(converged=result.converged)
        t2 = time.perf_counter()
        if not result.converged:
            warn_user(result.message, ConvergenceWarning)
        seconds = {**self.seconds, "iterations": t2 - t1, "total": sum(self.seconds.values()) + t2 - t1}
        return FittedModel(self.problem, result, seconds, control=c)


def prepare_fit(fixed: str, random: str | None = None, residual: str | None = None, data=None, *,
                factors=None, na_action: str = "error", start=None, fix: dict | None = None,
                matrices: dict | None = None, control: Control | None = None, backend: str | None = None,
                max_iter: int | None = None, tol: float | None = None, progress=None, scheduler=None,
                max_memory=None) -> PreparedFit:
    """Every stage of :func:`fit` before the iterations (arguments as there).  The command line
    uses it to check what it can (functions of the components, say) before the fit runs.
    ``progress`` (a function of one line of text) hears of each stage as it ends; a
    :class:`~sparsereml.progress.FitProgress` also hears of each as it begins.  The memory forecast
    (:func:`sparsereml.plan`) is checked against ``max_memory`` before anything is factorised."""
    say = progress or (lambda text: None)
    begin = progress.start if isinstance(progress, FitProgress) else (lambda text: None)
    t0 = time.perf_counter()
    budget = Budget.now(max_memory)  # what was free before this fit allocated anything
    control = resolve_control(control, backend=backend, max_iter=max_iter, tol=tol)
    _check_arguments(fixed, random, residual, data, start, fix, matrices)
    spec = model_spec(fixed, random, residual)
    with control.threading():
        begin("design: reading the data and coding the factors")
        design = _design(spec, data, na_action, matrices, factors, control.backend, scheduler)
        t1 = time.perf_counter()
        say(f"design: {design.n:,} records, {design.p:,} fixed-effect columns, "
            f"{design.n_columns - design.p:,} random-effect columns ({t1 - t0:.2f} s)")
        begin(f"equations: data pass ({design.n:,} records) and ordering")
        problem = REMLProblem(design, control)
        say(f"equations: {problem.mme.N:,} unknowns, {problem.params.n} variance parameters; data pass "
            f"{problem.seconds['data_pass']:.2f} s, analysis {problem.seconds['analyse']:.2f} s "
            f"({problem.factor.method})")
        memory = forecast(problem, budget)
        check_memory(problem, memory)  # before the first factorisation (the start values')
        begin("start values")
        t_start = time.perf_counter()
        theta0, fixed_mask = start_values(problem, start, fix)
        t_start = time.perf_counter() - t_start
    return PreparedFit(problem, theta0, fixed_mask, control,
                       {"design": t1 - t0, **problem.seconds, "start": t_start}, memory)


def _design(spec, data, na_action, matrices, factors, backend, scheduler):
    """The design stage: in memory, or from the partitions of partitioned data (a directory, a glob,
    a Dask DataFrame) with Dask."""
    from .partitioned import build_partitioned_design, is_partitioned
    if is_partitioned(data):
        return build_partitioned_design(spec, data, na_action, matrices, factors, backend, scheduler)
    if scheduler is not None:
        raise ModelError("scheduler= is for partitioned data (a directory or glob of Parquet or CSV files, or a Dask "
                         f"DataFrame); data here is {type(data).__name__} {str(data)[:60]!r}, read in memory")
    return build_design(spec, data, na_action, matrices, factors, backend)


def start_values(problem: REMLProblem, start=None, fix: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Start values of the working parameters of ``problem`` and the mask of those held fixed.

    Parameters
    ----------
    problem : REMLProblem
    start, fix : dict or FittedModel, optional
        As in :func:`fit`.  Without them the start comes from the data by
        ``problem.control.start_method``.

    Returns
    -------
    theta : ndarray
        In the order of ``problem.params.labels``.
    fixed : ndarray of bool
        Parameters held at their value (code F) by ``fix``.
    """
    with problem.control.threading():
        return resolve_start(problem, start, fix)


def _check_arguments(fixed, random, residual, data, start, fix, matrices) -> None:
    """Arguments of the wrong kind are refused before any data is read."""
    for name, text in (("fixed", fixed), ("random", random), ("residual", residual)):
        if not (isinstance(text, str) or (text is None and name != "fixed")):
            raise FormulaError(f"the {name} formula must be a string such as "
                               f"{_EXAMPLES[name]!r}; got {type(text).__name__} {text!r:.60}")
    if data is None:
        raise ModelError("fit() needs data: a DataFrame or a path to a CSV or Parquet file")
    if start is not None and not isinstance(start, (dict, FittedModel)):
        raise ModelError(f"start must be a dict of parameter label -> value (e.g. {{'Mother': 30.0}}) or a fitted "
                         f"model; got {type(start).__name__} {start!r:.60}")
    for name, value in (("start", start), ("fix", fix)):
        if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
            raise ModelError(f"{name}: the keys must be parameter labels (strings) as in m.varcomp.index; got "
                             f"{[k for k in value if not isinstance(k, str)][:3]}")
    if fix is not None and not isinstance(fix, dict):
        raise ModelError(f"fix must be a dict of parameter label -> value, e.g. {{'Mother': 30.0}}; got "
                         f"{type(fix).__name__} {fix!r:.60}")
    if matrices is not None and not isinstance(matrices, dict):
        raise ModelError(f"matrices must be a dict of name -> Pedigree or matrix, e.g. {{'ped': ped}} for "
                         f"vm(Mother, ped); got {type(matrices).__name__}")


_EXAMPLES = {"fixed": "dbh ~ Trial", "random": "~ Trial:Block + Mother", "residual": "~ at(Trial):units"}


def progress_printer(write=None):
    """A callback that prints one line per iteration (iteration, logL, change, seconds) with
    ``write`` (default: print, flushed)."""
    write = write or (lambda text: print(text, flush=True))
    state = {"prev": None}

    def report(row):
        write(iteration_line(row, state["prev"]))
        state["prev"] = row["loglik"]

    return report
