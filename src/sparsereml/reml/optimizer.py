"""AI-REML iterations with step control and ASReml's parameter codes.

Codes: ``P`` positive (estimated), ``B`` held at the boundary (a variance that
wanted to go below zero), ``F`` fixed by the user.

Convergence rule (reported in ``OptimResult.message``): stop at the first
iterate where, for every ``P`` parameter, the AI-Newton step is smaller than
``tol`` times the parameter (``tol=1e-6`` by default), the log-likelihood the
next step would gain (score' step / 2, the Newton decrement) is below
``tol_loglik`` (1e-6) or 1e-12 |logL| (the rounding level of logL on very large
data sets), and every ``B`` parameter's score points outside the parameter
space (or it is released).  Near the optimum AI-Newton steps shrink by a
steady factor per iteration; when the step after the current one is predicted
(from the last two full steps, shrinking by a factor below 1/2) to be below
``tol``, the current step is taken as the last one and the iterations stop
there: that point gets its log-likelihood and average information (standard
errors), and its selected inverse only when PEVs are asked for.  Where the
likelihood is flat in some direction (a nearly singular us() matrix, say)
rounding keeps the steps from getting that
small: three successive iterates whose expected gain is below the logL
tolerance and whose steps stopped shrinking also end the iterations, and the
message says so.

Precision of the scores: while the next step is expected to exceed 1e-4 of a
parameter (the last step times the square of the rate at which steps shrank), the scores
may come from a selected inverse whose wide dense root was inverted in single
precision (``REMLProblem.derivatives(rough=True)``).  Its rounding moves such a
step by about 1e-9 of a parameter on the trial network, far below the step
itself.  Every decision to stop, and every step below 1e-4, is made on exact
scores: a rough evaluation that would decide is repeated exactly.  The
log-likelihood and the average information are always exact.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..control import Control
from ..errors import NotPositiveDefinite
from .problem import Evaluation, REMLProblem

__all__ = ["ai_reml", "OptimResult"]

@dataclass
class OptimResult:
    theta: np.ndarray
    codes: list
    evaluation: Evaluation
    converged: bool
    message: str
    history: list = field(default_factory=list)
    previous_theta: np.ndarray | None = None

    @property
    def iterations(self) -> int:
        return len(self.history)


def _newton_step(ev: Evaluation, free: np.ndarray, damping: float = 0.0) -> np.ndarray:
    """Solve (H + damping diag(H)) step = score over the free parameters, where H is AI plus the
    second-derivative term of parameters that enter G nonlinearly (corh, us, fa) when that sum
    is positive definite, else AI."""
    step = np.zeros_like(ev.theta)
    idx = np.flatnonzero(free)
    if idx.size == 0:
        return step
    A = ev.ai[np.ix_(idx, idx)]
    if ev.curvature is not None and np.any(ev.curvature):
        H = A + ev.curvature[np.ix_(idx, idx)]
        try:
            np.linalg.cholesky(H)
            A = H
        except np.linalg.LinAlgError:
            pass
    if damping:
        A = A + damping * np.diag(np.diag(A))
    g = ev.score[idx]
    try:
        step[idx] = np.linalg.solve(A, g)
    except np.linalg.LinAlgError:
        step[idx] = np.linalg.lstsq(A, g, rcond=None)[0]
    return step


def ai_reml(problem: REMLProblem, start: np.ndarray, fixed: np.ndarray | None = None, *,
            control: Control | None = None, max_iter: int | None = None, tol: float | None = None,
            tol_loglik: float | None = None, callback=None) -> OptimResult:
    """Maximise the REML log-likelihood by average-information Newton steps.

    Parameters
    ----------
    problem : REMLProblem
    start : ndarray
        Starting values (positive for variances).
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
        return _iterate(problem, start, fixed, control, callback)


def _iterate(problem: REMLProblem, start, fixed, control: Control, callback) -> OptimResult:
    max_iter, tol, tol_loglik = control.max_iter, control.tol, control.tol_loglik
    rough_above = control.rough_above
    theta = np.asarray(start, dtype=float).copy()
    fixed = np.zeros(theta.size, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    codes = np.where(fixed, "F", "P").astype(object)
    pt = problem.params
    is_var = np.array([k == "var" for k in pt.kinds])
    is_cor = np.array([k == "cor" for k in pt.kinds])
    var_free = is_var & ~fixed
    scale = float(np.max(np.abs(theta[var_free]))) if var_free.any() else 1.0
    # distance from a bound that stands for "on the bound": 1e-8 of the variances' scale for
    # variances (a variance held at zero), 1e-6 for correlations (held at +-1)
    # a Cholesky diagonal of a us() Sigma is held at 1e-3 sqrt(scale): Sigma^-1 stays usable
    # Cholesky diagonals are judged against their own start too, so that traits on very different
    # scales (dbh in mm, height in km) each keep a sensible "zero"; a variance held at 1e-8 of the
    # largest (smaller ones make Sigma^-1 of an fa() model too ill-conditioned to work with)
    typ = np.abs(theta)
    kind_eps = {"var": np.full(theta.size, 1e-8 * scale), "cor": np.full(theta.size, 1e-6),
                "cov": np.zeros(theta.size), "load": np.zeros(theta.size),
                "chol": 1e-3 * np.maximum(typ, np.sqrt(scale))}
    eps = np.array([kind_eps[k][i] for i, k in enumerate(pt.kinds)])
    # below these magnitudes steps are judged absolutely (a loading or covariance may be ~0)
    kind_floor = {"var": kind_eps["var"], "cor": np.full(theta.size, 1e-4), "cov": np.full(theta.size, 1e-4 * scale),
                  "load": np.full(theta.size, 1e-4), "chol": kind_eps["chol"]}
    floor = np.array([kind_floor[k][i] for i, k in enumerate(pt.kinds)])
    lower, upper = pt.lower, pt.upper
    bounds = (lower, upper, eps, is_cor, is_var)
    t0 = time.perf_counter()
    ev = problem.derivatives(problem.evaluate(theta), rough=control.single_precision)  # checked below if the start is close
    history = [_row(0, ev, codes, time.perf_counter() - t0, problem)]
    if callback:
        callback(history[-1])
    prev_theta, prev_rel = None, None
    window = control.stall_window  # iterations over which a flat likelihood must not have risen
    converged, message = False, f"stopped after {max_iter} iterations without meeting the convergence rule"
    dep = pt.scale_of >= 0 if pt.scale_of is not None else np.zeros(theta.size, dtype=bool)
    held = np.zeros(theta.size, dtype=bool)  # correlations held (code B) because their variance is held
    it = 0
    while it < max_iter:
        it += 1
        codes0, held0 = codes, held
        while True:
            codes, held = codes0.copy(), held0.copy()
            at_lower = theta <= lower + eps
            release = (codes == "B") & ~held & np.where(at_lower, ev.score > 0, ev.score < 0)  # score points inside
            codes[release] = "P"
            # a residual group's correlations mean nothing while its variance is held at zero
            now = dep & (codes[np.maximum(pt.scale_of, 0)] == "B") if dep.any() else held
            codes[held & ~now] = "P"
            codes[now] = "B"
            held = now
            free = codes == "P"
            step = _newton_step(ev, free)
            rel = np.abs(step[free]) / np.maximum(np.abs(theta[free]), floor[free])
            rel_max = float(rel.max()) if rel.size else 0.0
            small = rel_max < tol
            gain = 0.5 * float(step[free] @ ev.score[free])
            flat = gain < max(tol_loglik, 1e-12 * abs(ev.loglik))
            # stalled: flat, and logL rose less than the tolerance over the last iterations, so
            # steps wander along a ridge (e.g. a nearly singular us()); a slow but genuine approach
            # to a boundary keeps realising its predicted gains and goes on
            stalled = (flat and len(history) > window
                       and ev.loglik - history[-1 - window]["loglik"] < max(tol_loglik, 1e-12 * abs(ev.loglik)))
            rho = rel_max / prev_rel if (prev_rel and rel.size) else np.inf
            # every decision to stop, and every step small enough for rounding to matter, is
            # taken on exact scores
            deciding = (small and flat) or stalled or (flat and rho < 0.5 and rho * rel_max < tol) \
                or rel_max < rough_above
            if not (ev.rough and deciding):
                break
            ev = problem.derivatives(ev)
        if small and flat:
            converged = True
            message = (f"converged: AI-Newton steps below {tol:g} of each parameter and expected "
                       f"logL gain {gain:.2g}")
            break
        # near the optimum AI steps shrink by a steady factor rho per iteration (AI approximates
        # the Hessian, so convergence is linear with a small rho); when the step after this one is
        # predicted below tol, take this one and stop there: the last point needs logL and AI
        # (standard errors), not scores, so its selected inverse is left until PEVs are asked for
        if flat and rho < 0.5 and rho * rel_max < tol:
            t_it = time.perf_counter()
            cand, cand_codes = _try(problem, theta, step, codes, free, bounds, ev.loglik)
            if cand is not None and (cand_codes == codes).all():
                prev_theta, theta = theta, cand.theta
                ev = problem.derivatives(cand, scores=False)
                history.append(_row(len(history), ev, codes, time.perf_counter() - t_it, problem, "1"))
                if callback:
                    callback(history[-1])
                converged = True
                message = (f"converged: AI-Newton steps shrank by {rho:.2g} per iteration; after the last "
                           f"({rel_max:.1g} of a parameter) the next is below {tol:g} of each parameter")
                break
        if stalled:
            converged = True
            message = (f"converged in logL: it rose less than {tol_loglik:g} over {window} iterations, but "
                       f"steps still reach {rel_max:.1g} of a parameter (poorly determined; see std.error)")
            break
        t_it = time.perf_counter()
        new_ev, new_codes = None, codes.copy()
        # step control: the AI step, then shorter steps that also turn towards the score
        # (Levenberg-Marquardt damping): plain halving stalls where AI is a poor model, e.g. a
        # us() covariance near singularity
        for damping, lam in control.step_control:
            if damping:
                step = _newton_step(ev, free, damping)
            cand, new_codes = _try(problem, theta, lam * step, codes, free, bounds, ev.loglik)
            if cand is not None:
                new_ev = cand
                step_label = f"{lam:g}" if not damping else f"{lam:g} LM {damping:g}"
                # a shortened or damped step that worked: along a ridge AI steers well but
                # steps too short, so try twice, four and eight times as far while logL rises
                mult = 1.0
                while (damping or lam < 1.0) and mult < 8.0 and (new_codes == codes).all():
                    longer, longer_codes = _try(problem, theta, 2.0 * mult * lam * step, codes, free, bounds,
                                                new_ev.loglik + 1e-9 * max(1.0, abs(new_ev.loglik)))
                    if longer is None or (longer_codes != codes).any():
                        break  # (derivatives factorises new_ev again: the factor holds the rejected point)
                    mult *= 2.0
                    new_ev, new_codes = longer, longer_codes
                    step_label = f"{mult * lam:g}" + (f" LM {damping:g}" if damping else "")
                break
        if new_ev is None:
            if ev.rough:  # no rough step worked: the same iteration again, from exact scores
                codes, held, it = codes0, held0, it - 1
                ev = problem.derivatives(ev)
                continue
            if gain < 1e-3 and rel_max < 1e-3:
                # at the optimum to within rounding: the last AI step's gain is below the
                # rounding of logL, so it cannot show
                converged = True
                message = (f"converged: no step raised logL beyond rounding (expected gain {gain:.2g}, steps "
                           f"below {rel_max:.1g} of each parameter)")
            else:
                message = f"stopped at iteration {len(history)}: no step increased the log-likelihood"
            break
        prev_theta = theta
        # the contraction rate is only read from full AI steps that kept the bound codes
        prev_rel = rel_max if (step_label == "1" and (new_codes == codes).all() and rel.size) else None
        theta, codes = new_ev.theta, new_codes
        # rough scores while the next step is expected well above what their rounding can reach.
        # Expected: this step times the square of the last contraction (once the start's
        # nonlinearity fades the steps shrink abruptly to AI's own rate; a linear prediction
        # missed by 10-100x on the trial networks, and each miss cost an exact repeat)
        expected = rel_max * (min(rho, 1.0) ** 2 if np.isfinite(rho) else 1.0)
        ev = problem.derivatives(new_ev, rough=control.single_precision and expected > rough_above)
        # numbered by rows: a rough evaluation tried again (no step worked, above) takes no number
        history.append(_row(len(history), ev, codes, time.perf_counter() - t_it, problem, step_label))
        if callback:
            callback(history[-1])
    return OptimResult(theta, list(codes), ev, converged, message, history, prev_theta)


def _try(problem: REMLProblem, theta, step, codes, free, bounds, floor: float):
    """Evaluate theta + step (moved by the structures, held inside the bounds); return the
    evaluation and the new bound codes if logL is at least ``floor`` (less rounding), else None."""
    lower, upper, eps, is_cor, is_var = bounds
    try:
        trial = problem.move(theta, step)
    except NotPositiveDefinite:  # a covariance left the positive-definite cone
        return None, codes
    # a correlation stepping past +-1 goes halfway there instead: at +-1 the model is
    # degenerate, and from a poor start the AI step often overshoots
    past = is_cor & free & ((trial < lower + eps) | (trial > upper - eps))
    trial[past] = 0.5 * (theta[past] + np.where(trial[past] < theta[past], lower[past], upper[past]))
    # a variance stepping below zero from well above it drops to a hundredth instead of being held
    # at the bound at once: from a poor start the first AI steps overshoot (a nugget and a
    # spatial variance trading places), and a variance held at zero takes its correlations along
    shrink = is_var & free & (trial < lower + eps) & (theta > 1e4 * (lower + eps))
    trial[shrink] = lower[shrink] + 0.01 * (theta[shrink] - lower[shrink])
    new_codes = codes.copy()
    low_hit = free & (trial < lower + eps)
    high_hit = free & (trial > upper - eps)
    trial = np.where(low_hit, lower + eps, np.where(high_hit, upper - eps, trial))
    new_codes[low_hit | high_hit] = "B"
    try:
        cand = problem.evaluate(trial)
    except NotPositiveDefinite:
        return None, codes
    if np.isfinite(cand.loglik) and cand.loglik >= floor - 1e-12 * max(1.0, abs(floor)):
        return cand, new_codes
    return None, codes


def _row(it: int, ev: Evaluation, codes, seconds: float, problem: REMLProblem, step: str = "") -> dict:
    """History row: logL, seconds, the step taken (fraction of the AI step, and the
    Levenberg-Marquardt damping if any) and every reported parameter."""
    row = {"iteration": it, "loglik": ev.loglik, "seconds": seconds, "step": step}
    row.update({lab: float(v) for lab, v in zip(problem.report_labels, problem.report(ev.theta)[0])})
    row["bounds"] = "".join(codes)
    return row
