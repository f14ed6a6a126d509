"""``sr.fit(..., family=...)``: the GLMM's stages (read -> code -> start -> Laplace or PQL -> wrap).

The GLMM holds a linear mixed model and re-weights it: the design and the REML problem of the
Gaussian engine are built once (their symbolic analysis too) and formed again for each set of
record weights.  Start values come from the GLM without random effects and one REML fit of its
working variate (PQL's first round).
"""
from __future__ import annotations

import time

import numpy as np

from .._warmup import prepare
from ..api import _check_arguments, start_values
from ..control import resolve_control
from ..data import load_table, prepare_data
from ..design import build_design
from ..errors import ConvergenceWarning, ModelError, warn_user
from ..formula.spec import model_spec
from ..reml.optimizer import OptimResult, ai_reml
from ..reml.problem import REMLProblem
from .families import Family
from .inputs import check_separation, counts_and_trials, record_values, split_response
from .laplace import LaplaceProblem
from .negbin import boundary_message, dispersion_result, start_theta
from .optimize import DISPERSION_STEP, glm_start, laplace_fit, pql_fit, working_response
from .results import GLMMFit, glmm_labels

__all__ = ["fit_glmm", "METHODS"]

METHODS = ("laplace", "pql")


def fit_glmm(fixed: str, random, residual, data, *, family: Family, method: str = "laplace", weights=None,
             offset=None, factors=None, na_action: str = "error", start=None, fix=None, matrices=None,
             control=None, backend=None, max_iter=None, tol=None, callback=None, before=None) -> GLMMFit:
    """Fit a GLMM (arguments as :func:`sparsereml.fit`).  ``before``, if given, is called with the
    parameter labels (as the fit will report them) and the design once the model is coded, before
    any iteration: the command line checks functions of the components and classify tables there."""
    t0 = time.perf_counter()
    if method not in METHODS:
        raise ModelError(f"method must be one of {', '.join(map(repr, METHODS))} for a GLMM; got {method!r}")
    if method == "pql" and family.n_dispersion:
        raise ModelError("method='pql' is not available for the negative binomial: PQL has no likelihood of the "
                         "data by which to estimate theta (ASReml's PQL does not estimate it either); use "
                         "method='laplace', which estimates theta as glmmTMB does")
    if residual is not None:
        raise ModelError(f"a {family.name} GLMM has no residual variance to model (its variance is the "
                         f"family's); drop residual={residual!r}")
    control = resolve_control(control, backend=backend, max_iter=max_iter, tol=tol)
    fixed_y, resp = split_response(fixed, family) if isinstance(fixed, str) else (fixed, None)
    _check_arguments(fixed_y, random, residual, data, start, fix, matrices)
    spec = model_spec(fixed_y, random, None)
    if spec.fixed.multivariate:
        raise ModelError("a GLMM has one response; cbind(successes, failures) is the binomial response")
    df = load_table(data)
    with control.threading():
        md = prepare_data(spec, df, na_action, factors)
        y, trials = counts_and_trials(family, md.y, spec.fixed.response, resp, weights, df, md.rows)
        off = np.zeros(y.size) if offset is None else record_values(offset, "offset", df, md.rows)
        design = build_design(spec, md, na_action, matrices, factors, control.backend)
        prepare("glmm", control.backend)  # a first GLMM after installing compiles its kernels in parallel
        check_separation(design, y, trials, family)
        t1 = time.perf_counter()
        full = REMLProblem(design, control)
        res_slice = full.params.residual_slice
        X = full.design.fixed.X.tocsr()
        # the negative binomial starts from a moment estimate of theta (laplace_fit estimates it)
        theta_nb = start_theta(family, X, y, trials, off) if family.n_dispersion else None
        fam0 = family.at_theta(theta_nb) if family.n_dispersion else family
        beta0 = glm_start(fam0, X, y, trials, off)
        eta0 = design.fixed.X @ beta0 + off
        w, z = working_response(fam0, y, trials, eta0, off)
        full.reweight(weights=w, y=z)
        theta0, fixed_mask = start_values(full, start, fix)
        theta0[res_slice], fixed_mask[res_slice] = 1.0, True  # the family's variance: no residual parameter
        if before is not None:
            before(glmm_labels(full, family), design)
        seconds = {"design": t1 - t0, "equations": time.perf_counter() - t1}
        if method == "pql":
            return _pql(full, family, y, trials, off, theta0, fixed_mask, eta0, control, seconds, callback, fixed)
        return _laplace(full, family, y, trials, off, theta0, fixed_mask, beta0, control, seconds, callback,
                        user_start=start is not None, written=fixed, theta_nb=theta_nb)


def _laplace(full, family, y, trials, off, theta0, fixed_mask, beta0, control, seconds, callback, user_start, written,
             theta_nb=None):
    t0 = time.perf_counter()
    lp = LaplaceProblem(full.design, family, y, trials, off, control)
    k, kd = lp.k, lp.kd
    with control.threading():
        if not user_start:  # PQL's first round: REML on the GLM's working variate
            first = ai_reml(full, theta0, fixed_mask, control=control, max_iter=min(control.max_iter, 4))
            theta0 = np.where(fixed_mask, theta0, first.theta)
            beta0 = full.uncentred(first.evaluation.solution)[:full.p]
        t1 = time.perf_counter()
        th0 = np.append(theta0[:k], [np.log(theta_nb)] if lp.nd else [])  # log theta after the variances
        fixed0 = np.append(fixed_mask[:k], [getattr(family, "theta_fixed", False)] * lp.nd)
        res = laplace_fit(lp, th0, beta0, fixed=fixed0, max_iter=control.max_iter * 2, callback=callback)
        t2 = time.perf_counter()
        m = res.mode
        known = {lp.k: res.dispersion_column} if res.dispersion_column is not None else {}
        info, exact = laplace_information(lp, m, res.codes, res.gradient, res.schur, known=known)
        theta_info, vcov_beta, cov_theta = split_information(info, kd, res.codes)
        if lp.nd:  # the variances' information with log theta profiled out, as their covariance has it
            theta_info = np.zeros((k, k))
            fk = np.flatnonzero(np.asarray(res.codes[:k]) == "P")
            if fk.size:
                theta_info[np.ix_(fk, fk)] = np.linalg.inv(cov_theta[np.ix_(fk, fk)])
        # the full equations at the mode's weights: covariances of beta, PEVs, predictions
        w = np.maximum(m.d.weight, 1e-300)
        full.reweight(weights=w, y=m.eta - off + m.d.score / w)
        theta = lp.full_theta(m.theta)
        ev = full.evaluate(theta)
        ev.solution = np.concatenate([m.beta - full.ols, m.u])
        ev.loglik = m.loglik
        ai = np.zeros((k + 1, k + 1))
        ai[:k, :k] = theta_info
        ev.ai = ai
    codes = list(res.codes[:k]) + ["F"]
    labels = full.params.labels[:k]
    previous = lp.full_theta(np.array([res.history[-2][lab] for lab in labels])) if len(res.history) > 1 else None
    result = OptimResult(theta, codes, ev, res.converged, res.message, res.history, previous)
    dispersion = None
    if lp.nd:
        prev = res.history[-2]["theta"] if len(res.history) > 1 else None
        dispersion = dispersion_result(m.theta[k], res.codes[k], cov_theta[k, k], prev)
        family = lp.family_at(m.theta)[0]  # a copy at the estimate: the family the user passed is not changed
        if dispersion.code == "B":
            warn_user(boundary_message(family), ConvergenceWarning)
    if not res.converged:
        warn_user(res.message, ConvergenceWarning)
    seconds.update(start=t1 - t0, iterations=t2 - t1, information=time.perf_counter() - t2)
    seconds["total"] = sum(seconds.values())
    return GLMMFit(full, result, seconds, control, family=family, method="laplace", y=y, trials=trials,
                   offset=off, eta=m.eta, written=written,
                   vcov_beta=vcov_beta, exact_hessian=exact, dispersion=dispersion)


EXACT_HESSIAN_MAX = 10  # parameters (variance + fixed) up to which the beta block is differenced too (2 modes each)


def laplace_information(lp: LaplaceProblem, m, codes, gradient: np.ndarray, schur: np.ndarray,
                        exact_beta: bool | None = None, known: dict | None = None) -> tuple[np.ndarray, bool]:
    """Observed information of (theta, beta) at the optimum ``m`` (where the exact gradient is
    ``gradient`` and X'WX - X'WZ H^-1 Z'WX is ``schur``), over the estimated parameters.

    Columns of the estimated variance parameters: forward differences of the exact gradient (step
    1e-4 of the value: relative error ~1e-4 in the information).  The beta block: central
    differences when ``exact_beta`` (a forward one leans on the optimum's own mode, which its stop
    leaves a little short: with a step of 1e-5 of a coefficient near 0 that moved SEs by 3%) (default: at most EXACT_HESSIAN_MAX parameters in all), else X'WX - X'WZ
    H^-1 Z'WX, which leaves out the log-determinant's curvature in beta (relative size about 1 /
    records per random-effect level).  ``known`` maps a parameter's position to its column of
    the information already formed at ``m`` by the same difference (the dispersion's, which
    :func:`~sparsereml.glmm.optimize.laplace_fit` forms at every iterate).  Returns the matrix
    (zero rows and columns for parameters not estimated) and whether beta's block is exact."""
    k, p = lp.kd, m.beta.size  # theta: the random terms' parameters and the family's dispersion
    free = np.flatnonzero(np.asarray(codes[:k]) == "P")
    if exact_beta is None:
        exact_beta = free.size + p <= EXACT_HESSIAN_MAX
    x = np.concatenate([m.theta, m.beta])
    cols = list(free) + (list(range(k, k + p)) if exact_beta else [])
    H = np.zeros((k + p, k + p))
    known = known or {}
    for j in cols:
        if j in known:
            H[:, j] = -known[j]
            continue
        h = 1e-4 * max(abs(x[j]), 1e-6) if j < k else 1e-5 * max(abs(x[j]), 1e-2)
        if lp.nd and j == lp.k:  # log theta: an absolute step
            h = DISPERSION_STEP
        xs = x.copy()
        xs[j] += h
        g_th, g_b, _ = lp.gradient(lp.mode(xs[:k], xs[k:], m.u))
        if j < k:
            H[:, j] = (np.concatenate([g_th, g_b]) - gradient) / h
            continue
        xs[j] -= 2.0 * h
        g_th2, g_b2, _ = lp.gradient(lp.mode(xs[:k], xs[k:], m.u))
        H[:, j] = np.concatenate([g_th - g_th2, g_b - g_b2]) / (2.0 * h)
    info = -H
    if not exact_beta:
        info[k:, k:] = schur
        info[k:, :k] = info[:k, k:].T  # the columns differenced give the cross block
    info = 0.5 * (info + info.T)
    keep = np.zeros(k + p, bool)
    keep[free], keep[k:] = True, True
    info[~keep, :] = 0.0
    info[:, ~keep] = 0.0
    return info, exact_beta


def split_information(info: np.ndarray, k: int, codes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(theta information with beta profiled out, covariance of beta with theta's uncertainty,
    covariance of theta (zero rows and columns where not estimated)), from the joint information
    over the estimated parameters."""
    free = np.flatnonzero(np.asarray(codes[:k]) == "P")
    idx = np.concatenate([free, np.arange(k, info.shape[0])])
    cov = np.linalg.inv(info[np.ix_(idx, idx)])
    nf = free.size
    theta_info, cov_theta = np.zeros((k, k)), np.zeros((k, k))
    if nf:
        theta_info[np.ix_(free, free)] = np.linalg.inv(cov[:nf, :nf])
        cov_theta[np.ix_(free, free)] = cov[:nf, :nf]
    return 0.5 * (theta_info + theta_info.T), cov[nf:, nf:], cov_theta


def _pql(full, family, y, trials, off, theta0, fixed_mask, eta0, control, seconds, callback, written):
    t0 = time.perf_counter()
    with control.threading():
        out = pql_fit(full, family, y, trials, off, theta0, fixed_mask, eta0, control, callback=callback)
    if not out.converged:
        warn_user(out.message, ConvergenceWarning)
    res = out.result
    res.converged, res.message = out.converged, out.message
    seconds.update(iterations=time.perf_counter() - t0)
    seconds["total"] = sum(seconds.values())
    return GLMMFit(full, res, seconds, control, family=family, method="pql", y=y, trials=trials, offset=off,
                   eta=out.eta, pql_rounds=out.history, written=written)
