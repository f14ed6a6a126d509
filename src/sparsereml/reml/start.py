"""Starting values from the data, and checks of user-given ones."""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from .problem import REMLProblem

__all__ = ["default_start", "resolve_start"]


def default_start(problem: REMLProblem) -> np.ndarray:
    """Start values: residual variance of an OLS fit of the fixed effects, per residual group,
    and a tenth of the pooled OLS residual variance for every random-term variance (ASReml's
    default gamma of 0.1)."""
    d = problem.design
    X, y = d.fixed.X, d.y
    if X.shape[1]:
        xtx = (X.T @ X).toarray()
        b = np.linalg.lstsq(xtx, X.T @ y, rcond=None)[0]
        e = y - X @ b
    else:
        e = y.copy()
    g = d.residual.codes
    ng = problem.cp.counts
    ss = np.bincount(g, weights=e * e, minlength=ng.size)
    dof = np.maximum(ng * (d.n - d.p) / d.n, 1.0)
    s2g = ss / dof
    pooled = float(ss.sum() / max(d.n - d.p, 1))
    if not pooled > 0:
        pooled = float(np.var(y)) or 1.0
    s2g = np.where(s2g > 0, s2g, pooled)
    theta = np.empty(problem.params.n)
    for sl in problem.params.term_slices:
        theta[sl] = 0.1 * pooled
    theta[problem.params.residual_slice] = s2g
    return theta


def resolve_start(problem: REMLProblem, start: dict | None, fix: dict | None):
    """Combine default starts with user values; return (theta, fixed mask).

    ``start`` and ``fix`` map parameter labels (as in ``varcomp``) to values; ``fix``
    also holds those parameters at their value (code F).
    """
    labels = problem.params.labels
    theta = default_start(problem)
    fixed = np.zeros(theta.size, dtype=bool)
    for name, values, is_fixed in (("start", start, False), ("fix", fix, True)):
        for lab, val in (values or {}).items():
            if lab not in labels:
                raise ModelError(f"{name}: {lab!r} is not a parameter of this model (parameters: "
                                 f"{', '.join(labels)})")
            try:
                v = float(val)
            except (TypeError, ValueError):
                raise ModelError(f"{name}: the value for {lab!r} must be a number, got {val!r}") from None
            i = labels.index(lab)
            if not np.isfinite(v) or v <= problem.params.lower[i]:
                raise ModelError(f"{name}: {lab!r} = {v:g} is not a valid variance (it must be positive, "
                                 f"so that the start is positive definite)")
            theta[i] = v
            fixed[i] |= is_fixed
    return theta, fixed
