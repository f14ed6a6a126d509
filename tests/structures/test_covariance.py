"""Covariance models: derivatives against finite differences, start values, reporting."""
import numpy as np
import pytest

from sparsereml.structures import make_cov_model

LEVELS = ["T1", "T2", "T3", "T4"]
S0 = np.array([[4.0, 1.5, 0.8, 1.0], [1.5, 3.0, 0.5, 0.7], [0.8, 0.5, 2.0, 0.3], [1.0, 0.7, 0.3, 5.0]])
MODELS = [("diag", ()), ("corv", ()), ("corh", ()), ("corgh", ()), ("us", ()), ("fa", (1,)), ("fa", (2,)), ("ar1", ())]


@pytest.mark.parametrize("name,args", MODELS)
def test_first_and_second_derivatives(name, args):
    m = make_cov_model(name, LEVELS, args)
    th = m.start(S0) * 1.03 + 0.01  # a generic point
    D = m.dsigma(th)
    D2 = np.zeros((m.n_params, m.n_params, m.n, m.n))
    for i, j, M in m.d2sigma(th):
        D2[i, j] = D2[j, i] = M
    for i in range(m.n_params):
        h = 1e-6 * max(1.0, abs(th[i]))
        up, dn = th.copy(), th.copy()
        up[i] += h
        dn[i] -= h
        np.testing.assert_allclose(D[i], (m.sigma(up) - m.sigma(dn)) / (2 * h), atol=1e-6)
        np.testing.assert_allclose(D2[:, i], (m.dsigma(up) - m.dsigma(dn)) / (2 * h), atol=1e-5)
    J = m.report_jacobian(th)
    for i in range(m.n_params):
        h = 1e-6 * max(1.0, abs(th[i]))
        up, dn = th.copy(), th.copy()
        up[i] += h
        dn[i] -= h
        np.testing.assert_allclose(J[:, i], (m.report(up) - m.report(dn)) / (2 * h), atol=1e-5)


@pytest.mark.parametrize("name", ["diag", "us", "corgh"])
def test_start_reproduces_a_positive_definite_guess(name):
    m = make_cov_model(name, LEVELS)
    S = m.sigma(m.start(S0))
    target = np.diag(np.diag(S0)) if name == "diag" else S0
    np.testing.assert_allclose(S, target, rtol=1e-6)


def test_fa_loadings_are_lower_triangular_and_labelled():
    m = make_cov_model("fa", LEVELS, (2,))
    assert m.labels[:4] == ["var.T1", "var.T2", "var.T3", "var.T4"]
    assert m.labels[4:] == ["fa1.T1", "fa1.T2", "fa1.T3", "fa1.T4", "fa2.T2", "fa2.T3", "fa2.T4"]
    L = m.loadings(m.start(S0))
    assert L[0, 1] == 0.0
    with pytest.raises(ValueError, match="k < 4"):
        make_cov_model("fa", LEVELS, (4,))


def test_us_reports_sigma_entries():
    m = make_cov_model("us", LEVELS)
    assert m.report_labels[:3] == ["T1:T1", "T2:T1", "T2:T2"]
    np.testing.assert_allclose(m.report(m.start(S0)), [S0[i, j] for i in range(4) for j in range(i + 1)])
