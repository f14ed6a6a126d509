"""Confidence intervals for the variance parameters of a REML fit (``m.confint``).

Wald: estimate +- z std.error, the standard error from the inverse average information (as
ASReml users form them).  The interval is not clipped: a variance's lower limit below zero says
that the normal approximation is poor there, and the ``note`` column says so (lme4's
``confint(method = "Wald")`` gives no interval at all for variance parameters).

Profile: the values of one parameter at which the REML log-likelihood, maximised over all the
others, falls by chi2_1(level) / 2 below its maximum (the likelihood-ratio interval).  Each
profile point is a fit of the same :class:`~sparsereml.REMLProblem` (its symbolic analysis is
reused) with that parameter held (code F), started from the nearest point already fitted.  A
limit that would lie beyond the parameter's bound (a variance whose logL does not fall enough
before zero) is reported as the bound, with a note.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .control import Control
from .errors import ModelError, UnknownName
from .reml.optimizer import ai_reml
from .results import FittedModel

__all__ = ["confint", "profile_loglik"]

# the inner fits stop far below the logL precision the limits need (1e-6 of the chi2 target)
_INNER = {"tol": 1e-9, "tol_loglik": 1e-10}
_MAX_EXPAND = 40  # doublings of the bracket before a limit is given up as not reached


def confint(m: FittedModel, terms=None, method: str = "wald", level: float = 0.95) -> pd.DataFrame:
    """Confidence intervals for the variance parameters of ``m``.

    Parameters
    ----------
    m : FittedModel
    terms : str or list of str, optional
        Parameter labels (``m.varcomp.index``); default every parameter not fixed (code F).
    method : {"wald", "profile"}
        ``"wald"``: estimate +- z std.error.  ``"profile"``: the likelihood-ratio interval from
        the profile REML log-likelihood; it refits the model a few times per limit.
    level : float
        Coverage, between 0 and 1.

    Returns
    -------
    DataFrame
        Indexed by label: ``estimate``, ``lower``, ``upper``, ``method`` and ``note`` (a Wald
        interval that crosses the parameter's bound, a profile limit held at its bound, a
        parameter held at its bound or fixed, for which a Wald interval is NA).

    Raises
    ------
    ModelError
        An unknown method or level; for ``"profile"``, parameters the fit does not iterate on
        directly (the covariances and variances of us() and corgh(), reported from a Cholesky
        factor), named.
    """
    if not isinstance(m, FittedModel):
        raise ModelError(f"confint() needs a fitted model; got {type(m).__name__}")
    method = method.lower() if isinstance(method, str) else method
    if method not in ("wald", "profile"):
        raise ModelError(f"method must be 'wald' or 'profile'; got {method!r}")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ModelError(f"level must be a number between 0 and 1, e.g. 0.95; got {level!r}")
    labels = _terms(m, terms)
    if method == "wald":
        return _wald(m, labels, float(level))
    return _profile(m, labels, float(level))


def _terms(m: FittedModel, terms) -> list:
    if terms is None:
        return [lab for lab, c in zip(m.labels, m.codes) if c != "F"]
    terms = [terms] if isinstance(terms, str) else list(terms)
    unknown = [t for t in terms if t not in m.labels]
    if unknown:
        raise UnknownName(f"not parameters of this model: {', '.join(map(repr, unknown))} (parameters: "
                          f"{', '.join(m.labels)})")
    return terms


def _reported_bounds(m: FittedModel) -> dict:
    """Admissible range of each reported parameter by its kind."""
    rng = {"var": (0.0, np.inf), "cor": (-1.0, 1.0)}
    return {lab: rng.get(k, (-np.inf, np.inf)) for lab, k in zip(m.labels, m.problem.report_kinds)}


def _wald(m: FittedModel, labels: list, level: float) -> pd.DataFrame:
    z = stats.norm.ppf(0.5 + level / 2)
    vc = m.varcomp
    # as dicts: a .loc lookup per cell cost 0.15 ms, for 60 per-trial parameters 30 ms
    component, std_error, bound = (vc[c].to_dict() for c in ("component", "std.error", "bound"))
    bounds = _reported_bounds(m)
    rows = []
    for lab in labels:
        est, se, code = component[lab], std_error[lab], bound[lab]
        lo, hi = (est - z * se, est + z * se) if code == "P" else (np.nan, np.nan)
        lb, ub = bounds[lab]
        if code != "P":
            note = "fixed (F): no interval" if code == "F" else "held at a bound (B): no standard error"
        elif lo < lb or hi > ub:
            # not clipped: a limit outside the parameter space shows the normal approximation fails
            note = f"crosses the bound {lb:g}" if lo < lb else f"crosses the bound {ub:g}"
        else:
            note = ""
        rows.append({"estimate": est, "lower": lo, "upper": hi, "method": "wald", "note": note})
    return _frame(rows, labels, level)


def _frame(rows: list, labels: list, level: float) -> pd.DataFrame:
    out = pd.DataFrame(rows, index=pd.Index(labels, name="term"),
                       columns=["estimate", "lower", "upper", "method", "note"])
    out.attrs["level"] = level
    return out


# -- profile --------------------------------------------------------------------------------

def _working_index(m: FittedModel) -> dict:
    """Reported label -> index of the working parameter equal to it, for the parameters the fit
    iterates on directly (plain, at() and diag() variances, residual variances, correlations of
    ar1/corv/corh, fa specific variances and loadings); us() entries come from a Cholesky factor."""
    J = m.problem.report(m.theta_working)[1]
    out = {}
    for i, lab in enumerate(m.labels):
        nz = np.flatnonzero(J[i])
        if nz.size == 1 and J[i, nz[0]] == 1.0 and np.count_nonzero(J[:, nz[0]]) == 1 \
                and m.theta[i] == m.theta_working[nz[0]]:
            out[lab] = int(nz[0])
    return out


class _Profile:
    """The profile REML log-likelihood of one working parameter of a fit."""

    def __init__(self, m: FittedModel, j: int, control: Control):
        self.m, self.j, self.control = m, j, control
        self.fixed = np.array([c == "F" for c in m.result.codes]) | (np.arange(m.theta_working.size) == j)
        self.points: list = [(float(m.theta_working[j]), m.theta_working.copy())]
        self.unconverged = 0

    def __call__(self, value: float) -> float:
        # warm start: the fitted point nearest this value
        _, start = min(self.points, key=lambda p: abs(p[0] - value))
        start = start.copy()
        start[self.j] = value
        res = ai_reml(self.m.problem, start, self.fixed, control=self.control)
        self.unconverged += not res.converged
        self.points.append((value, res.theta.copy()))
        return float(res.evaluation.loglik)


def profile_loglik(m: FittedModel, term: str, values, control: Control | None = None) -> np.ndarray:
    """The profile REML log-likelihood of parameter ``term`` of ``m`` at ``values``: logL
    maximised over the other parameters with ``term`` held at each value.

    The fits reuse ``m.problem``; ``m``'s tables are unchanged afterwards.  ``control`` defaults
    to the fit's with tolerances 1e-9 (steps) and 1e-10 (logL)."""
    j = _profilable(m, [term])[term]
    prof = _Profile(m, j, control or m.control.updated(**_INNER))
    try:
        return np.array([prof(float(v)) for v in np.atleast_1d(values)])
    finally:
        m.problem.hold(m.result.evaluation)  # leave the factor where the fit left it


def _profilable(m: FittedModel, labels: list) -> dict:
    index = _working_index(m)
    bad = [lab for lab in labels if lab not in index]
    if bad:
        raise ModelError("profile intervals need parameters the fit iterates on directly; these are reported "
                         f"from a Cholesky factor (us(), corgh()): {', '.join(bad)}.  Use method='wald' for "
                         "them, or choose others with terms=")
    return {lab: index[lab] for lab in labels}


def _profile(m: FittedModel, labels: list, level: float) -> pd.DataFrame:
    fixed = [lab for lab in labels if m.codes[m.labels.index(lab)] == "F"]
    if fixed:
        raise ModelError(f"fixed parameters (code F) have no interval: {', '.join(fixed)}")
    index = _profilable(m, labels)
    control = m.control.updated(**_INNER)
    target = np.sqrt(stats.chi2.ppf(level, 1))  # on the signed-root scale, near linear in the parameter
    params = m.problem.params
    free_var = [i for i, (k, c) in enumerate(zip(params.kinds, m.result.codes)) if k == "var" and c != "F"]
    scale = float(np.max(np.abs(m.theta_working[free_var]))) if free_var else 1.0
    se = m.varcomp["std.error"]
    rows = []
    try:
        for lab in labels:
            j = index[lab]
            kind = params.kinds[j]
            # the closest the fits go to a bound (what code B holds a parameter at)
            eps = m.control.var_boundary * scale if kind == "var" else m.control.cor_boundary
            lb = params.lower[j] + eps if np.isfinite(params.lower[j]) else -np.inf
            ub = params.upper[j] - eps if np.isfinite(params.upper[j]) else np.inf
            prof = _Profile(m, j, control)
            est = float(m.theta_working[j])
            notes = []
            if m.result.codes[j] == "B":  # held at its bound: that is where the interval starts
                lb = est
            lo = _limit(prof, m.loglik, est, -1, lb, se[lab], kind, target, notes, params.lower[j])
            hi = _limit(prof, m.loglik, est, +1, ub, se[lab], kind, target, notes, params.upper[j])
            if prof.unconverged:
                notes.append(f"{prof.unconverged} profile fits not converged")
            rows.append({"estimate": m.theta[m.labels.index(lab)], "lower": lo, "upper": hi, "method": "profile",
                         "note": "; ".join(notes)})
    finally:
        m.problem.hold(m.result.evaluation)  # leave the factor where the fit left it
    return _frame(rows, labels, level)


def _limit(prof: _Profile, lmax: float, est: float, side: int, edge: float, se: float, kind: str,
           target: float, notes: list, bound: float) -> float:
    """One limit of the profile interval: the root of sqrt(2 (lmax - logL(v))) = target on one side
    of ``est``, in log v for a variance (where the profile is closer to linear), else in v."""
    use_log = kind == "var"
    to_v = np.exp if use_log else (lambda u: u)
    u0 = np.log(est) if use_log else est
    u_edge = (np.log(edge) if edge > 0 else -np.inf) if use_log else edge

    seen: dict = {u0: -target}  # brentq asks again for the bracket's ends: no refit for them

    def g(u: float) -> float:
        if u not in seen:
            seen[u] = np.sqrt(2.0 * max(lmax - prof(float(to_v(u))), 0.0)) - target
        return seen[u]

    if (side < 0 and u0 <= u_edge) or (side > 0 and u0 >= u_edge):  # estimate held at this bound
        notes.append(f"{'lower' if side < 0 else 'upper'} limit at the bound {bound:g} (estimate on it)")
        return float(bound)
    # first step: the Wald half-width (in log v: its relative size), else a factor of 10 for a
    # variance held at its bound, a tenth of the value otherwise
    if np.isfinite(se) and se > 0:
        d = target * (se / est if use_log else se)
    else:
        d = np.log(10.0) if use_log else 0.1 * max(abs(est), 1e-3)
    a = u0
    for _ in range(_MAX_EXPAND):
        b = u0 + side * d
        if (side < 0 and b <= u_edge) or (side > 0 and b >= u_edge):
            b = u_edge
        gb = g(b)
        if gb >= 0:
            lo_, hi_ = sorted((a, b))
            root = optimize.brentq(g, lo_, hi_, xtol=1e-9 * max(d, 1e-12), rtol=1e-15, maxiter=200)
            return float(to_v(root))
        if b == u_edge:  # logL never falls far enough before the bound
            notes.append(f"{'lower' if side < 0 else 'upper'} limit at the bound {bound:g} "
                         f"(logL falls by only {(gb + target) ** 2 / 2:.3g} there)")
            return float(bound)
        a = b
        d *= 2.0
    notes.append(f"{'lower' if side < 0 else 'upper'} limit not reached")
    return np.nan
