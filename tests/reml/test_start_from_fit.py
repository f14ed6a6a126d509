"""fit(..., start=other_fit): a richer model starts where a simpler one ended."""
import numpy as np
import pytest

import sparsereml as sr
from sparsereml.design import build_design
from sparsereml.formula import model_spec
from sparsereml.reml.problem import REMLProblem
from sparsereml.reml.user_start import start_from_fit

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


def test_start_and_fix_take_us_entries_by_their_varcomp_labels():
    from ..structures.bivariate_data import bivariate_data

    df = bivariate_data(n=1500)
    args = ("cbind(dbh, height) ~ trait + trait:Trial", "~ us(trait):Mother", "~ units:us(trait)")
    free = sr.fit(*args, data=df)
    started = sr.fit(*args, data=df, start={"us(trait):Mother!dbh:dbh": 4.0, "units!us(trait)!height:dbh": 3.0})
    assert started.loglik == pytest.approx(free.loglik, abs=1e-5)
    one = sr.fit(*args, data=df, fix={"units!us(trait)!dbh:dbh": 10.0})  # the first variance alone
    assert one.varcomp.loc["units!us(trait)!dbh:dbh", "component"] == pytest.approx(10.0)
    assert one.varcomp.loc["units!us(trait)!dbh:dbh", "bound"] == "F"
    R = {"units!us(trait)!dbh:dbh": 9.0, "units!us(trait)!height:dbh": 4.0, "units!us(trait)!height:height": 8.0}
    held = sr.fit(*args, data=df, fix=R)
    np.testing.assert_allclose(held.vcov("units")["covariance"].to_numpy(), [[9.0, 4.0], [4.0, 8.0]])
    with pytest.raises(sr.ModelError, match="held all together"):
        sr.fit(*args, data=df, fix={"units!us(trait)!height:height": 8.0})
    with pytest.raises(sr.ModelError, match="not positive definite"):
        sr.fit(*args, data=df, start={"units!us(trait)!height:dbh": 20.0})
