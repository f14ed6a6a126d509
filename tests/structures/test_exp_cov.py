"""exp(F): the isotropic exponential covariance across the numeric levels of a factor.

The model is one file, src/sparsereml/structures/exp.py; these tests check its derivatives,
a fit against glmmTMB and that nothing else in the package had to name it.

Reference numbers: tests/reference/exp_cov.json, made by tests/reference/exp_cov.R (glmmTMB
1.1.5, REML, exp(pos + 0 | Site), Newton-polished to a gradient of 2e-11) on the data it
simulated, tests/reference/exp_cov.csv (60 sites x 6 unequally spaced positions x 2 records).
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml import registry
from sparsereml.formula import model_spec
from sparsereml.structures import make_cov_model

from ..conftest import REFERENCE, reference

REF = reference("exp_cov.json")
X = ["0", "1", "2.5", "4", "7", "8"]  # unequal distances, as in the reference data


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REFERENCE / "exp_cov.csv")


def test_sigma_is_var_times_phi_to_the_distance():
    m = make_cov_model("exp", X)
    S = m.sigma(np.array([2.0, 0.6]))
    assert S[0, 2] == pytest.approx(2.0 * 0.6 ** 2.5)
    assert S[3, 5] == pytest.approx(2.0 * 0.6 ** 4.0)
    np.testing.assert_allclose(np.diag(S), 2.0)


@pytest.mark.parametrize("theta", [(2.0, 0.6), (0.3, 0.95), (5.0, 0.1)])
def test_derivatives_against_finite_differences(theta):
    m = make_cov_model("exp", X)
    th = np.array(theta)
    D = m.dsigma(th)
    D2 = np.zeros((2, 2, m.n, m.n))
    for i, j, M in m.d2sigma(th):
        D2[i, j] = D2[j, i] = M
    for i in range(2):
        h = 1e-6 * max(1.0, abs(th[i]))
        up, dn = th.copy(), th.copy()
        up[i] += h
        dn[i] -= h
        np.testing.assert_allclose(D[i], (m.sigma(up) - m.sigma(dn)) / (2 * h), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(D2[:, i], (m.dsigma(up) - m.dsigma(dn)) / (2 * h), rtol=1e-5, atol=1e-7)


def test_start_recovers_an_exponential_matrix():
    m = make_cov_model("exp", X)
    th = m.start(m.sigma(np.array([1.7, 0.55])))
    np.testing.assert_allclose(th, [1.7, 0.55], rtol=1e-10)
    lo, hi = m.bounds()
    assert list(lo) == [0.0, 0.0] and list(hi) == [np.inf, 1.0]


def test_fit_matches_glmmtmb(data, backend):
    assert len(data) == REF["nobs"] and data.y.sum() == pytest.approx(REF["checksum_y"], abs=1e-6)
    m = sr.fit("y ~ 1", "~ exp(Pos):Site", data=data, backend=backend)
    assert m.converged
    assert m.loglik == pytest.approx(REF["logLik_REML"], abs=1e-5)  # agrees to 1e-11 (2026-12-07)
    vc = m.varcomp["component"]
    assert vc["exp(Pos):Site!var"] == pytest.approx(REF["var"], rel=1e-4)
    assert vc["exp(Pos):Site!cor"] == pytest.approx(REF["phi"], rel=1e-4)
    assert vc["units"] == pytest.approx(REF["residual"], rel=1e-4)
    R = m.vcov("exp(Pos):Site")["correlation"].to_numpy()  # phi^distance between positions 0 and 2.5
    assert R[0, 2] == pytest.approx(REF["phi"] ** 2.5, rel=1e-4)


def test_levels_that_are_not_numbers_are_refused(data):
    with pytest.raises(sr.ModelError, match=r"exp\(Site\) needs a numeric column.*'Site'.*'S01' is not a number"):
        sr.fit("y ~ 1", "~ exp(Site):Pos", data=data)


def test_exp_needs_only_its_own_file():
    """Registered by its own module, read by the parser, and named by no other source file."""
    assert "exp" in registry.cov_model_names()
    assert registry.cov_model("exp").__module__ == "sparsereml.structures.exp"
    spec = model_spec("y ~ 1", "~ exp(Pos):Site")
    assert spec.random[0].struct.model == "exp" and spec.random[0].label == "exp(Pos):Site"
    src = Path(sr.__file__).parent
    others = [p for p in src.rglob("*.py") if p.name != "exp.py" and ("ExpCov" in p.read_text()
                                                                      or "structures.exp" in p.read_text()
                                                                      or "from .exp" in p.read_text())]
    assert others == []


def test_exp_as_a_residual_dimension(data):
    d1 = data[data.rep == 1]  # one record per (Site, Pos) cell
    m = sr.fit("y ~ 1", "~ Site", "~ Site:exp(Pos)", data=d1)
    assert m.converged
    phi = m.varcomp.loc["units!exp(Pos)!cor", "component"]
    assert 0 < phi < 1
    R = m.vcov("units")["correlation"].to_numpy()
    assert R[0, 2] == pytest.approx(phi ** 2.5, rel=1e-12)
