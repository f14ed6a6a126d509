"""AI-REML iterations with step control and ASReml's parameter codes.

Codes: ``P`` positive (estimated), ``B`` held at the boundary (a variance that wanted to go
below zero, a correlation at +-1), ``F`` fixed by the user.  Before each step a ``B`` parameter
whose score points into the parameter space is released, and a residual group's correlations
are held exactly while its variance is held (:func:`~sparsereml.reml.bounds.update_codes`).

Convergence rule (reported in ``OptimResult.message``; :mod:`sparsereml.reml.stopping`).  At
each iterate the AI-Newton step of the ``P`` parameters is formed, with its relative size (each
step over the parameter's magnitude, or over a small floor for a parameter near zero) and the
log-likelihood it would gain (score' step / 2, the Newton decrement).  The iterations stop at
the first iterate where

1. every relative step is below ``tol`` (1e-6 by default) and the expected gain is below
   ``tol_loglik`` (1e-6) or 1e-12 |logL| (the rounding level of logL on very large data sets),
   whichever is larger ("converged: AI-Newton steps below ...");
2. or the expected gain is below that level and the step after the current one is predicted
   below ``tol``: near the optimum AI-Newton steps shrink by a steady factor rho per iteration,
   read from the current step and the previous full AI step that kept the codes; when rho < 1/2
   and rho times the current step is below ``tol``, the current step is taken as the last one
   and that point gets its log-likelihood and average information (standard errors), its
   selected inverse only when PEVs are asked for ("converged: AI-Newton steps shrank by ...");
   a last step that would lower logL or hit a bound is not taken, and the rules below apply;
3. or the expected gain is below that level and logL rose by less than it over the last
   ``stall_window`` iterations (5): where the likelihood is flat in some direction (a nearly
   singular us() matrix, say) rounding keeps the steps from getting small
   ("converged in logL: ...", a poorly determined parameter);
4. or no pair of ``step_control`` keeps logL from falling: reported as converged when the
   expected gain and every relative step are below 1e-3 (the optimum to within the rounding of
   logL), else as a failure;
5. or after ``max_iter`` iterations (not converged).

Step control (:func:`~sparsereml.reml.steps.search`): the (damping, length) pairs of
``Control.step_control`` are tried in turn, the AI step times the length with Levenberg-Marquardt
damping; the first that does not lower logL is taken, and a shortened or damped one is tried
two, four and eight times longer while logL rises.  A step is kept inside the bounds
(:class:`~sparsereml.reml.bounds.Bounds`); a parameter it leaves on a bound gets code ``B``.

Precision of the scores: while the next step is expected to exceed ``rough_above`` (1e-4) of a
parameter (the last step times the square of the rate at which steps shrank), the scores may
come from a selected inverse whose wide dense block was inverted in single precision
(``REMLProblem.derivatives(rough=True)``; ``Control.single_precision``).  Its rounding moves
such a step far less than the step itself.  Every decision to stop, and every step below
``rough_above``, is made on exact scores: a rough evaluation that would decide is repeated
exactly, as is an iteration where no step from rough scores worked.  The log-likelihood and the
average information are always exact.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..control import Control
from .bounds import Bounds, initial_codes, update_codes
from .problem import Evaluation, REMLProblem
from .start import default_start
from .steps import newton_step, search, try_step
from .stopping import CONVERGE, LAST_STEP, NO_STEP, STALLED, Assessment, StopRule

__all__ = ["ai_reml", "OptimResult"]

@dataclass
class OptimResult:
    """What :func:`ai_reml` returns.

    Attributes
    ----------
    theta : ndarray
        The parameters at the last iterate.
    codes : list of str
        Their codes there (``P``, ``B`` or ``F``).
    evaluation : Evaluation
        The last iterate's evaluation (log-likelihood, AI; scores unless it followed a last step).
    converged : bool
        Whether the convergence rule was met; ``message`` says which part, or why not.
    message : str
    history : list of dict
        One row per iterate, the start's first (:attr:`n_iterations` + 1 rows).
    previous_theta : ndarray or None
        The iterate before the last.
    """

    theta: np.ndarray
    codes: list
    evaluation: Evaluation
    converged: bool
    message: str
    history: list = field(default_factory=list)
    previous_theta: np.ndarray | None = None

    @property
    def n_iterations(self) -> int:
        """AI-REML iterations: history rows after the start's (as ``FittedModel.n_iterations``)."""
        return len(self.history) - 1


def ai_reml(problem: REMLProblem, start: np.ndarray | None = None, fixed: np.ndarray | None = None, *,
            control: Control | None = None, max_iter: int | None = None, tol: float | None = None,
            tol_loglik: float | None = None, callback=None) -> OptimResult:
    """Maximise the REML log-likelihood by average-information Newton steps.

    Parameters
    ----------
    problem : REMLProblem
    start : ndarray, optional
        Starting values of the working parameters (positive for variances); default the data's
        (:func:`~sparsereml.start_values` by ``problem.control.start_method``).
    fixed : ndarray of bool, optional
        Parameters held at their start value (code ``F``).
    control : Control, optional
        Iteration limit, tolerances, step control and precision policy; default the problem's
        (``problem.control``).
    max_iter, tol, tol_loglik : optional
        Shortcuts that replace the same fields of ``control`` (see the module docstring for the rule).
    callback : callable, optional
        Called with the history row (a dict) after every iteration.
    """
    control = (control or problem.control).updated(max_iter=max_iter, tol=tol, tol_loglik=tol_loglik)
    with control.threading():
        if start is None:
            start = default_start(problem)
        return _iterate(problem, start, fixed, control, callback)


@dataclass
class _Assessed:
    """One iterate as the stopping rule saw it: its evaluation (scores exact if they decide),
    codes, the AI-Newton step over the free parameters and the rule's assessment."""

    ev: Evaluation
    codes: np.ndarray
    held: np.ndarray
    free: np.ndarray
    step: np.ndarray
    assessment: Assessment


def _assess(problem: REMLProblem, ev: Evaluation, codes: np.ndarray, held: np.ndarray, bounds: Bounds,
            rule: StopRule, logliks: list, prev_rel: float | None, rough_above: float) -> _Assessed:
    """Codes, AI-Newton step and stopping assessment at ``ev``; rough scores that would decide
    (stop, or a step small enough for their rounding to matter) are replaced by exact ones."""
    while True:
        new_codes, new_held, free = update_codes(codes, held, ev.theta, ev.score, bounds, problem.params.scale_of)
        step = newton_step(ev, free)
        a = rule.assess(bounds.relative(step, ev.theta, free), step[free], ev.score[free], ev.loglik,
                        logliks, prev_rel)
        if not (ev.rough and a.deciding(rough_above)):
            return _Assessed(ev, new_codes, new_held, free, step, a)
        ev = problem.derivatives(ev)


def _last_step(problem: REMLProblem, cur: _Assessed, bounds: Bounds) -> Evaluation | None:
    """The point after the predicted last step, with AI but no scores (its selected inverse is
    left until PEVs are asked for); None if that step lowers logL or hits a bound."""
    cand, cand_codes = try_step(problem, cur.ev.theta, cur.step, cur.codes, cur.free, bounds, cur.ev.loglik)
    if cand is None or not (cand_codes == cur.codes).all():
        return None
    return problem.derivatives(cand, scores=False)


def _iterate(problem: REMLProblem, start, fixed, control: Control, callback) -> OptimResult:
    theta = np.asarray(start, dtype=float).copy()
    fixed = np.zeros(theta.size, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    codes, held = initial_codes(fixed), np.zeros(theta.size, dtype=bool)
    bounds = Bounds.from_table(problem.params, theta, fixed, control.var_boundary, control.cor_boundary)
    rule = StopRule(control.tol, control.tol_loglik, control.stall_window)
    history: list = []

    def record(ev: Evaluation, since: float, label: str = "") -> None:
        history.append(_row(len(history), ev, codes, time.perf_counter() - since, problem, label))
        if callback:
            callback(history[-1])

    t0 = time.perf_counter()
    # rough scores are allowed at the start: _assess repeats them exactly if the start is close
    ev = problem.derivatives(problem.evaluate(theta), rough=control.single_precision)
    record(ev, t0)
    prev_theta, prev_rel = None, None
    converged, message = False, f"stopped after {control.max_iter} iterations without meeting the convergence rule"
    it = 0
    while it < control.max_iter:
        it += 1
        codes0, held0 = codes, held
        cur = _assess(problem, ev, codes0, held0, bounds, rule, [r["loglik"] for r in history], prev_rel,
                      control.rough_above)
        ev, a, codes, held = cur.ev, cur.assessment, cur.codes, cur.held
        t_it = time.perf_counter()
        last = _last_step(problem, cur, bounds) if a.action == LAST_STEP else None
        if last is not None:
            prev_theta, theta, ev = theta, last.theta, last
            record(ev, t_it, "1")
        stop = CONVERGE if a.converged else LAST_STEP if last is not None else STALLED if a.stalled else None
        if stop:
            converged, message = True, a.message(stop)
            break
        t_it = time.perf_counter()
        acc = search(problem, ev, cur.step, codes, cur.free, bounds, control.step_control)
        if acc is None:
            if ev.rough:  # no rough step worked: the same iteration again, from exact scores
                codes, held, it = codes0, held0, it - 1
                ev = problem.derivatives(ev)
                continue
            converged = a.at_rounding  # the last AI step's gain is below the rounding of logL
            message = a.message(NO_STEP) if converged else \
                f"stopped at iteration {len(history)}: no step increased the log-likelihood"
            break
        prev_theta = theta
        prev_rel = a.contraction_base(acc.label == "1" and (acc.codes == codes).all())
        theta, codes = acc.evaluation.theta, acc.codes
        # rough scores while the next step is expected well above what their rounding can reach
        rough = control.single_precision and a.expected_next() > control.rough_above
        ev = problem.derivatives(acc.evaluation, rough=rough)
        # numbered by rows: a rough evaluation tried again (no step worked, above) takes no number
        record(ev, t_it, acc.label)
    return OptimResult(theta, list(codes), ev, converged, message, history, prev_theta)


def _row(it: int, ev: Evaluation, codes, seconds: float, problem: REMLProblem, step: str = "") -> dict:
    """History row: logL, seconds, the step taken (fraction of the AI step, and the
    Levenberg-Marquardt damping if any) and every reported parameter."""
    row = {"iteration": it, "loglik": ev.loglik, "seconds": seconds, "step": step}
    row.update({lab: float(v) for lab, v in zip(problem.report_labels, problem.report(ev.theta)[0])})
    row["bounds"] = "".join(codes)
    return row
