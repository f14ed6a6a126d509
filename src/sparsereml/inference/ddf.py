"""Denominator degrees of freedom of a Wald test L b = 0: Satterthwaite and Kenward-Roger.

Satterthwaite (as lmerTest's contestMD): L Phi L' = U diag(d) U'; each of the q directions
u_m'L b is a t-test on nu_m = 2 d_m^2 / (g_m' A g_m) degrees of freedom, g_m the exact gradient
of u_m'L Phi L'u_m by the variance parameters (from :class:`FixedEffectsCovariance`) and A the
inverse observed information; the F test's df follows from the nu_m (lmerTest's get_Fstat_ddf).

Kenward-Roger (Kenward & Roger 1997, as pbkrtest's vcovAdj and Lb_ddf): the adjusted covariance
Phi_A = Phi + 2 Phi [sum_ij W_ij (Q_ij - P_i Phi P_j)] Phi with W the inverse expected
information, and the df m of the approximating F(q, m).  The F statistic reported is
lambda (Lb)'(L Phi_A L')^-1 (Lb) / q with KR's scaling lambda = m (1 - A2/q) / (m - 2), as
pbkrtest's KRmodcomp and lmerTest report it.
"""
from __future__ import annotations

import numpy as np

__all__ = ["satterthwaite_ddf", "kr_adjusted", "kr_ddf", "fstat_ddf"]


def fstat_ddf(nu: np.ndarray) -> float:
    """The F statistic's df from the df of its q independent t statistics (lmerTest)."""
    nu = np.asarray(nu, dtype=float)
    if nu.size == 1 or np.all(np.abs(nu - nu[0]) < 1e-8):
        return float(nu[0])
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * E / (E - nu.size)


def satterthwaite_ddf(L: np.ndarray, phi: np.ndarray, dphi: list, A: np.ndarray) -> tuple[float, np.ndarray, int]:
    """(ddf, the rotated contrasts U'L of full rank, their number q) for ``L`` (rows).

    ``dphi`` are d Phi / d theta_k over the estimated parameters and ``A`` their covariance."""
    VL = L @ phi @ L.T
    d, U = np.linalg.eigh(0.5 * (VL + VL.T))
    order = np.argsort(d)[::-1]
    d, U = d[order], U[:, order]
    keep = d > max(np.sqrt(np.finfo(float).eps) * d[0], 0.0)
    d, U = d[keep], U[:, keep]
    PL = U.T @ L
    nu = np.empty(d.size)
    for m in range(d.size):
        g = np.array([PL[m] @ D @ PL[m] for D in dphi])
        var_g = float(g @ A @ g)
        nu[m] = 2.0 * d[m] ** 2 / var_g if var_g > 0 else np.inf
    return fstat_ddf(nu), PL, int(d.size)


def kr_adjusted(phi: np.ndarray, P: list, Q: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Phi_A = Phi + 2 Phi [sum_ij W_ij (Q_ij - P_i Phi P_j)] Phi."""
    U = np.zeros_like(phi)
    for i in range(len(P)):
        for j in range(len(P)):
            U += W[i, j] * (Q[i, j] - P[i] @ phi @ P[j])
    out = phi + 2.0 * phi @ U @ phi
    return 0.5 * (out + out.T)


def kr_ddf(L: np.ndarray, phi: np.ndarray, P: list, W: np.ndarray) -> tuple[float, float]:
    """Kenward-Roger's denominator df m for ``L`` of full row rank (pbkrtest's Lb_ddf) and the
    F statistic's scaling lambda (NaN where m is within 0.01 of 2, as pbkrtest)."""
    q = L.shape[0]
    theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    tv = theta @ phi
    u = [tv @ Pi @ phi for Pi in P]
    A1 = A2 = 0.0
    for i in range(len(P)):
        for j in range(len(P)):
            A1 += W[i, j] * np.trace(u[i]) * np.trace(u[j])
            A2 += W[i, j] * np.sum(u[i] * u[j].T)
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    c1 = g / (3 * q + 2 * (1 - g))
    c2 = (q - g) / (3 * q + 2 * (1 - g))
    c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
    v0 = 1.0 + c1 * B
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    v1, v2 = 1.0 - c2 * B, 1.0 - c3 * B
    rho = (1.0 / q) * ((1.0 - A2 / q) / v1) ** 2 * v0 / v2
    m = float(4.0 + (q + 2) / (q * rho - 1.0))
    scaling = np.nan if abs(m - 2.0) < 1e-2 else m * (1.0 - A2 / q) / (m - 2.0)
    return m, float(scaling)
