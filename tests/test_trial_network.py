"""Models m2, m2b and m2c on simulated trial networks against lme4 1.1.31 (m2) and glmmTMB 1.1.5
(m2b: ``dispformula = ~ 0 + Trial``; m2c: ``diag(0 + Trial | Block)``).

Reference numbers: tests/reference/trial_network.json, made by tests/reference/trial_network.R
on data from the project's simulator (same seed -> same trees; the JSON's row count and dbh
sums confirm it).  glmmTMB fits were polished with Newton steps on TMB's exact gradient (final
gradient <= 1e-5); in net11 m2c four block variances are exactly 0 at the optimum.
"""
import pytest

import sparsereml as sr
from sparsereml.datasets import trial_network

from .conftest import reference

REF = reference("trial_network.json")
NETS = {"net7": dict(seed=7, trials=8, trees=20000, mothers=160),
        "net11": dict(seed=11, trials=31, trees=60000, mothers=400)}
MODELS = {
    "m2": ("~ Trial:Block + Mother + Trial:Mother", None, "m2_lme4"),
    "m2b": ("~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units", "m2b_glmmTMB"),
    "m2c": ("~ at(Trial):Block + Mother + Trial:Mother", "~ at(Trial):units", "m2c_glmmTMB"),
}


def _our_label(name: str) -> str:
    if name.startswith("units_T"):
        return f"at(Trial, {name[7:]}):units"
    if name.startswith("block_T"):
        return f"at(Trial, {name[7:]}):Block"
    return name


@pytest.fixture(scope="module")
def data():
    return {k: trial_network(**v)[0] for k, v in NETS.items()}


@pytest.fixture(scope="module")
def fits(data, backend):
    return {(net, m): sr.fit("dbh ~ Trial", rnd, res, data=data[net], backend=backend)
            for net in NETS for m, (rnd, res, _) in MODELS.items()}


@pytest.mark.parametrize("net", list(NETS))
def test_same_data_as_r(net, data):
    ref = REF[net]["data"]
    df = data[net]
    assert len(df) == ref["nobs"]
    assert df.dbh.sum() == pytest.approx(ref["sum_dbh"], rel=1e-12)
    assert (df.dbh**2).sum() == pytest.approx(ref["sum_dbh_sq"], rel=1e-12)


@pytest.mark.parametrize("net", list(NETS))
@pytest.mark.parametrize("model", list(MODELS))
def test_variance_components_and_loglik(net, model, fits):
    m = fits[net, model]
    ref = REF[net]["models"][MODELS[model][2]]
    boundary = set(ref.get("boundary", []))
    assert m.converged
    scale = ref["varcomp"]["Mother"]
    for name, value in ref["varcomp"].items():
        ours = m.varcomp.loc[_our_label(name)]
        if name in boundary:
            assert ours["bound"] == "B" and ours["component"] < 1e-6 * scale, name
        else:
            assert ours["component"] == pytest.approx(value, rel=1e-5), name
    assert len(m.varcomp) == len(ref["varcomp"])
    assert m.loglik == pytest.approx(ref["logLik_REML"], abs=1e-4)


@pytest.mark.parametrize("net", list(NETS))
def test_m2_fixed_effects_and_mother_blups_against_lme4(net, fits):
    m = fits[net, "m2"]
    ref = REF[net]["models"]["m2_lme4"]
    for name, value in ref["fixef"].items():
        ours = "(Intercept)" if name == "(Intercept)" else f"Trial_{name[5:]}"
        assert m.fixed.loc[ours, "estimate"] == pytest.approx(value, rel=1e-6, abs=1e-6)
        assert m.fixed.loc[ours, "std.error"] == pytest.approx(ref["fixef_se"][name], rel=1e-5)
    blups = m.blups("Mother")["BLUP"]
    for level, value in ref["ranef_Mother_first20"].items():
        assert blups[level] == pytest.approx(value, abs=1e-5 * max(1.0, abs(value)))
