"""What a GLMM fit refuses, before any fitting, with the column, level or argument named."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.errors import DataError, FormulaError, ModelError
from tests.conftest import REFERENCE


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "glmm_cbpp.csv").astype({"herd": str, "period": str})


@pytest.fixture(scope="module")
def progeny() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "glmm_progeny.csv")


CB = "cbind(incidence, size - incidence) ~ period"


def test_residual_formula_refused(cbpp):
    with pytest.raises(ModelError, match="no residual variance to model"):
        sr.fit(CB, "~ herd", "~ at(period):units", data=cbpp, family="binomial")


def test_unknown_method_and_gaussian_only_arguments(cbpp):
    with pytest.raises(ModelError, match="method must be one of 'laplace', 'pql'"):
        sr.fit(CB, "~ herd", data=cbpp, family="binomial", method="agq")
    with pytest.raises(ModelError, match="weights= is for generalized linear mixed models"):
        sr.fit("incidence ~ period", "~ herd", data=cbpp, weights="size")


def test_cbind_forms(cbpp):
    with pytest.raises(ModelError, match="either by cbind"):
        sr.fit(CB, "~ herd", data=cbpp, family="binomial", weights="size")
    with pytest.raises(FormulaError, match="'trials - incidence'"):
        sr.fit("cbind(incidence, size - 2) ~ period", "~ herd", data=cbpp, family="binomial")
    with pytest.raises(FormulaError, match="binomial family"):
        sr.fit(CB, "~ herd", data=cbpp, family="poisson")
    with pytest.raises(DataError, match="cbind.. trials: the data have no column 'sizes'"):
        sr.fit("cbind(incidence, sizes - incidence) ~ period", "~ herd", data=cbpp, family="binomial")


def test_binomial_response_values(cbpp):
    with pytest.raises(ModelError, match="whole numbers between 0 and the number of trials"):
        sr.fit("incidence ~ period", "~ herd", data=cbpp, family="binomial")  # counts without trials
    d = cbpp.assign(p=cbpp["incidence"] / cbpp["size"] * 2)
    with pytest.raises(DataError, match="proportion in \\[0, 1\\]"):
        sr.fit("p ~ period", "~ herd", data=d, family="binomial", weights="size")


def test_weights_and_offset_checked(cbpp):
    d = cbpp.assign(p=cbpp["incidence"] / cbpp["size"], w=cbpp["size"].where(cbpp.index != 3))
    with pytest.raises(DataError, match="weights: column 'w' must be positive .* row 3"):
        sr.fit("p ~ period", "~ herd", data=d, family="binomial", weights="w")
    with pytest.raises(ModelError, match="offset must hold one value per row of the data \\(56\\)"):
        sr.fit(CB, "~ herd", data=cbpp, family="binomial", offset=np.zeros(5))


def test_all_survived_trial_refused_by_level(progeny):
    d = progeny.copy()
    d.loc[d["Trial"] == "T3", "surv"] = 1
    with pytest.raises(DataError, match="fixed term 'Trial', level T3: its 1,.* records are all successes"):
        sr.fit("surv ~ Trial", "~ Trial:Block + Mother", data=d, family="binomial")


def test_input_frame_not_modified(cbpp):
    before = cbpp.copy()
    sr.fit(CB, "~ herd", data=cbpp, family="binomial")
    pd.testing.assert_frame_equal(cbpp, before)


def test_likelihoods_of_other_kinds_not_compared(cbpp):
    lap = sr.fit(CB, "~ herd", data=cbpp, family="binomial")
    pql = sr.fit(CB, "~ herd", data=cbpp, family="binomial", method="pql")
    reml = sr.fit("incidence ~ period", "~ herd", data=cbpp.assign(incidence=cbpp["incidence"] / cbpp["size"]))
    with pytest.raises(ModelError, match="Laplace log-likelihood and the second model a REML one"):
        sr.lrt(lap, reml)
    with pytest.raises(ModelError, match="PQL fits have no likelihood of the data"):
        sr.lrt(pql, pql)
    for call in (lambda: pql.aic, lambda: lap.loglik_asreml, lambda: lap.wald(), lambda: lap.anova()):
        with pytest.raises(ModelError):
            call()
