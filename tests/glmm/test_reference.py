"""GLMM fits against glmer (nAGQ = 1) and glmmTMB, and PQL against an R PQL loop.

Reference numbers: tests/reference/glmm.json, made by tests/reference/glmm.R (lme4, glmmTMB;
glmer with tolPwrss = 1e-12, since its default PIRLS tolerance leaves its objective ~3e-4 short on
cbpp).  For the canonical links (logit, log) glmer and glmmTMB maximise the same Laplace
likelihood and both are checked.  For probit and cloglog they do not: glmer puts the Fisher
weights in the Laplace log-determinant, glmmTMB (and sparsereml) the observed information, the
exact Laplace approximation; there glmmTMB is the reference (glmm.R's own Laplace written out in
R reproduces each package's variant, "laplace_check").
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from tests.conftest import REFERENCE, reference

REF = reference("glmm.json")
REL = 1e-4  # issue 18: estimates to 1e-4 relative, logLik to 1e-3


def _data(name: str, factors: list) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / f"glmm_{name}.csv").astype({f: str for f in factors})


CBPP = {"fixed": "cbind(incidence, size - incidence) ~ period", "random": "~ herd"}
PROGENY = {"fixed": "surv ~ Trial", "random": "~ Trial:Block + Mother"}
CASES = {  # case: (data, factors, model, family, extra arguments)
    "cbpp_logit": ("cbpp", ["herd", "period"], CBPP, sr.glmm.Binomial("logit"), {}),
    "cbpp_logit_proportion": ("cbpp", ["herd", "period"], {"fixed": "p ~ period", "random": "~ herd"},
                              sr.glmm.Binomial("logit"), {"weights": "size"}),
    "cbpp_probit": ("cbpp", ["herd", "period"], CBPP, sr.glmm.Binomial("probit"), {}),
    "cbpp_cloglog": ("cbpp", ["herd", "period"], CBPP, sr.glmm.Binomial("cloglog"), {}),
    "grouseticks_poisson": ("grouseticks", ["BROOD", "LOCATION", "YEAR"],
                            {"fixed": "TICKS ~ YEAR + HEIGHT_c", "random": "~ BROOD + LOCATION"}, "poisson", {}),
    "progeny_probit": ("progeny", ["Trial", "Block", "Mother"], PROGENY, sr.glmm.Binomial("probit"), {}),
    "progeny_logit": ("progeny", ["Trial", "Block", "Mother"], PROGENY, "binomial", {}),
    "cones_poisson_offset": ("cones", ["Trial", "Block", "Mother"], {"fixed": "count ~ x", "random":
                             "~ Mother + Trial:Block"}, "poisson", {"offset": "log_exposure"}),
}
CANONICAL = {"cbpp_logit", "cbpp_logit_proportion", "grouseticks_poisson", "progeny_logit", "cones_poisson_offset"}


@pytest.fixture(scope="module")
def fits(backend):
    out = {}
    for case, (name, factors, model, family, extra) in CASES.items():
        df = _data(name, factors)
        df["p"] = df["incidence"] / df["size"] if name == "cbpp" else 0.0
        if name == "cones":
            df["log_exposure"] = np.log(df["exposure"])
        out[case] = sr.fit(model["fixed"], model["random"], data=df, family=family, backend=backend, **extra)
    return out


def _fixed(m) -> np.ndarray:
    return m.fixed["estimate"].to_numpy()


def _variances(m, ref: dict) -> tuple[np.ndarray, np.ndarray]:
    return m.varcomp.loc[list(ref), "component"].to_numpy(), np.array(list(ref.values()))


def _exact_laplace(case: str) -> dict:
    """The exact Laplace optimum: glmm.R's own maximisation of the likelihood written out in R
    (observed information) where it made one, else glmmTMB's fit."""
    check = REF[case].get("laplace_check")
    return check["observed"] if check else REF[case]["glmmTMB"]


@pytest.mark.parametrize("case", list(CASES))
def test_laplace_estimates_equal_the_exact_laplace_optimum(fits, case):
    m, ref = fits[case], _exact_laplace(case)
    assert m.converged and m.method == "laplace"
    np.testing.assert_allclose(_fixed(m), list(ref["fixef"].values()), rtol=REL, atol=1e-6)
    np.testing.assert_allclose(*_variances(m, ref["variances"]), rtol=REL)
    assert m.loglik == pytest.approx(ref["logLik"], abs=1e-4)


@pytest.mark.parametrize("case", list(CASES))
def test_laplace_estimates_near_glmmtmb(fits, case):
    # glmmTMB stops short of the optimum by up to 1.1e-4 relative on progeny_probit
    # (glmm.json: laplace_check.observed.max_rel_diff_to_glmmTMB), so 3e-4 here
    m, tmb = fits[case], REF[case]["glmmTMB"]
    np.testing.assert_allclose(_fixed(m), list(tmb["fixef"].values()), rtol=3 * REL, atol=1e-6)
    np.testing.assert_allclose(*_variances(m, tmb["variances"]), rtol=3 * REL)
    assert m.loglik == pytest.approx(tmb["logLik"], abs=1e-3)


@pytest.mark.parametrize("case", sorted(CANONICAL))
def test_laplace_estimates_equal_glmer_for_canonical_links(fits, case):
    m, ref = fits[case], REF[case]
    np.testing.assert_allclose(_fixed(m), list(ref["fixef"].values()), rtol=REL, atol=1e-6)
    np.testing.assert_allclose(*_variances(m, ref["variances"]), rtol=REL)
    assert m.loglik == pytest.approx(ref["logLik"], abs=1e-4)


@pytest.mark.parametrize("case", ["cbpp_logit", "progeny_probit", "grouseticks_poisson"])
def test_conditional_modes_equal_glmmtmb(fits, case):
    m, tmb = fits[case], REF[case]["glmmTMB"]
    for term, modes in tmb["ranef"].items():
        blups = m.blups(term)
        got = blups.loc[[str(k) for k in modes], blups.columns[0]].to_numpy()
        np.testing.assert_allclose(got, list(modes.values()), rtol=1e-3, atol=1e-4)


def test_proportion_with_weights_is_the_cbind_fit(fits):
    a, b = fits["cbpp_logit"], fits["cbpp_logit_proportion"]
    np.testing.assert_allclose(_fixed(a), _fixed(b), rtol=1e-8)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)  # both count the binomial coefficients


@pytest.mark.parametrize("case, data, factors", [("pql_cbpp_logit", "cbpp", ["herd", "period"]),
                                                 ("pql_progeny_probit", "progeny", ["Trial", "Block", "Mother"])])
def test_pql_equals_the_r_pql_loop(case, data, factors, backend):
    ref = REF[case]
    model = CBPP if data == "cbpp" else PROGENY
    family = sr.glmm.Binomial(ref["link"])
    m = sr.fit(model["fixed"], model["random"], data=_data(data, factors), family=family, method="pql",
               backend=backend)
    assert m.converged and m.method == "pql"
    np.testing.assert_allclose(_fixed(m), list(ref["fixef"].values()), rtol=REL, atol=1e-6)
    np.testing.assert_allclose(*_variances(m, ref["variances"]), rtol=REL)
    assert m.loglik == pytest.approx(ref["logLik_REML_working"], abs=1e-3)


@pytest.mark.parametrize("case", ["cbpp_logit", "grouseticks_poisson", "progeny_logit"])
def test_fixed_standard_errors_equal_glmmtmb(fits, case):
    # glmmTMB's from the inverse Hessian of (theta, beta); glmer's vcov (use.hessian) the same
    se = fits[case].fixed["std.error"].to_numpy()
    np.testing.assert_allclose(se, list(REF[case]["glmmTMB"]["fixef_se"].values()), rtol=1e-3)


def test_pev_includes_the_fixed_effects(fits):
    # glmm.R's pev_with_fixed: diagonal of the MME inverse at the mode's weights
    b = fits["cbpp_logit"].blups("herd")
    ref = REF["cbpp_logit"]["pev_with_fixed"]["herd"]
    np.testing.assert_allclose(b.loc[list(ref), "PEV"].to_numpy(), list(ref.values()), rtol=1e-4)
