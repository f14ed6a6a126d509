"""fit(..., start=other_fit): a richer model starts where a simpler one ended."""
import numpy as np
import pytest

import sparsereml as sr
from sparsereml.design import build_design
from sparsereml.formula import model_spec
from sparsereml.reml.problem import REMLProblem
from sparsereml.reml.start import start_from_fit

from ..structures.met_data import met_data


@pytest.fixture(scope="module")
def data():
    return met_data()[0]


@pytest.fixture(scope="module")
def simple(data):
    return sr.fit("y ~ 0 + Trial", "~ Trial:Block + Mother + Trial:Mother", data=data)


def problem(data, random, residual=None):
    return REMLProblem(build_design(model_spec("y ~ 0 + Trial", random, residual), data))


def test_same_labels_carry_over(data, simple):
    start = start_from_fit(problem(data, "~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units"), simple)
    assert start["Trial:Block"] == simple.varcomp.loc["Trial:Block", "component"]
    assert start["Mother"] == simple.varcomp.loc["Mother", "component"]
    assert "at(Trial, T1):units" not in start  # the old model had one residual variance, not per trial


def test_covariance_model_starts_from_the_implied_covariance(data, simple):
    prob = problem(data, "~ Trial:Block + us(Trial):Mother")
    start = start_from_fit(prob, simple)
    st = prob.structures[1]
    S = st.model.sigma(np.array([start[lab] for lab in st.labels]))
    vc = simple.varcomp["component"]
    expected = vc["Mother"] * np.ones((6, 6)) + vc["Trial:Mother"] * np.eye(6)  # s2_M J + s2_TM I
    np.testing.assert_allclose(S, expected, rtol=1e-6)
    diag = sr.fit("y ~ 0 + Trial", "~ Trial:Block + diag(Trial):Mother", data=data)
    prob = problem(data, "~ Trial:Block + fa(Trial, 1):Mother")
    start = start_from_fit(prob, diag)
    st = prob.structures[1]
    S = st.model.sigma(np.array([start[lab] for lab in st.labels]))
    np.testing.assert_allclose(np.diag(S), diag.vcov("diag(Trial):Mother")["covariance"].to_numpy().diagonal(),
                               rtol=0.05)


def test_fit_from_a_simpler_fit_reaches_the_same_optimum(data, simple):
    a = sr.fit("y ~ 0 + Trial", "~ Trial:Block + fa(Trial, 2):Mother", data=data)
    b = sr.fit("y ~ 0 + Trial", "~ Trial:Block + fa(Trial, 2):Mother", data=data, start=simple)
    assert a.converged and b.converged
    assert b.loglik == pytest.approx(a.loglik, abs=1e-5)
