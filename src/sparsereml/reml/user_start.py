"""Start values the user gives: label -> value maps (``start=``, ``fix=``, on the varcomp scale,
mapped to working parameters where a model is fitted on a Cholesky factor) and a fitted model
whose estimates start a richer one (``start=m1``); the defaults are :mod:`.start`'s."""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..structures.covariance import nearest_pd
from .problem import REMLProblem
from .start import default_start

__all__ = ["resolve_start", "start_from_fit"]


def start_from_fit(problem: REMLProblem, fit) -> dict:
    """Start values (working parameters by label) taken from a fitted, usually simpler, model.

    Parameters with the same label carry over (variances of the same terms, residual
    variances of the same groups).  A covariance model across a factor (``fa(Trial, 2):Mother``)
    starts from the covariance the earlier model implied for the same effects: its own
    covariance model on the same factors (``diag(Trial):Mother``, ``us(Trial):Mother``), or a
    main effect plus interaction (``Mother + Trial:Mother``: s2_M J + s2_TM I).
    """
    old = fit.problem
    old_theta = fit.theta_working
    old_labels = old.params.labels
    out = {lab: float(old_theta[old_labels.index(lab)]) for lab in problem.params.labels if lab in old_labels}
    old_terms = {rb.term.label: (rb, st, old_theta[sl])
                 for rb, st, sl in zip(old.design.random, old.structures, old.params.term_slices)}
    for rb, st, sl in zip(problem.design.random, problem.structures, problem.params.term_slices):
        if rb.cov_levels is None or all(lab in out for lab in st.labels):
            continue
        S = _implied_covariance(rb, old_terms)
        if S is not None:
            out.update(zip(st.labels, st.model.start(nearest_pd(S))))
    return out


def _implied_covariance(rb, old_terms: dict) -> np.ndarray | None:
    """Covariance between the levels of ``rb``'s structure factor implied by an earlier fit."""
    fac = rb.term.struct.factor
    inner = {f.name for f in rb.term.factors}
    n = len(rb.cov_levels)
    for orb, ost, th in old_terms.values():
        if orb.cov_levels is not None and orb.term.struct.factor == fac and \
                {f.name for f in orb.term.factors} == inner and list(orb.cov_levels) == list(rb.cov_levels):
            return ost.model.sigma(th)
    for orb, ost, th in old_terms.values():  # diag(F):T or at(F):T: one variance per level
        per_level = (orb.term.struct is not None and orb.term.struct.per_level and orb.term.struct.factor == fac) \
            or (orb.term.at is not None and orb.term.at.factor == fac and orb.term.at.levels is None)
        if orb.cov_levels is None and per_level and {getattr(f, "name", None) for f in orb.term.factors} == inner:
            by_label = dict(zip(ost.labels, th))
            v = np.array([by_label.get(f"{orb.term.label}!{lv}", by_label.get(
                orb.term.level_label(lv) if orb.term.at else "", np.nan)) for lv in rb.cov_levels])
            v = np.where(np.isfinite(v), v, np.nanmean(v))
            return np.diag(v)
    main = next((v for v in old_terms.values() if v[0].term.at is None and v[0].term.struct is None
                 and {getattr(f, "name", None) for f in v[0].term.factors} == inner), None)
    inter = next((v for v in old_terms.values() if v[0].term.at is None and v[0].term.struct is None
                  and {getattr(f, "name", None) for f in v[0].term.factors} == inner | {fac}), None)
    if main is None and inter is None:
        return None
    s_main = float(main[2][0]) if main else 0.0
    s_int = float(inter[2][0]) if inter else 0.0
    return s_main * np.ones((n, n)) + s_int * np.eye(n)


def _reparametrised(problem: REMLProblem) -> list:
    """Covariance models whose varcomp labels are not their working parameters (us(), corgh():
    fitted on a Cholesky factor): (reported labels, slice of theta, model)."""
    out = []
    places = [(st, sl.start) for st, sl in zip(problem.structures, problem.params.term_slices)]
    r0 = problem.params.residual_slice.start
    places += [(res, r0 + gsl.start) for res, gsl in zip(problem.residuals, problem.params.group_slices)]
    for st, at in places:
        for slot in st.covariance_models():
            if list(slot.model.report_labels) != list(slot.model.labels):
                out.append((list(slot.report_labels), slice(at + slot.params.start, at + slot.params.stop),
                            slot.model))
    return out


def _apply_reported(problem: REMLProblem, theta: np.ndarray, fixed: np.ndarray, values: dict, is_fixed: bool,
                    name: str) -> dict:
    """Take the varcomp-scale values of reparametrised models (e.g. us() variances and
    covariances) out of ``values``: rebuild Sigma with them (the model's ``sigma_from_reported``)
    and start (or hold) its working parameters there; a model may hold some of them alone (its
    ``hold_reported``: us()'s first variance).  Returns the remaining values."""
    rest = dict(values)
    for labels, sl, model in _reparametrised(problem):
        given = {lab: rest.pop(lab) for lab in labels if lab in rest}
        if not given:
            continue
        if is_fixed and len(given) < len(labels):
            nums = {}
            for lab, val in given.items():
                try:
                    nums[labels.index(lab)] = float(val)
                except (TypeError, ValueError):
                    raise ModelError(f"{name}: the value for {lab!r} must be a number, got {val!r}") from None
            try:
                held = model.hold_reported(nums)
            except ValueError as exc:
                k, v = next(iter(nums.items()))
                raise ModelError(f"fix: {labels[k]!r} = {v:g} {exc}") from None
            if held is None:
                raise ModelError(f"fix: {model.name}() is fitted on a Cholesky factor, so its entries can only be "
                                 f"held all together, or its first variance alone: give all of {', '.join(labels)}, "
                                 f"or {labels[0]!r} only (or use diag(), corh(), ...)")
            for k, v in held.items():
                theta[sl.start + k] = v
                fixed[sl.start + k] = True
            continue
        current = model.report(theta[sl])
        for lab, val in given.items():
            try:
                current[labels.index(lab)] = float(val)
            except (TypeError, ValueError):
                raise ModelError(f"{name}: the value for {lab!r} must be a number, got {val!r}") from None
        S = model.sigma_from_reported(current)
        if np.linalg.eigvalsh(S).min() <= 0:
            raise ModelError(f"{name}: the values given for {labels[0].rsplit('!', 1)[0]} make a covariance "
                             f"matrix that is not positive definite")
        theta[sl] = model.start(S)
        fixed[sl] |= is_fixed
    return rest


def resolve_start(problem: REMLProblem, start, fix: dict | None):
    """Combine default starts with user values; return (theta, fixed mask).

    ``start`` and ``fix`` map parameter labels (as in ``varcomp``; for us() its variances and
    covariances, which are then mapped to its Cholesky factor) to values; ``fix`` also holds
    those parameters at their value (code F).  ``start`` may also be a fitted model
    (:func:`start_from_fit`).
    """
    from ..results import FittedModel  # results imports the REML stage

    labels = problem.params.labels
    theta = default_start(problem)
    if isinstance(start, FittedModel):
        start = start_from_fit(problem, start)
    fixed = np.zeros(theta.size, dtype=bool)
    for name, values, is_fixed in (("start", start, False), ("fix", fix, True)):
        values = _apply_reported(problem, theta, fixed, values or {}, is_fixed, name)
        for lab, val in values.items():
            if lab not in labels:
                shown = list(dict.fromkeys(list(problem.report_labels) + list(labels)))
                raise ModelError(f"{name}: {lab!r} is not a parameter of this model (parameters: "
                                 f"{', '.join(shown)})")
            try:
                v = float(val)
            except (TypeError, ValueError):
                raise ModelError(f"{name}: the value for {lab!r} must be a number, got {val!r}") from None
            i = labels.index(lab)
            lo, hi = problem.params.lower[i], problem.params.upper[i]
            if not np.isfinite(v) or v <= lo or v >= hi:
                what = "variance (it must be positive" if problem.params.kinds[i] == "var" else \
                    f"value (it must lie between {lo:g} and {hi:g}"
                raise ModelError(f"{name}: {lab!r} = {v:g} is not a valid {what}, so that the start is "
                                 f"positive definite)")
            theta[i] = v
            fixed[i] |= is_fixed
    return theta, fixed
