"""Control(start_method="equal"): the plain variance components start from equal shares of the
OLS residual variance, and the fit reaches the same optimum as from the moment start."""
import numpy as np
import pytest

import sparsereml as sr
from sparsereml.datasets import trial_network

RANDOM = "~ Trial:Block + Mother + Trial:Mother"


@pytest.fixture(scope="module")
def data():
    return trial_network(seed=5, trials=4, trees=3000, mothers=60)[0]


@pytest.fixture(scope="module")
def fits(data, backend):
    kw = dict(data=data, factors=["Trial"], backend=backend)
    return (sr.fit("dbh ~ Trial", RANDOM, "~ at(Trial):units", **kw),
            sr.fit("dbh ~ Trial", RANDOM, "~ at(Trial):units", control=sr.Control(start_method="equal"), **kw))


def test_equal_start_splits_the_ols_variance_equally(data, fits):
    _, m = fits
    start = m.iterations.loc[0, m.labels].to_numpy(dtype=float)
    assert m.control.start_method == "equal"
    assert len(start) == 3 + 4  # three plain random terms, four residual groups
    X = (data.Trial.to_numpy()[:, None] == np.unique(data.Trial)[None, :]).astype(float)  # dbh ~ Trial
    e = data.dbh.to_numpy() - X @ np.linalg.lstsq(X, data.dbh.to_numpy(), rcond=None)[0]
    pooled = e @ e / (len(e) - X.shape[1])
    np.testing.assert_allclose(start, pooled / 7, rtol=1e-9)


def test_equal_start_reaches_the_same_optimum(fits):
    moments, equal = fits
    assert moments.converged and equal.converged
    assert equal.loglik == pytest.approx(moments.loglik, abs=1e-6)
    np.testing.assert_allclose(equal.theta, moments.theta, rtol=1e-5)
    first = moments.iterations.loc[0, moments.labels].to_numpy(dtype=float)
    assert not np.allclose(equal.iterations.loc[0, equal.labels].to_numpy(dtype=float), first, rtol=1e-3)
