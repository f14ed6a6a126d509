"""GLMM predictions on the link and response scales against emmeans on glmmTMB fits
(tests/reference/glmm_emmeans.R -> glmm_emmeans.json)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.errors import ModelError
from tests.conftest import REFERENCE, reference

REF = reference("glmm_emmeans.json")


@pytest.fixture(scope="module")
def fits(backend):
    cbpp = pd.read_csv(REFERENCE / "glmm_cbpp.csv").astype({"herd": str, "period": str})
    prog = pd.read_csv(REFERENCE / "glmm_progeny.csv")
    return {"cbpp_logit": (sr.fit("cbind(incidence, size - incidence) ~ period", "~ herd", data=cbpp,
                                  family="binomial", backend=backend), "period"),
            "progeny_probit": (sr.fit("surv ~ Trial", "~ Trial:Block + Mother", data=prog,
                                      family=sr.glmm.Binomial("probit"), backend=backend), "Trial")}


# emmeans on glmmTMB: glmmTMB stops up to 1.1e-4 (relative) short of the optimum on progeny
# (glmm.json, laplace_check), which moves its predictions by as much
@pytest.mark.parametrize("case", ["cbpp_logit", "progeny_probit"])
def test_link_scale_equals_emmeans(fits, case):
    m, classify = fits[case]
    ref = REF[case]
    t = m.predict(classify).table
    np.testing.assert_allclose(t["predicted.value"], ref["link"], rtol=3e-4)
    np.testing.assert_allclose(t["std.error"], ref["link_se"], rtol=1e-3)


@pytest.mark.parametrize("case", ["cbpp_logit", "progeny_probit"])
def test_response_scale_equals_emmeans(fits, case):
    m, classify = fits[case]
    ref = REF[case]
    p = m.predict(classify, scale="response")
    np.testing.assert_allclose(p.table["predicted.value"], ref["response"], rtol=3e-4)
    np.testing.assert_allclose(p.table["std.error"], ref["response_se"], rtol=1e-3)
    pairs = p.pairs()
    np.testing.assert_allclose(pairs["estimate"], ref["pairs"]["estimate"], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(pairs["std.error"], ref["pairs"]["se"], rtol=1e-3)
    assert np.all(np.isinf(pairs["df"]))


def test_response_scale_is_the_inverse_link_of_the_link_scale(fits):
    m, classify = fits["progeny_probit"]
    link = m.predict(classify).table
    resp = m.predict(classify, scale="response").table
    np.testing.assert_allclose(resp["predicted.value"], m.family.inverse_link(link["predicted.value"].to_numpy()))
    np.testing.assert_allclose(resp["link.value"], link["predicted.value"])


def test_bad_scale_and_ddf(fits):
    m, classify = fits["cbpp_logit"]
    with pytest.raises(ModelError, match="scale must be 'link' or 'response'"):
        m.predict(classify, scale="probability")
    with pytest.raises(ModelError, match="z tests"):
        m.predict(classify).pairs(ddf="kr")
