"""Several traits: cbind(a, b) ~ ..., stacked to one record per tree and trait, with records
where a trait is missing kept for the other trait."""
import numpy as np
import pytest

import sparsereml as sr
from sparsereml.design import build_design
from sparsereml.errors import DataError, FormulaError
from sparsereml.formula import model_spec

from ..reml.dense_reml import assert_matches_dense
from ..conftest import reference
from .bivariate_data import bivariate_data


@pytest.fixture(scope="module")
def data():
    return bivariate_data()


def test_independent_traits_equal_two_univariate_fits(data, backend):
    """With G and R diagonal the traits are independent: the bivariate REML logL is the sum of
    the two univariate ones, and the components are theirs."""
    d = sr.fit("cbind(dbh, height) ~ trait + trait:Trial", "~ diag(trait):Mother", "~ units:diag(trait)",
               data=data, backend=backend)
    a = sr.fit("dbh ~ Trial", "~ Mother", data=data, backend=backend)
    b = sr.fit("height ~ Trial", "~ Mother", data=data, backend=backend)
    assert d.nobs == a.nobs + b.nobs == int(data[["dbh", "height"]].notna().sum().sum())
    assert d.loglik == pytest.approx(a.loglik + b.loglik, abs=1e-6)
    vc = d.varcomp["component"]
    assert vc["diag(trait):Mother!height"] == pytest.approx(b.varcomp.loc["Mother", "component"], rel=1e-5)
    assert vc["units!diag(trait)!dbh"] == pytest.approx(a.varcomp.loc["units", "component"], rel=1e-5)


def test_matches_dense_formulas(data, backend):
    small = data[data.Mother < "M012"]
    design = build_design(model_spec("cbind(dbh, height) ~ trait + trait:Trial", "~ us(trait):Mother",
                                     "~ units:us(trait)"), small)
    assert_matches_dense(design, backend, (0.95, 1.05))


def test_default_residual_is_us_across_traits(data):
    m = sr.fit("cbind(dbh, height) ~ trait + trait:Trial", "~ us(trait):Mother", data=data)
    assert "units!us(trait)!height:dbh" in m.varcomp.index
    assert m.spec.residual.label == "id(units):us(trait)"


def test_bad_multivariate_input(data):
    with pytest.raises(DataError, match="rename the data's column 'trait'"):
        sr.fit("cbind(dbh, height) ~ trait", data=data.assign(trait=1))
    with pytest.raises(DataError, match="'Mother' must be numeric"):
        sr.fit("cbind(dbh, Mother) ~ trait", data=data)
    with pytest.raises(FormulaError, match="two or more column names"):
        sr.fit("cbind(dbh) ~ trait", data=data)
    with pytest.raises(DataError, match="height2"):
        sr.fit("cbind(dbh, height2) ~ trait", data=data)


def test_residual_covariance_and_fitted_values_by_trait(data):
    m = sr.fit("cbind(dbh, height) ~ trait + trait:Trial", "~ us(trait):Mother", data=data)
    R = m.vcov("units")["covariance"]
    assert list(R.index) == ["dbh", "height"]
    assert R.loc["height", "dbh"] == m.varcomp.loc["units!us(trait)!height:dbh", "component"]
    f = m.fitted
    assert f.index.names[-1] == "trait" and len(f) == m.nobs
    row = data.index[data.dbh.notna() & data.height.notna()][0]
    assert set(f.loc[row].index) == {"dbh", "height"}
    assert m.residuals.loc[(row, "height")] == pytest.approx(data.loc[row, "height"] - f.loc[(row, "height")])


REF = reference("multivariate.json")  # tests/reference/multivariate.R: glmmTMB 1.1.5, nlme, direct REML


@pytest.mark.parametrize("model, g, r", [("us_us", "us(trait):Mother", "~ units:us(trait)"),
                                         ("diag_diag", "diag(trait):Mother", "~ units:diag(trait)")])
def test_bivariate_against_r(data, backend, model, g, r):
    """G and R between dbh and height with 10% / 20% missing values: REML logLik and the
    matrices as glmmTMB (polished; nlme and a direct R evaluator agree to 5e-8 in logLik)."""
    ref = REF["models"][model]
    assert int(np.round(data[["dbh", "height"]].to_numpy() * 1e4)[~data[["dbh", "height"]].isna().to_numpy()]
               .sum()) == REF["data"]["checksum"]
    m = sr.fit("cbind(dbh, height) ~ trait + trait:Trial", f"~ {g}", r,
               data=data, backend=backend)
    assert m.nobs == REF["data"]["nobs"] and m.rank == REF["data"]["p"]
    assert m.loglik == pytest.approx(ref["logLik_REML"], abs=1e-6)
    np.testing.assert_allclose(m.vcov(g)["covariance"].to_numpy(), ref["G"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.vcov("units")["covariance"].to_numpy(), ref["R"], rtol=1e-5, atol=1e-6)


def test_traits_in_very_different_units(data):
    """dbh x 100 and height x 0.01: the same model, its components rescaled (start values and the
    optimiser's notion of zero are per trait)."""
    args = ("cbind(dbh, height) ~ trait + trait:Trial", "~ us(trait):Mother", "~ units:us(trait)")
    m = sr.fit(*args, data=data)
    s = sr.fit(*args, data=data.assign(dbh=data.dbh * 100, height=data.height * 0.01))
    assert s.converged
    back = s.varcomp["component"].to_numpy() / np.array([1e4, 1.0, 1e-4, 1e4, 1.0, 1e-4])
    np.testing.assert_allclose(back, m.varcomp["component"].to_numpy(), rtol=5e-4)  # logL rounding at 1e8 ratios


def test_a_trait_without_values_is_an_error(data):
    with pytest.raises(DataError, match="'height' has no non-missing values"):
        sr.fit("cbind(dbh, height) ~ trait", data=data.assign(height=np.nan))
