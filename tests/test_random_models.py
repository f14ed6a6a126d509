"""Random small models (property-style, issue 13): a fit either reproduces an independent dense REML
maximisation (tests/reml/dense_reml.py, V formed explicitly, maximised by scipy) or raises a
sparsereml error; the caller's data are never modified."""
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import sparsereml as sr
from sparsereml.errors import SparseREMLError

from .reml.dense_reml import dense_loglik

FIXED = ["y ~ 1", "y ~ S", "y ~ x", "y ~ S + x", "y ~ C(A)", "y ~ S * x"]
RANDOM = ["~ A", "~ B", "~ A + B", "~ A:B", "~ B + A:B", "~ at(S):B", "~ A + at(S):B", "~ Tree", "~ B + Tree",
          "~ One", "~ A + units"]
RESIDUAL = [None, None, "~ at(S):units"]


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 90))
    df = pd.DataFrame({"A": rng.integers(1, int(rng.integers(3, 8)), n), "B": rng.choice(list("abcdefghij"), n),
                       "S": rng.choice(["s1", "s2"], n), "x": rng.normal(size=n), "Tree": np.arange(n), "One": 7})
    a = rng.normal(size=10) * rng.uniform(0, 3)
    b = dict(zip("abcdefghij", rng.normal(size=10) * rng.uniform(0, 3)))
    df["y"] = 10 + a[df.A] + df.B.map(b) + 0.5 * df.x + rng.normal(size=n) * np.where(df.S == "s1", 1.0, 2.0)
    if rng.random() < 0.3:
        df.loc[df.index[rng.choice(n, 3, replace=False)], "y"] = np.nan
    return df, str(rng.choice(FIXED)), str(rng.choice(RANDOM)), rng.choice(RESIDUAL)


def dense_maximum(design, start: np.ndarray) -> float:
    """The largest dense REML log-likelihood over the variances (log scale, each >= 1e-8 of var(y))."""
    floor = 1e-8 * np.var(design.y)
    res = minimize(lambda z: -dense_loglik(design, np.exp(z))[0], np.log(np.maximum(start, floor)),
                   method="L-BFGS-B", bounds=[(np.log(floor), None)] * start.size)
    return -float(res.fun)


@pytest.mark.parametrize("seed", range(24))
def test_random_model_matches_dense_reml_or_is_refused(seed, backend):
    df, fixed, random, residual = random_case(seed)
    before = df.copy(deep=True)
    try:
        m = sr.fit(fixed, random, residual, data=df, backend=backend)
    except SparseREMLError:
        pd.testing.assert_frame_equal(df, before)
        return
    pd.testing.assert_frame_equal(df, before)
    assert m.converged, m.message
    theta = m.theta
    assert m.loglik == pytest.approx(dense_loglik(m.design, theta)[0], abs=1e-8)
    # from a start of its own (an even split of var(y)), the dense maximum is no higher than the fit's
    start = np.full(theta.size, np.var(m.design.y) / theta.size)
    assert dense_maximum(m.design, start) <= m.loglik + 1e-6
