"""CHOLMOD and QDLDL give the same fits (the suite also runs whole under each backend)."""
import pytest

import sparsereml as sr
from sparsereml.datasets import trial_network
from sparsereml.linalg import available_backends


@pytest.mark.skipif(len(available_backends()) < 2, reason="needs both CHOLMOD and qdldl installed")
def test_cholmod_and_qdldl_agree():
    df, _ = trial_network(seed=21, trials=7, trees=15000, mothers=120)
    fits = [sr.fit("dbh ~ Trial", "~ at(Trial):Block + Mother + Trial:Mother", "~ at(Trial):units", data=df,
                   backend=b) for b in ("cholmod", "qdldl")]
    a, b = fits
    assert a.backend == "cholmod" and b.backend == "qdldl"
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
    assert a.varcomp["component"].to_numpy() == pytest.approx(b.varcomp["component"].to_numpy(), rel=1e-8)
    assert a.blups("Mother")["PEV"].to_numpy() == pytest.approx(b.blups("Mother")["PEV"].to_numpy(), rel=1e-8)
