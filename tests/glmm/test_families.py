"""The families' log densities and derivatives (reference: scipy.stats densities and central
differences of the log density itself)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sparsereml.errors import ModelError
from sparsereml.glmm import Binomial, Poisson, resolve_family

RNG = np.random.default_rng(7)
ETA = np.concatenate([np.linspace(-6, 6, 25), RNG.normal(0, 2, 10)])


def _cases():
    n = RNG.integers(1, 12, ETA.size).astype(float)
    y = np.floor(RNG.random(ETA.size) * (n + 1))
    for link in Binomial.links:
        yield Binomial(link), y, n
    yield Binomial("probit"), (RNG.random(ETA.size) < 0.5).astype(float), np.ones(ETA.size)
    yield Poisson(), RNG.poisson(3.0, ETA.size).astype(float), np.ones(ETA.size)


@pytest.mark.parametrize("family, y, n", list(_cases()), ids=lambda v: repr(v)[:30])
def test_density_matches_scipy(family, y, n):
    inner = np.abs(ETA) <= 3  # beyond, scipy's densities of mu = 1 - tiny lose the digits ours keep
    y, n = y[inner], n[inner]
    d = family.derivatives(y, n, ETA[inner])
    mu = family.inverse_link(ETA[inner])
    if isinstance(family, Binomial):
        expected = stats.binom.logpmf(y, n, mu)
    else:
        expected = stats.poisson.logpmf(y, mu)
    np.testing.assert_allclose(d.loglik, expected, rtol=1e-7, atol=1e-9)  # scipy loses digits where mu is near 1


@pytest.mark.parametrize("family, y, n", list(_cases()), ids=lambda v: repr(v)[:30])
def test_derivatives_by_central_differences(family, y, n):
    h = 1e-5
    d = family.derivatives(y, n, ETA)
    up, down = family.derivatives(y, n, ETA + h), family.derivatives(y, n, ETA - h)
    np.testing.assert_allclose(d.score, (up.loglik - down.loglik) / (2 * h), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d.weight, -(up.score - down.score) / (2 * h), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d.dweight, (up.weight - down.weight) / (2 * h), rtol=1e-5, atol=1e-6)
    assert np.all(d.weight > 0)  # these log densities are concave in eta


@pytest.mark.parametrize("link", Binomial.links)
def test_fisher_weight_is_expected_information(link):
    fam = Binomial(link)
    eta = ETA[np.abs(ETA) <= 3]
    n = np.full(eta.size, 3.0)
    mu = fam.inverse_link(eta)
    expected = n * fam.dmu_deta(eta) ** 2 / (mu * (1 - mu))
    np.testing.assert_allclose(fam.fisher_weight(n, eta), expected, rtol=1e-6)
    assert np.all(np.isfinite(fam.fisher_weight(np.ones(ETA.size), ETA)))


def test_dmu_deta_by_differences():
    for fam in (Binomial("logit"), Binomial("probit"), Binomial("cloglog"), Poisson()):
        h = 1e-6
        np.testing.assert_allclose(fam.dmu_deta(ETA), (fam.inverse_link(ETA + h) - fam.inverse_link(ETA - h)) / (2 * h),
                                   rtol=1e-5, atol=1e-10)


def test_resolve_family():
    assert resolve_family(None) is None and resolve_family("gaussian") is None
    assert resolve_family("binomial") == Binomial("logit")
    assert resolve_family("Poisson") == Poisson()
    with pytest.raises(ModelError, match="family must be"):
        resolve_family("gamma")
    with pytest.raises(ModelError, match="links logit, probit, cloglog"):
        Binomial("log")


def test_responses_refused_by_name():
    with pytest.raises(ModelError, match="'surv'.*record 1 .* is 2;"):
        Binomial().check(np.array([0.0, 2.0]), np.ones(2), "surv")
    with pytest.raises(ModelError, match="'cones'.*whole numbers"):
        Poisson().check(np.array([1.0, 0.5]), np.ones(2), "cones")


def test_tails_to_full_precision():
    # log Phi(eta) and log Phi(-eta) (scipy's log_ndtr) for one trial, far into both tails
    from scipy.special import log_ndtr
    eta = np.linspace(-60, 60, 241)
    one = np.ones(eta.size)
    np.testing.assert_allclose(Binomial("probit").derivatives(one, one, eta).loglik, log_ndtr(eta), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(Binomial("probit").derivatives(0 * one, one, eta).loglik, log_ndtr(-eta), rtol=1e-12, atol=1e-300)
    for link in Binomial.links:
        d = Binomial(link).derivatives(one, 2 * one, eta)
        assert all(np.all(np.isfinite(v)) for v in (d.loglik, d.score, d.weight, d.dweight)), link
