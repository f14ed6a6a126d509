"""Residual structures against dense matrices built from their definitions."""
import numpy as np
import pytest

from sparsereml.structures.covariance import make_cov_model
from sparsereml.structures.residual import Ar1Dim, CovDim, GroupResidual, IdDim


def ar1(m, r):
    i = np.arange(m)
    return r ** np.abs(i[:, None] - i[None, :])


def dense_R(g, theta):
    s2 = theta[0] if g.scaled else 1.0
    R = np.ones((1, 1)) * s2
    k = int(g.scaled)
    for d in g.dims:
        if isinstance(d, Ar1Dim):
            S = ar1(d.m, theta[k])
        elif isinstance(d, CovDim):
            S = d.model.sigma(theta[k:k + d.n_params])
        else:
            S = np.eye(d.m)
        k += d.n_params
        R = np.kron(R, S)
    return R


CASES = {
    "ar1 x ar1": (lambda: GroupResidual("units", [Ar1Dim("Row", 5), Ar1Dim("Col", 4)], 20), [2.5, 0.6, -0.3]),
    "id x ar1": (lambda: GroupResidual("at(site, S3):units", [IdDim("col", 3), Ar1Dim("row", 6)], 18), [0.7, 0.45]),
    "ar1 length 1": (lambda: GroupResidual("units", [Ar1Dim("Row", 1), Ar1Dim("Col", 5)], 5), [1.3, 0.2, 0.5]),
    "id x us": (lambda: GroupResidual("units", [IdDim("tree", 4), CovDim("dir", make_cov_model("us", ["N", "E", "S"]))], 12),
                None),
}


@pytest.fixture(params=list(CASES))
def case(request):
    make, theta = CASES[request.param]
    g = make()
    if theta is None:  # us: working parameters of a chosen Sigma
        S = np.array([[2.0, 0.6, 0.3], [0.6, 1.5, -0.4], [0.3, -0.4, 1.0]])
        theta = g.dims[1].model.start(S)
    return g, np.asarray(theta, float)


def test_inverse_is_the_basis_combination(case):
    g, theta = case
    Rinv = sum(c * B.toarray() for c, B in zip(g.coef(theta), g.basis()))
    np.testing.assert_allclose(Rinv, np.linalg.inv(dense_R(g, theta)), atol=1e-12)
    assert g.logdet(theta) == pytest.approx(np.linalg.slogdet(dense_R(g, theta))[1], abs=1e-10)


def test_derivatives_by_differences(case):
    g, theta = case
    h = 1e-6
    dc, dl = g.dcoef(theta), g.dlogdet(theta)
    for j in range(g.n_params):
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        np.testing.assert_allclose(dc[:, j], (g.coef(tp) - g.coef(tm)) / (2 * h), rtol=1e-6, atol=1e-6)
        assert dl[j] == pytest.approx((g.logdet(tp) - g.logdet(tm)) / (2 * h), rel=1e-6, abs=1e-8)


def test_q_block_against_dense(case):
    g, theta = case
    rng = np.random.default_rng(3)
    e = rng.standard_normal(g.n_cells)
    R = dense_R(g, theta)
    h = 1e-6
    Rdot = []
    for j in range(g.n_params):
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        Rdot.append((np.linalg.inv(dense_R(g, tp)) - np.linalg.inv(dense_R(g, tm))) / (2 * h))
    Q = np.array([[e @ Ri @ R @ Rj @ e for Rj in Rdot] for Ri in Rdot])
    np.testing.assert_allclose(g.q_block(theta, float(e @ e), e), Q, rtol=1e-5)
    np.testing.assert_allclose(g.rinv_apply(theta, e.reshape(g.shape)).ravel(), np.linalg.solve(R, e), rtol=1e-10)


def test_plain_group_closed_form():
    g = GroupResidual("units", [], 7)
    assert g.q_block(np.array([2.0]), 3.0, None)[0, 0] == pytest.approx(3.0 / 8.0)
    assert g.coef(np.array([2.0]))[0] == 0.5
    assert g.logdet(np.array([2.0])) == pytest.approx(7 * np.log(2.0))
