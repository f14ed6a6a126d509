"""Maximising the Laplace likelihood over (theta, beta), and PQL.

Laplace: Newton steps on the exact gradient of l(theta, beta) (:class:`LaplaceProblem`) with the
approximate information blockdiag(AI_theta, X'WX - X'WZ H^-1 Z'WX) and a line search on l.  A
variance (or us() Cholesky diagonal) that the steps drive to its bound is held there (code B)
while its score says so, with AI-REML's bounds.

PQL (ASReml's): AI-REML on the working variate z = eta - offset + (y - mu) / (dmu/deta) with
record weights (dmu/deta)^2 / V(mu), the residual variance fixed at 1, iterated until the variance
parameters stop changing.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import ModelError
from ..reml.bounds import Bounds
from ..reml.optimizer import ai_reml
from ..reml.problem import REMLProblem
from .families import Family
from .laplace import LaplaceProblem, Mode

__all__ = ["LaplaceResult", "laplace_fit", "glm_start", "pql_fit", "PQLResult", "working_response"]


@dataclass
class LaplaceResult:
    """What :func:`laplace_fit` returns.

    Attributes
    ----------
    mode : Mode
        The last iterate: parameters, random effects' mode, Laplace log-likelihood.
    codes : list of str
        ``P`` estimated, ``B`` held at zero, ``F`` fixed; per random-term parameter.
    converged : bool
    message : str
    history : list of dict
        One row per iterate: iteration, loglik, the parameters, Newton decrement, seconds.
    gradient : ndarray
        (theta, beta) gradient at the last iterate.
    schur : ndarray
        X'WX - X'WZ H^-1 Z'WX at the last iterate (the fixed effects' approximate information).
    dispersion_column : ndarray or None
        The dispersion's column of the information at the last iterate (:func:`dispersion_column`),
        when it was estimated there; None otherwise.
    """

    mode: Mode
    codes: list
    converged: bool
    message: str
    history: list = field(default_factory=list)
    gradient: np.ndarray | None = None
    schur: np.ndarray | None = None
    dispersion_column: np.ndarray | None = None


def working_response(family: Family, y, trials, eta, offset) -> tuple[np.ndarray, np.ndarray]:
    """Fisher-scoring weights and working variate (without the offset) at ``eta``."""
    d = family.derivatives(y, trials, eta)
    w = np.maximum(family.fisher_weight(trials, eta), 1e-300)
    return w, eta - offset + d.score / w


def glm_start(family: Family, X: sp.csr_matrix, y, trials, offset, max_iter: int = 30) -> np.ndarray:
    """Fixed effects of the GLM without random effects (iteratively reweighted least squares)."""
    eta = family.start_eta(y, trials)
    beta = np.zeros(X.shape[1])
    dev_old = np.inf
    for _ in range(max_iter):
        w, z = working_response(family, y, trials, eta, offset)
        XtW = X.T.multiply(w[None, :]).tocsr()
        A = (XtW @ X).toarray()
        beta = np.linalg.lstsq(A, XtW @ z, rcond=None)[0]
        eta = X @ beta + offset
        dev = -float(family.derivatives(y, trials, eta).loglik.sum())
        if abs(dev - dev_old) < 1e-10 * (1.0 + abs(dev)):
            break
        dev_old = dev
    return beta


def laplace_fit(lp: LaplaceProblem, theta0: np.ndarray, beta0: np.ndarray, fixed: np.ndarray | None = None,
                max_iter: int = 100, tol: float = 1e-8, callback=None) -> LaplaceResult:
    """Maximise the Laplace log-likelihood from (theta0, beta0).

    Parameters
    ----------
    lp : LaplaceProblem
    theta0, beta0 : ndarray
        Start values of the random-term parameters (working; the family's dispersion, log theta,
        last if it has one) and fixed effects.
    fixed : ndarray of bool, optional
        Parameters of theta0 held at their start (code F).
    tol : float
        Stop when the Newton decrement g'M^-1 g (about twice the log-likelihood still to gain)
        is below it.
    callback : callable, optional
        Called with each history row.
    """
    rp = lp.random_problem
    k, kd = lp.k, lp.kd
    held = np.zeros(kd, bool) if fixed is None else np.asarray(fixed, bool)
    codes = np.where(held, "F", "P").astype(object)
    bounds = Bounds.from_table(rp.params, lp.full_theta(theta0), np.append(held[:k], True))
    t0 = time.perf_counter()
    m = lp.mode(theta0, beta0)
    history, converged, message = [], False, ""
    for it in range(max_iter + 1):
        g_th, g_b, _ = lp.gradient(m)
        ai, S = lp.information(m)
        _release_boundary(codes, g_th, k)
        free = np.concatenate([codes == "P", np.ones(g_b.size, bool)])
        g = np.concatenate([g_th, g_b])
        M = np.zeros((g.size, g.size))
        M[:kd, :kd], M[kd:, kd:] = ai, S
        idx = np.flatnonzero(free)
        column = None
        if lp.nd and codes[k] == "P":  # the dispersion's row of the information: one more mode
            column = dispersion_column(lp, m, g)
            M[:, k] = M[k, :] = column
            _definite_dispersion(M, idx, k, g)
        step = np.zeros(g.size)
        step[idx] = _ascent(M[np.ix_(idx, idx)], g[idx])
        if lp.nd and abs(step[k]) > MAX_DISPERSION_STEP:  # the whole step shortened: still an ascent
            step *= MAX_DISPERSION_STEP / abs(step[k])
        dec = float(g[idx] @ step[idx])
        row = {"iteration": it, "loglik": m.loglik, **dict(zip(rp.params.labels[:k], m.theta)),
               **({"theta": float(np.exp(m.theta[k]))} if lp.nd else {}),
               "decrement": dec, "seconds": time.perf_counter() - t0}
        history.append(row)
        if callback:
            callback(row)
        if dec < tol:
            converged, message = True, f"converged: Newton decrement {dec:.1e} < {tol:g}"
            break
        if it == max_iter:
            message = f"not converged in {max_iter} iterations (Newton decrement {dec:.2g})"
            break
        m = _line_search(lp, m, step, codes, bounds)
        t0 = time.perf_counter()
    return LaplaceResult(m, list(codes), converged, message, history, np.concatenate([g_th, g_b]), S, column)


def _ascent(M: np.ndarray, g: np.ndarray) -> np.ndarray:
    """M^-1 g with M's eigenvalues kept above 1e-9 of its largest: near a boundary (a us()
    covariance of rank deficit) the average information is nearly singular, and an exact solve
    gives a huge step that no line search can use; the floor keeps it an ascent direction."""
    scale = np.sqrt(np.maximum(np.abs(np.diag(M)), 1e-300))  # the parameters' scales differ
    Ms = M / np.outer(scale, scale)
    w, V = np.linalg.eigh(0.5 * (Ms + Ms.T))
    w = np.maximum(w, 1e-9 * max(float(w.max()), 1e-300))
    return (V @ ((V.T @ (g / scale)) / w)) / scale


DISPERSION_STEP = 1e-4  # log theta's difference step (absolute: it is a log)
MAX_DISPERSION_STEP = 2.0  # log theta moves at most this far per Newton step (theta by e^2)


def _definite_dispersion(M: np.ndarray, idx: np.ndarray, k: int, g: np.ndarray) -> None:
    """Keep the Newton matrix positive definite when the dispersion's differenced row makes it
    indefinite (far from the optimum, or where l is nearly flat in log theta as theta runs to
    its bound): the eigenvalue floor of :func:`_ascent` would turn that into a huge step.  Its
    cross terms are dropped, and a curvature that is not positive gives a unit gradient step."""
    sub = M[np.ix_(idx, idx)]
    scale = np.sqrt(np.maximum(np.abs(np.diag(sub)), 1e-300))
    try:
        np.linalg.cholesky(sub / np.outer(scale, scale))
        return
    except np.linalg.LinAlgError:
        pass
    d = M[k, k]
    M[k, :] = M[:, k] = 0.0
    M[k, k] = d if d > 0 else max(abs(g[k]), 1e-12)


def dispersion_column(lp: LaplaceProblem, m: Mode, g: np.ndarray) -> np.ndarray:
    """-d(gradient)/d(log theta) at ``m`` (gradient ``g``) by a forward difference: the
    dispersion's row and column of the information (call it after every use of ``m``'s factor:
    the mode at the shifted dispersion factorises the equations anew at the same variances)."""
    k = lp.k
    th = m.theta.copy()
    th[k] += DISPERSION_STEP
    g_th, g_b, _ = lp.gradient(lp.mode(th, m.beta, m.u))
    return -(np.concatenate([g_th, g_b]) - g) / DISPERSION_STEP


def _release_boundary(codes, g_th, k: int) -> None:
    """A parameter held on its lower bound whose score points inwards is estimated again (the
    dispersion, held at its upper bound THETA_MAX, when its score is negative)."""
    for j in np.flatnonzero((codes[:k] == "B") & (g_th[:k] > 0)):
        codes[j] = "P"
    if codes.size > k and codes[k] == "B" and g_th[k] < 0:
        codes[k] = "P"


def _line_search(lp: LaplaceProblem, m: Mode, step: np.ndarray, codes, bounds: Bounds) -> Mode:
    """The first of t = 1, 1/2, ... whose iterate does not lower the log-likelihood, each trial
    point brought inside the parameters' bounds as AI-REML does (:class:`~sparsereml.reml.bounds.Bounds`:
    a variance or a us() Cholesky diagonal that reaches its bound is held there, code B)."""
    k, kd = lp.k, lp.kd
    rp = lp.random_problem
    start = lp.full_theta(m.theta)
    free = np.append(codes[:k] == "P", False)
    t = 1.0
    for _ in range(40):
        trial = rp.move(start, np.concatenate([t * step[:k], [0.0]]))
        trial, hit = bounds.clip(trial, start, free)
        disp, disp_hit = _dispersion_trial(lp, m.theta[k:], t * step[k:kd])
        try:
            new = lp.mode(np.concatenate([trial[:k], disp]), m.beta + t * step[kd:], m.u)
        except ModelError:
            new = None
        if new is not None and new.loglik >= m.loglik - 1e-10 * abs(m.loglik):
            codes[np.flatnonzero(hit[:k])] = "B"
            if disp_hit:
                codes[k] = "B"
            return new
        t *= 0.5
    raise ModelError(_stuck_message(lp, m, codes, bounds))


def _dispersion_trial(lp: LaplaceProblem, phi: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, bool]:
    """log theta moved by ``step``, kept in the family's [log THETA_MIN, log THETA_MAX], and
    whether it reached a bound."""
    if not lp.nd:
        return phi, False
    lo, hi = np.log(lp.family.THETA_MIN), np.log(lp.family.THETA_MAX)
    new = phi + step
    return np.clip(new, lo, hi), bool(np.any((new >= hi) | (new <= lo)))


def _stuck_message(lp: LaplaceProblem, m: Mode, codes, bounds: Bounds) -> str:
    """Why the line search failed: at a structure's boundary (named), or elsewhere."""
    labels = lp.random_problem.params.labels[:lp.k]
    full = lp.full_theta(m.theta)
    kinds = lp.random_problem.params.kinds[:lp.k]
    big = max([abs(v) for v, kd in zip(m.theta, kinds) if kd in ("var", "chol")] + [1e-300])
    # on or near a bound: held there, or a variance / Cholesky diagonal below 1e-5 of the largest
    near = [kd in ("var", "chol") and abs(v) < 1e-5 * big for v, kd in zip(m.theta, kinds)]
    edge = [lab for j, lab in enumerate(labels) if codes[j] == "B" or bounds.at_lower(full)[j] or near[j]]
    if edge:
        terms = sorted({lab.split("!")[0] for lab in edge})
        return (f"the Laplace fit reached the boundary of {', '.join(terms)} ({', '.join(edge[:4])}"
                f"{' ...' if len(edge) > 4 else ''} at their bounds: a zero variance or correlations of +-1) and "
                f"cannot go on from there; GLMM fits do not hold covariance structures on their boundary yet: "
                f"fit a simpler structure (one variance, or diag())")
    return ("the Laplace likelihood could not be increased along the Newton direction "
            f"({lp._where(m.theta)}); try other start values")


@dataclass
class PQLResult:
    """What :func:`pql_fit` returns: the last REML fit of the working variate and the rounds
    (``history``: iteration 0 is the REML fit of the GLM's working variate, iteration r the
    (r + 1)-th; loglik is the REML log-likelihood of that round's working variate)."""

    result: object
    theta: np.ndarray
    eta: np.ndarray
    converged: bool
    message: str
    rounds: int
    history: list = field(default_factory=list)


def pql_fit(problem: REMLProblem, family: Family, y, trials, offset, theta0: np.ndarray, fixed: np.ndarray,
            eta0: np.ndarray, control, max_rounds: int = 50, tol: float = 1e-8, callback=None) -> PQLResult:
    """PQL: AI-REML on the working variate, its residual fixed at 1 (``fixed`` marks it), until
    the largest relative change of the variance parameters between rounds is below ``tol``."""
    theta, eta, history = np.array(theta0, dtype=float), eta0, []
    for r in range(1, max_rounds + 1):
        t0 = time.perf_counter()
        w, z = working_response(family, y, trials, eta, offset)
        problem.reweight(weights=w, y=z)
        res = ai_reml(problem, theta, fixed, control=control)
        change = float(np.max(np.abs(res.theta - theta) / np.maximum(np.abs(theta), 1e-10))) if theta.size else 0.0
        theta = res.theta.copy()
        sol = problem.uncentred(res.evaluation.solution)
        eta = problem.design.W() @ sol + offset
        labels = problem.params.labels[:problem.params.residual_slice.start]
        row = {"iteration": r - 1, "loglik": res.evaluation.loglik, **dict(zip(labels, theta)),
               "change": change, "reml_iterations": res.n_iterations, "seconds": time.perf_counter() - t0}
        history.append(row)
        if callback:
            callback(row)
        if not res.converged:
            return PQLResult(res, theta, eta, False, f"PQL round {r}: {res.message}", r, history)
        if change < tol:
            return PQLResult(res, theta, eta, True, f"PQL converged in {r} rounds", r, history)
    return PQLResult(res, theta, eta, False, f"PQL not converged in {max_rounds} rounds (last change "
                     f"{change:.2g})", max_rounds, history)
