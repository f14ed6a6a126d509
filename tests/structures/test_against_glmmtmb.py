"""Covariance structures across trials against glmmTMB 1.1.5 and lme4 1.1.31 (REML).

Reference numbers: tests/reference/structures.json, made by tests/reference/structures.R on the
data of tests/structures/met_data.py (6 trials, 120 mothers, 5,400 trees).  glmmTMB fits were
polished to gradients <= 7e-7.  Its us() optimum is singular (rank 5; the reference came from
rr(d = 5)) and fa2 has Psi_T3 = 0 on the boundary, so those G entries are compared with an
absolute tolerance.
"""
import numpy as np
import pytest

import sparsereml as sr

from ..conftest import reference
from .met_data import met_data

REF = reference("structures.json")
MODELS = {  # our random term, our residual, reference key, G tolerance (absolute)
    "diag": ("diag(Trial)", None, "diag", 1e-3),
    "us": ("us(Trial)", None, "us", 2e-2),
    "corh": ("corh(Trial)", None, "corh", 1e-3),
    "corv": ("corv(Trial)", None, "corv_glmmTMB", 1e-3),
    "fa1": ("fa(Trial, 1)", None, "fa1", 1e-3),
    "fa2": ("fa(Trial, 2)", None, "fa2", 2e-3),
    "us_hetres": ("us(Trial)", "~ at(Trial):units", "us_hetres", 2e-2),
}


@pytest.fixture(scope="module")
def data():
    df, _ = met_data()
    return df


@pytest.fixture(scope="module")
def fits(data, backend):
    return {k: sr.fit("y ~ 0 + Trial", f"~ Trial:Block + {t}:Mother", res, data=data, backend=backend)
            for k, (t, res, _, _) in MODELS.items()}


def test_same_data_as_r(data):
    ref = REF["data"]
    assert len(data) == ref["nobs"]
    assert int(np.round(data.y * 1e4).sum()) == ref["checksum_y_int"]
    assert int((np.arange(1, len(data) + 1) * np.round(data.y * 1e4)).sum()) == ref["checksum_y_int_weighted"]


@pytest.mark.parametrize("model", list(MODELS))
def test_loglik_and_covariance_between_trials(model, fits):
    m = fits[model]
    term, _, key, tol = MODELS[model]
    ref = REF["models"][key]
    assert m.converged
    assert m.loglik == pytest.approx(ref["logLik_REML"], abs=1e-4)
    G = m.vcov(f"{term}:Mother")["covariance"].to_numpy()
    np.testing.assert_allclose(G, np.array(ref["G"]), atol=tol * np.abs(ref["G"]).max())
    assert m.varcomp.loc["Trial:Block", "component"] == pytest.approx(ref["block_var"], rel=1e-3)


def test_residuals_and_corh_parameters(fits):
    ref = REF["models"]
    vc = fits["us_hetres"].varcomp["component"]
    for trial, value in ref["us_hetres"]["residual"].items():
        assert vc[f"at(Trial, {trial}):units"] == pytest.approx(value, rel=1e-3)
    corh = fits["corh"].varcomp["component"]
    assert corh["corh(Trial):Mother!cor"] == pytest.approx(ref["corh"]["corh"]["correlation"], abs=1e-5)
    for trial, value in ref["corh"]["corh"]["variances"].items():
        assert corh[f"corh(Trial):Mother!{trial}"] == pytest.approx(value, rel=1e-4)
    corv = fits["corv"].varcomp["component"]
    assert corv["corv(Trial):Mother!cor"] == pytest.approx(ref["corv_glmmTMB"]["corv"]["correlation"], abs=1e-5)


def test_boundaries_match(fits):
    """glmmTMB: Psi_T3 = 0 in fa2 (derivative of -logL at 0 is +0.125), us() singular."""
    fa2 = fits["fa2"].varcomp
    assert fa2.loc["fa(Trial, 2):Mother!var.T3", "bound"] == "B"
    assert (fa2.bound == "B").sum() == 1
    eig = np.linalg.eigvalsh(fits["us"].vcov("us(Trial):Mother")["covariance"].to_numpy())
    assert eig[0] < 1e-3 * eig[-1]
    assert "converged in logL" in fits["us"].message  # flat along the singular direction, and says so
