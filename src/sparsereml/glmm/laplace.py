"""The Laplace approximation to a GLMM's marginal likelihood, on the sparse mixed-model equations.

For variance parameters theta (G) and fixed effects beta, with eta = X beta + Z u + offset,

    l(theta, beta) = sum_i log p(y_i | eta_i) - 1/2 u'G^-1 u - 1/2 log|G| - 1/2 log|H|,
    H = Z'WZ + G^-1,

at the mode u = u(theta, beta) of the penalised log-likelihood, found by penalised Newton steps
(PIRLS) on the random-effect equations alone: the fixed effects enter as an offset, so H is the
random-effect block of the MME and its factor is analysed once.  W holds the observed information
-d2 log p / d eta2 per record (the exact Laplace approximation, as glmmTMB; for the canonical links
logit and log it is also glmer's).  This is glmer's nAGQ = 1 objective: beta is an outer parameter
beside theta, not part of the mode.

Exact derivatives (docs/DESIGN.md, "GLMM"): with h_i = z_i'H^-1 z_i from the selected inverse of H
and W'_i = dW_i / d eta_i,

    dl/dtheta_k = REML-type score of the random-effect equations (explicit in theta)
                  + 1/2 a' dG^-1/dtheta_k u,                       a = H^-1 Z'(W' h)
    dl/dbeta    = X' [ s - 1/2 W' h + 1/2 W Z a ],                  s = d log p / d eta

(the second terms are the log-determinant's dependence on the mode).  A family with a dispersion
parameter (the negative binomial's phi = log theta) appends it to theta; at fixed eta its records
have d log p / d phi, d s / d phi and d W / d phi, and

    dl/dphi     = sum_i d log p_i / d phi - 1/2 h'(dW/dphi) - 1/2 a' Z'(ds/dphi)

(the mode moves by du/dphi = H^-1 Z' ds/dphi).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit

from .._compiled import find_sorted
from ..design.fixed import FixedDesign
from ..errors import ModelError
from ..reml.problem import Evaluation, REMLProblem
from .families import Derivatives, Family

__all__ = ["LaplaceProblem", "Mode", "random_effects_design"]

_TINY_WEIGHT = 1e-300  # a record whose information underflows still keeps the pattern's entries
MODE_TOL = 1e-14  # Newton decrement (log-likelihood units) at which u is the mode


@dataclass
class Mode:
    """The mode of the random effects at (theta, beta) and what the Laplace likelihood needs there.

    Attributes
    ----------
    theta, beta, u, eta : ndarray
        Random-term parameters (working), fixed effects, the mode, the linear predictor.
    d : Derivatives
        The records' log densities and derivatives at ``eta``.
    evaluation : Evaluation
        The random-effect equations factorised at the weights of ``d`` (H = Z'WZ + G^-1).
    loglik : float
        The Laplace log-likelihood l(theta, beta).
    penalty : float
        u'G^-1 u.
    iterations : int
        Newton steps the mode took.
    """

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    eta: np.ndarray
    d: Derivatives
    evaluation: Evaluation
    loglik: float
    penalty: float
    iterations: int


def random_effects_design(design):
    """``design`` without its fixed effects: the random-effect equations H alone."""
    empty = FixedDesign(sp.csc_matrix((design.n, 0)), [], [], [])
    return dataclasses.replace(design, fixed=empty, _W=None)


class LaplaceProblem:
    """The Laplace likelihood of a GLMM: everything that stays fixed while (theta, beta) change.

    Parameters
    ----------
    design : Design
        The coded model.
    family : Family
    y : ndarray
        Successes (binomial) or counts (Poisson) per record.
    trials : ndarray
        Binomial trials per record (1 for 0/1 data), or the prior weights of a Poisson record.
    offset : ndarray
        Added to the linear predictor.
    control : Control
    """

    def __init__(self, design, family: Family, y: np.ndarray, trials: np.ndarray, offset: np.ndarray, control):
        self.design, self.family = design, family
        self.y = np.asarray(y, dtype=float)
        self.trials = np.asarray(trials, dtype=float)
        self.offset = np.asarray(offset, dtype=float)
        # free of eta: once per fit (per value of the dispersion for the negative binomial)
        self.const = None if family.n_dispersion else family.log_constant(self.y, self.trials)
        self.X = sp.csr_matrix(design.fixed.X)
        self.random_problem = REMLProblem(random_effects_design(design), control)
        rp = self.random_problem
        self.Z = rp.design.W()
        res = rp.params.residual_slice
        if res.stop - res.start != 1:  # pragma: no cover - GLMMs are refused other residuals earlier
            raise ModelError("a GLMM has no residual variance to model; drop the residual formula")
        self.k = res.start  # random-term parameters come first
        self.nd = family.n_dispersion  # then the family's (NB: log theta)
        self.kd = self.k + self.nd
        self.q = rp.mme.N
        self._at = (None, None, None)  # (phi, family at phi, its constants)

    def family_at(self, theta: np.ndarray) -> tuple[Family, np.ndarray]:
        """The family at the dispersion parameter theta[k:] (if it has one) and its records'
        log-density constants (kept for the last dispersion asked for: the mode's steps share it)."""
        if not self.nd:
            return self.family, self.const
        phi = float(theta[self.k])
        if self._at[0] != phi:
            fam = self.family.at_theta(np.exp(phi))
            self._at = (phi, fam, fam.log_constant(self.y, self.trials))
        return self._at[1], self._at[2]

    @property
    def control(self):
        return self.random_problem.control

    def full_theta(self, theta: np.ndarray) -> np.ndarray:
        """The random problem's parameters: the random terms', then the residual's, fixed at 1
        (a dispersion parameter after the random terms' is the family's, not the problem's)."""
        return np.concatenate([theta[:self.k], [1.0]])

    def _blocks(self, theta: np.ndarray):
        rp = self.random_problem
        for st, sl, off, pos in zip(rp.structures, rp.params.term_slices, rp.mme.offsets, rp.mme.ginv_pos):
            yield st, theta[sl], slice(off, off + st.size), sl, pos

    def penalty(self, theta: np.ndarray, u: np.ndarray) -> float:
        """u'G^-1 u."""
        return float(u @ self._ginv_u(theta, u))

    def logdet_g(self, theta: np.ndarray) -> float:
        return float(sum(st.logdet(th) for st, th, _, _, _ in self._blocks(theta)))

    def _state(self, theta, eta0, u):
        """eta, the records' derivatives, the penalised log-likelihood, u'G^-1 u and G^-1 u at u."""
        eta = eta0 + self.Z @ u
        fam, const = self.family_at(theta)
        d = fam.derivatives(self.y, self.trials, eta, const)
        gu = self._ginv_u(theta, u)
        pen = float(u @ gu)
        return eta, d, float(d.loglik.sum()) - 0.5 * pen, pen, gu

    def mode(self, theta: np.ndarray, beta: np.ndarray, u: np.ndarray | None = None,
             max_iter: int = 60) -> Mode:
        """The mode of the random effects at (theta, beta) by Newton steps with step halving,
        started from ``u`` (default 0), with the equations factorised at the mode's weights."""
        rp, tf = self.random_problem, self.full_theta(theta)
        eta0 = self.X @ beta + self.offset
        u = np.zeros(self.q) if u is None else np.array(u, dtype=float)
        eta, d, obj, pen, gu = self._state(theta, eta0, u)
        previous = np.inf
        for it in range(1, max_iter + 1):
            w = np.maximum(d.weight, _TINY_WEIGHT)
            rp.reweight(weights=w, y=self.Z @ u + d.score / w)
            ev = rp.evaluate(tf)  # H at the weights of u; its solution is the Newton step's end
            step = ev.solution - u
            decrement = float(step @ (self.Z.T @ d.score - gu))  # ~ twice the gain
            # the factor holds H at u's weights: u is the mode to within ~sqrt(decrement), and the
            # gradient's error is first order in that (Newton halves the digits still missing:
            # below 1e-14 is one step past 1e-7); rounding noise stops the decrease sooner
            if decrement < MODE_TOL or (decrement < 1e-9 and decrement >= previous) or not np.isfinite(decrement):
                return self._mode(theta, beta, u, eta, d, ev, obj, pen, it)
            previous = decrement
            t = 1.0
            while True:
                u_new = u + t * step
                eta_n, d_n, obj_n, pen_n, gu_n = self._state(theta, eta0, u_new)
                if np.isfinite(obj_n) and obj_n >= obj - 1e-12 * abs(obj):
                    break
                t *= 0.5
                if t < 1e-8:
                    raise ModelError(self._stuck(theta))
            u, eta, d, obj, pen, gu = u_new, eta_n, d_n, obj_n, pen_n, gu_n
        raise ModelError(f"the random effects' mode was not found in {max_iter} Newton steps "
                         f"({self._where(theta)}); the model may be separated (a level whose records "
                         f"are all successes or all failures, with a large variance)")

    def _ginv_u(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        out = np.empty_like(u)
        for st, th, cols, _, _ in self._blocks(theta):
            out[cols] = st.ginv_apply(th, u[cols])
        return out

    def _mode(self, theta, beta, u, eta, d, ev, obj, pen, it) -> Mode:
        logdet_h = ev.parts["logdet_C"]
        loglik = obj - 0.5 * (self.logdet_g(theta) + logdet_h)
        return Mode(theta.copy(), np.array(beta, dtype=float), u, eta, d, ev, float(loglik), pen, it)

    def _where(self, theta) -> str:
        labels = list(self.random_problem.params.labels[:self.k]) + ["log(theta)"] * self.nd
        return "at " + ", ".join(f"{lab} = {v:.4g}" for lab, v in zip(labels, theta))

    def _stuck(self, theta) -> str:
        return (f"the penalised log-likelihood of the random effects could not be increased "
                f"({self._where(theta)}); the linear predictor may be overflowing")

    # -- derivatives ------------------------------------------------------------------
    def gradient(self, m: Mode) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """dl/dtheta (the dispersion last, if any) and dl/dbeta at the mode ``m`` (exact), and
        h_i = z_i'H^-1 z_i."""
        rp = self.random_problem
        zc = rp.selected_inverse(m.evaluation)
        h = record_quadratic(self.Z, rp.mme.lower, zc)
        a = rp.factor.solve(self.Z.T @ (m.d.dweight * h))
        g_theta = np.empty(self.kd)
        if self.nd:
            dl, ds, dw = self.family_at(m.theta)[0].dispersion_derivatives(self.y, self.trials, m.eta)
            g_theta[self.k] = dl.sum() - 0.5 * (h @ dw) - 0.5 * (a @ (self.Z.T @ ds))
        for st, th, cols, sl, pos in self._blocks(m.theta):
            uk, ak = m.u[cols], a[cols]
            r, c = st.pattern()
            pair = np.where(r == c, ak[r] * uk[r], ak[r] * uk[c] + ak[c] * uk[r])
            g_theta[sl] = st.score(th, zc[pos], uk) + 0.5 * (st.dginv(th) @ pair)
        w = np.maximum(m.d.weight, _TINY_WEIGHT)
        g_beta = self.X.T @ (m.d.score - 0.5 * m.d.dweight * h + 0.5 * w * (self.Z @ a))
        return g_theta, np.asarray(g_beta).ravel(), h

    def information(self, m: Mode) -> tuple[np.ndarray, np.ndarray]:
        """Approximate information of theta (the average information of the random-effect
        equations at the mode's weights; zero row and column for a dispersion) and of beta (X'WX - X'WZ H^-1 Z'WX, the exact
        information of the penalised part with u profiled out)."""
        rp = self.random_problem
        ev = m.evaluation
        if ev.ai is None:
            rp.derivatives(ev, scores=False)
        ai = np.zeros((self.kd, self.kd))  # the dispersion's row: laplace_fit differences the gradient
        ai[:self.k, :self.k] = ev.ai[:self.k, :self.k]
        w = np.maximum(m.d.weight, _TINY_WEIGHT)
        WX = sp.csr_matrix(self.X.multiply(w[:, None]))
        xwx = (self.X.T @ WX).toarray()
        B = (self.Z.T @ WX).toarray()
        rp.hold(ev)
        S = xwx - B.T @ rp.factor.solve(B) if B.size else xwx
        return ai, 0.5 * (S + S.T)


@njit(cache=True)
def _record_quadratic(Zp, Zi, Zx, Lp, Li, zc, out):
    """out[i] = z_i' C^-1 z_i from C^-1's entries on the lower-triangle pattern (Lp, Li)."""
    for i in range(Zp.shape[0] - 1):
        s = 0.0
        for ea in range(Zp[i], Zp[i + 1]):
            a = Zi[ea]
            for eb in range(ea, Zp[i + 1]):
                b = Zi[eb]
                r, c = (a, b) if a >= b else (b, a)
                v = Zx[ea] * Zx[eb] * zc[find_sorted(Li, Lp[c], Lp[c + 1], r)]  # rows of column c are sorted
                s += v if ea == eb else 2.0 * v
        out[i] = s


def record_quadratic(Z: sp.csr_matrix, lower: sp.csc_matrix, zc: np.ndarray) -> np.ndarray:
    """z_i' C^-1 z_i for every row z_i of ``Z``, from the selected inverse ``zc`` of C on
    ``lower``'s pattern (which holds every pair of columns a record has)."""
    out = np.empty(Z.shape[0])
    _record_quadratic(Z.indptr.astype(np.int64), Z.indices.astype(np.int64), Z.data.astype(float),
                      lower.indptr.astype(np.int64), lower.indices.astype(np.int64), zc, out)
    return out
