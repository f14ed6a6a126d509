"""A GLMM fit through the rest of the product: summary, written results, report, comparison,
command line (references for the numbers themselves: test_reference.py)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.cli import main
from tests.conftest import REFERENCE

DATA = REFERENCE / "glmm_progeny.csv"


@pytest.fixture(scope="module")
def progeny() -> pd.DataFrame:
    return pd.read_csv(DATA)


@pytest.fixture(scope="module")
def fits(progeny, backend):
    probit = sr.glmm.Binomial("probit")
    return {method: sr.fit("surv ~ Trial", "~ Trial:Block + Mother", data=progeny, family=probit, method=method,
                           backend=backend) for method in ("laplace", "pql")}


def test_summary_names_the_approximation_and_convergence(fits):
    text = fits["laplace"].summary()
    assert "binomial(probit); Laplace approximation" in text and "converged in" in text
    assert "(Laplace, constants included)" in text and "ASReml" not in text
    assert list(fits["laplace"].varcomp.index) == ["Trial:Block", "Mother"]  # no residual row
    pql = fits["pql"].summary()
    assert "PQL (REML on the working variate" in pql and "not a likelihood of the data" in pql and "AIC" not in pql


def test_iterations_and_fitted_values(fits, progeny):
    for m in fits.values():
        it = m.iterations
        assert len(it) == m.n_iterations + 1 and {"loglik", "Mother", "seconds"} <= set(it.columns)
        fitted = m.fitted
        assert fitted.between(0, 1).all() and len(fitted) == len(progeny)
        np.testing.assert_allclose(m.residuals, progeny["surv"] - fitted)
        np.testing.assert_allclose(fitted, m.family.inverse_link(m.linear_predictor.to_numpy()))


def test_latent_residual_in_functions(fits):
    m = fits["laplace"]
    h2 = sr.vpredict(m, {"h2": "4 * Mother / (Mother + `Trial:Block` + latent)"})
    vc = m.varcomp["component"]
    assert h2.loc["h2", "estimate"] == pytest.approx(4 * vc["Mother"] / (vc.sum() + 1.0))
    logit = sr.fit("surv ~ Trial", "~ Trial:Block + Mother", data=pd.read_csv(DATA), family="binomial")
    lat = sr.vpredict(logit, {"v": "latent"}).loc["v"]
    assert lat["estimate"] == pytest.approx(np.pi ** 2 / 3) and lat["std.error"] == 0
    obs = sr.glmm.observed_scale(h2, 0.5).loc["h2", "estimate"]
    # Dempster-Lerner at incidence 1/2: z^2 / (p (1 - p)) = (1 / (2 pi)) / (1 / 4) = 2 / pi
    assert obs == pytest.approx(h2.loc["h2", "estimate"] * 2 / np.pi)


def test_written_results_and_report(fits, tmp_path):
    m = fits["laplace"]
    res = sr.FitResults.from_model(m, predictions=[m.predict("Trial", scale="response")])
    res.write(tmp_path / "res", records=True)
    info = json.loads((tmp_path / "res" / "fit.json").read_text())
    assert info["likelihood"] == "Laplace" and info["family"] == "binomial" and info["link"] == "probit"
    assert info["loglik_asreml"] is None and info["residual"] == "binomial(probit)"
    back = sr.FitResults.read(tmp_path / "res")
    assert back.likelihood == "Laplace"
    pd.testing.assert_frame_equal(back.varcomp, m.varcomp, check_exact=False, rtol=1e-12)
    for name, fit in fits.items():
        fit.report(tmp_path / f"{name}.html")
        page = (tmp_path / f"{name}.html").read_text()
        kind = "Laplace" if name == "laplace" else "PQL"
        assert f"{kind} log-likelihood and parameters by iteration" in page


def test_comparison_of_laplace_fits(progeny, fits):
    small = sr.fit("surv ~ Trial", "~ Mother", data=progeny, family=sr.glmm.Binomial("probit"))
    t = sr.lrt(small, fits["laplace"])
    assert t.df == 1 and t.statistic == pytest.approx(2 * (fits["laplace"].loglik - small.loglik))
    table = sr.compare([small, fits["laplace"]]).table
    assert table["AIC"].iloc[1] == pytest.approx(fits["laplace"].aic)


def test_command_line(tmp_path, capsys):
    code = main(["fit", str(DATA), "--fixed", "surv ~ Trial", "--random", "~ Trial:Block + Mother", "--family",
                 "binomial", "--link", "probit", "--predict", "Trial", "--scale", "response", "--function",
                 "h2=4*Mother/(Mother+`Trial:Block`+latent)", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    assert "Laplace approximation" in text and "link.value" in text
    pred = pd.read_csv(tmp_path / "out" / "predictions_Trial.csv")
    assert pred["predicted.value"].between(0, 1).all()


def test_command_line_refusals(capsys):
    base = ["fit", str(DATA), "--fixed", "surv ~ Trial", "--random", "~ Trial:Block + Mother", "--quiet"]
    assert main(base + ["--method", "pql"]) != 0
    assert "--method is for GLMMs" in capsys.readouterr().err
    assert main(base + ["--family", "binomial", "--function", "h2=4*Mothr/(Mother+latent)"]) != 0
    assert "'Mothr'" in capsys.readouterr().err


def test_demo_fits_survival_beside_dbh():
    from sparsereml.demo import fit_survival

    lines = []
    m = fit_survival(dict(seed=5, trials=4, trees=6000, mothers=60), None, say=lambda *a: lines.append(" ".join(map(str, a))))
    assert m.method == "laplace" and m.family.link == "probit"
    text = "\n".join(lines)
    assert "planted trees" in text and "h2 of survival: liability scale" in text and "truth" in text
