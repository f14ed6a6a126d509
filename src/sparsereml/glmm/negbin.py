"""The negative binomial's dispersion theta in a Laplace fit: its start value, its estimate and
standard error from the joint observed information, and the message when it runs to its bound.

theta enters the Laplace fit as one more working parameter, phi = log theta, after the
random-term parameters (:class:`~sparsereml.glmm.laplace.LaplaceProblem` has its exact
gradient; :func:`~sparsereml.glmm.optimize.laplace_fit` differences it for its information).
theta -> infinity is the Poisson: a fit whose theta reaches NegativeBinomial.THETA_MAX holds it
there (code B) and says so, with no standard error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .families import Family, NegativeBinomial, Poisson
from .optimize import glm_start

__all__ = ["Dispersion", "start_theta", "dispersion_result", "boundary_message"]


@dataclass
class Dispersion:
    """The negative binomial's theta as fitted.

    Attributes
    ----------
    theta : float
        The estimate (or the value held: code F; the bound THETA_MAX: code B).
    std_error : float
        theta * SE(log theta) from the inverse observed information of all the parameters (NaN
        for code B or F).
    code : str
        ``P`` estimated, ``B`` at its bound (no overdispersion: a Poisson), ``F`` held.
    previous : float or None
        theta at the iterate before the last (for the varcomp's %ch).
    """

    theta: float
    std_error: float
    code: str
    previous: float | None = None


def start_theta(family: Family, X: sp.csr_matrix, y: np.ndarray, trials: np.ndarray, offset: np.ndarray) -> float:
    """theta to start from: the user's, or the moment estimate sum mu^2 / sum((y - mu)^2 - mu)
    around the Poisson GLM's means (it counts the random effects' variation as overdispersion,
    so it errs low; the Laplace fit moves it), kept within [0.01, 1e4]."""
    if family.theta is not None:
        return family.theta
    beta = glm_start(Poisson(), X, y, trials, offset)
    mu = np.exp(X @ beta + offset)
    excess = float(np.sum((y - mu) ** 2 - mu))
    return float(np.clip(np.sum(mu * mu) / excess, 0.01, 1e4)) if excess > 0 else 1e4


def dispersion_result(phi: float, code: str, var_phi: float, previous: float | None) -> Dispersion:
    """:class:`Dispersion` from log theta, its code and its variance (delta method for theta), and
    the previous iterate's theta."""
    theta = float(np.exp(phi))
    se = theta * np.sqrt(var_phi) if code == "P" and var_phi > 0 else np.nan
    return Dispersion(theta, float(se), code, None if previous is None else float(previous))


def boundary_message(family: NegativeBinomial) -> str:
    return (f"the negative binomial's theta reached its bound {family.THETA_MAX:g} (code B): the counts show no "
            f"overdispersion beyond the random effects, and theta -> infinity is the Poisson GLMM; theta has no "
            f"standard error there: fit family='poisson' (an sr.lrt of the two tests theta on this boundary)")
