"""An independent dense REML evaluator for small designs (V = Z G Z' + R formed explicitly).

    logL = -1/2 [ (n-p) log 2pi + log|V| + log|X'V^-1X| + y'Py ],  P = V^-1 - V^-1X(X'V^-1X)^-1X'V^-1

Used only in tests, to check the MME-space formulas against the textbook definitions.
"""
from __future__ import annotations

import numpy as np


def dense_parts(design):
    X = design.fixed.X.toarray()
    Zs = []
    for rb in design.random:
        for b in rb.blocks:
            start, size = b.start, b.size
            Z = np.zeros((design.n, size))
            rows = np.flatnonzero((rb.record_column >= start) & (rb.record_column < start + size))
            Z[rows, rb.record_column[rows] - start] = 1.0
            Zs.append(Z)
    groups = design.residual.record_group
    return X, Zs, groups


def V_of(theta, Zs, groups):
    k = len(Zs)
    V = np.diag(theta[k:][groups].astype(float))
    for t, Z in zip(theta[:k], Zs):
        V += t * Z @ Z.T
    return V


def dense_loglik(design, theta):
    X, Zs, groups = dense_parts(design)
    y = design.y
    V = V_of(np.asarray(theta, float), Zs, groups)
    Vi = np.linalg.inv(V)
    XVX = X.T @ Vi @ X
    P = Vi - Vi @ X @ np.linalg.solve(XVX, X.T @ Vi)
    n, p = X.shape
    return -0.5 * ((n - p) * np.log(2 * np.pi) + np.linalg.slogdet(V)[1] + np.linalg.slogdet(XVX)[1]
                   + y @ P @ y), P


def dense_derivatives(design, theta):
    """Exact scores -1/2[tr(P V_i) - y'P V_i P y] and AI 1/2 y'P V_i P V_j P y."""
    X, Zs, groups = dense_parts(design)
    y = design.y
    _, P = dense_loglik(design, theta)
    Vdots = [Z @ Z.T for Z in Zs] + [np.diag((groups == g).astype(float)) for g in range(groups.max() + 1)]
    Py = P @ y
    score = np.array([-0.5 * (np.trace(P @ Vd) - Py @ Vd @ Py) for Vd in Vdots])
    q = [Vd @ Py for Vd in Vdots]
    ai = np.array([[0.5 * qi @ P @ qj for qj in q] for qi in q])
    return score, ai


def dense_residual(problem, th_res):
    """R over the records and dR/dtheta_j for the residual parameters: a plain group is s2 I;
    a structured group R = (sum_b c_b B_b)^-1 on its full grid (missing cells included), then
    the rows and columns of its records (a missing value is deleted from V)."""
    design = problem.design
    n = design.n
    R = np.zeros((n, n))
    Rdots = []
    for res, th, grid, g in zip(problem.residuals, problem.residual_parts(th_res), design.residual.grids,
                                range(len(problem.residuals))):
        if grid is None:
            on = (design.residual.record_group == g).astype(float)
            R += np.diag(on * th[0])
            Rdots.append(np.diag(on))
            continue
        basis = [B.toarray() for B in res.basis()]
        Rg = np.linalg.inv(sum(c * B for c, B in zip(res.coef(th), basis)))
        rec, cells = grid.records, grid.cells
        R[np.ix_(rec, rec)] = Rg[np.ix_(cells, cells)]
        for j, dc in enumerate(res.dcoef(th).T):
            dRg = -Rg @ sum(c * B for c, B in zip(dc, basis)) @ Rg
            Rd = np.zeros((n, n))
            Rd[np.ix_(rec, rec)] = dRg[np.ix_(cells, cells)]
            Rdots.append(Rd)
    return R, Rdots


def dense_V(problem, theta, weights=None):
    """V, dV/dtheta_i (every working parameter, random terms first) and X, dense, built with each
    structure's G^-1 and dG^-1 only: G = inv(G^-1), dG_i = -G dG^-1_i G (any structure).  With
    record ``weights`` R is D^-1/2 R D^-1/2 (D = diag(w))."""
    design = problem.design
    W = design.W().toarray()
    X = W[:, : design.p]
    th_terms, th_res = problem.split(np.asarray(theta, float))
    V, Rdots = dense_residual(problem, th_res)
    if weights is not None:
        s = 1.0 / np.sqrt(np.asarray(weights, float))
        V = V * np.outer(s, s)
        Rdots = [Rd * np.outer(s, s) for Rd in Rdots]
    Vdots = []
    for off, st, th in zip(design.offsets, problem.structures, th_terms):
        Z = W[:, off: off + st.size]
        r, c = st.pattern()
        Gi = np.zeros((st.size, st.size))
        Gi[r, c] = st.ginv(th)
        Gi[c, r] = st.ginv(th)
        G = np.linalg.inv(Gi)
        V += Z @ G @ Z.T
        D = st.dginv(th).toarray()
        for i in range(st.n_params):
            dGi = np.zeros((st.size, st.size))
            dGi[r, c] = D[i]
            dGi[c, r] = D[i]
            Vdots.append(Z @ (-G @ dGi @ G) @ Z.T)
    return V, Vdots + Rdots, X


def dense_generic(problem, theta, weights=None, y=None):
    """logL, scores and AI from dense V (:func:`dense_V`); ``y`` replaces the design's response."""
    design = problem.design
    y = design.y if y is None else np.asarray(y, float)
    V, Vdots, X = dense_V(problem, theta, weights)
    Vi = np.linalg.inv(V)
    XVX = X.T @ Vi @ X
    P = Vi - Vi @ X @ np.linalg.solve(XVX, X.T @ Vi)
    n, p = X.shape
    ll = -0.5 * ((n - p) * np.log(2 * np.pi) + np.linalg.slogdet(V)[1] + np.linalg.slogdet(XVX)[1] + y @ P @ y)
    Py = P @ y
    score = np.array([-0.5 * (np.trace(P @ Vd) - Py @ Vd @ Py) for Vd in Vdots])
    q = [Vd @ Py for Vd in Vdots]
    ai = np.array([[0.5 * qi @ P @ qj for qj in q] for qi in q])
    return ll, score, ai


def assert_matches_dense(design, backend=None, spread=(0.9, 1.1), theta=None):
    """The MME-space logL, scores and AI of ``design`` at a point near the default start equal
    the dense textbook formulas (:func:`dense_generic`)."""
    import pytest

    from sparsereml.reml.problem import REMLProblem
    from sparsereml.reml.start import default_start

    prob = REMLProblem(design, backend=backend)
    if theta is None:
        theta = default_start(prob) * np.linspace(spread[0], spread[1], prob.params.n)
    ev = prob.derivatives(prob.evaluate(theta))
    ll, score, ai = dense_generic(prob, theta)
    assert ev.loglik == pytest.approx(ll, rel=1e-10)
    np.testing.assert_allclose(ev.score, score, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(ev.ai, ai, rtol=1e-7, atol=1e-8)
