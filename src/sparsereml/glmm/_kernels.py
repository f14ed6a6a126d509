"""Per-record log densities of binomial counts and their eta-derivatives in one pass (numba):
the Laplace fit asks for them at every Newton step of the mode, on every record."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
LINK_CODES = {"logit": 0, "probit": 1, "cloglog": 2}


@njit(cache=True, nogil=True)
def _log_ndtr(t):
    """log Phi(t), to full relative precision in both tails."""
    if t >= 0.0:
        return math.log1p(-0.5 * math.erfc(t * _INV_SQRT2))
    if t > -37.0:
        return math.log(0.5 * math.erfc(-t * _INV_SQRT2))
    t2 = t * t  # Mills' ratio series: Phi(t) = phi(t) / -t (1 - 1/t^2 + 3/t^4 - 15/t^6 ...)
    return -0.5 * t2 - _LOG_SQRT_2PI - math.log(-t) + math.log(1.0 - 1.0 / t2 + 3.0 / t2 ** 2 - 15.0 / t2 ** 3)


@njit(cache=True, nogil=True)
def _probit(t):
    """log Phi(t) and its first three derivatives."""
    f0 = _log_ndtr(t)
    lam = math.exp(-0.5 * t * t - _LOG_SQRT_2PI - f0)  # phi / Phi
    f2 = -lam * (t + lam)
    f3 = -(f2 * (t + lam) + lam * (1.0 + f2))
    return f0, lam, f2, f3


@njit(cache=True, nogil=True)
def _cloglog(eta):
    """log(1 - exp(-e^eta)) and its first three derivatives."""
    a = math.exp(min(eta, 700.0))
    g0 = math.log(-math.expm1(-a)) if a > 0.0 else -math.inf
    rb = a / -math.expm1(-a) if a > 1e-300 else 1.0  # a e^a / (e^a - 1)
    r = rb * math.exp(-a)
    g2 = r * (1.0 - rb)
    g3 = g2 * (1.0 - rb) - rb * (g2 + r * a)
    return g0, r, g2, g3


@njit(cache=True, nogil=True)
def binomial_derivatives(link, y, n, eta, const, ll, score, w, dw):
    """log p(y_i | eta_i) (plus ``const``), d/deta, -d2/deta2 and its derivative, per record, for
    ``y`` successes of ``n`` trials with link code ``link`` (LINK_CODES)."""
    for i in range(eta.shape[0]):
        e, s, f = eta[i], y[i], n[i] - y[i]
        if link == 0:
            if e >= 0.0:
                x = math.exp(-e)
                mu = 1.0 / (1.0 + x)
                lmu, l1mu = -math.log1p(x), -e - math.log1p(x)
            else:
                x = math.exp(e)
                mu = x / (1.0 + x)
                lmu, l1mu = e - math.log1p(x), -math.log1p(x)
            ll[i] = const[i] + s * lmu + f * l1mu
            score[i] = s - n[i] * mu
            w[i] = n[i] * mu * (1.0 - mu)
            dw[i] = w[i] * (1.0 - 2.0 * mu)
        elif link == 1:
            p0, p1, p2, p3 = _probit(e)
            m0, m1, m2, m3 = _probit(-e)
            ll[i] = const[i] + s * p0 + f * m0
            score[i] = s * p1 - f * m1
            w[i] = -(s * p2 + f * m2)
            dw[i] = -(s * p3 - f * m3)
        else:
            g0, g1, g2, g3 = _cloglog(e)
            a = math.exp(min(e, 700.0))  # log(1 - mu) = -e^eta: every derivative -e^eta
            ll[i] = const[i] + (s * g0 if s > 0.0 else 0.0) - f * a
            score[i] = s * g1 - f * a
            w[i] = -(s * g2 - f * a)
            dw[i] = -(s * g3 - f * a)


def binomial(link: str, y: np.ndarray, n: np.ndarray, eta: np.ndarray, const: np.ndarray):
    """The four per-record arrays of :func:`binomial_derivatives`."""
    out = [np.empty(eta.shape[0]) for _ in range(4)]
    binomial_derivatives(LINK_CODES[link], np.ascontiguousarray(y, dtype=float), np.ascontiguousarray(n, dtype=float),
                         np.ascontiguousarray(eta, dtype=float), np.ascontiguousarray(const, dtype=float), *out)
    return out
