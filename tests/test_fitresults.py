"""FitResults: the written form of a fit, read back with the same tables, records and summary."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.errors import ModelError
from sparsereml.fitresults import FitResults
from sparsereml.plots.spatial import variogram

from .structures.test_residual_mme import field


@pytest.fixture(scope="module")
def network():
    df, _ = sr.datasets.trial_network(seed=5, trials=4, trees=3000, mothers=60)
    m1 = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother", data=df)
    m2 = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother", "~ at(Trial):units", data=df)
    return m1, m2


@pytest.fixture(scope="module")
def spatial():
    return sr.fit("y ~ trial", random="~ gen", residual="~ at(trial):ar1(row):ar1(col)", data=field())


def _round_trip(m, tmp_path, **kw) -> tuple[FitResults, FitResults]:
    res = FitResults.from_model(m, **kw)
    res.write(tmp_path)
    return res, FitResults.read(tmp_path)


def test_tables_and_summary_survive_the_files(network, tmp_path):
    m = network[1]
    res, back = _round_trip(m, tmp_path, wald=m.wald("none"), predictions=[m.predict("Trial", sed=False)],
                            functions={"h2": "4 * Mother / (Mother + `at(Trial, 1):units`)"})
    assert back.summary() == m.summary(n_fixed=10**9)  # the summary's sections, word for word
    pd.testing.assert_frame_equal(back.varcomp, m.varcomp, check_index_type=False)
    assert back.fixed["estimate"].to_numpy() == pytest.approx(m.fixed["estimate"].to_numpy(), rel=0, abs=0)
    for term in m.random_terms:
        assert back.blups(term)["PEV"].to_numpy().tolist() == m.blups(term)["PEV"].to_numpy().tolist()
        assert list(back.blups(term).index) == [str(v) for v in m.blups(term).index]
    rec = back.records
    assert rec["fitted"].to_numpy().tolist() == m.fitted.to_numpy().tolist()
    assert rec["residual"].to_numpy().tolist() == m.residuals.to_numpy().tolist()
    assert (back.loglik, back.aic, back.n_iterations, back.labels) == (m.loglik, m.aic, m.n_iterations, m.labels)
    assert back.wald["F.inc"].tolist() == pytest.approx(res.wald["F.inc"].tolist(), rel=1e-15)
    assert back.predictions["Trial"]["predicted.value"].tolist() == res.predictions["Trial"]["predicted.value"].tolist()
    assert back.functions.loc["h2", "estimate"] == res.functions.loc["h2", "estimate"]
    assert back.intervals["upper"].tolist() == pytest.approx(m.confint()["upper"].tolist(), rel=1e-15)
    doc = json.loads((tmp_path / "fit.json").read_text())  # strict JSON: no NaN
    assert doc["nobs"] == m.nobs and doc["files"]["records"] == "records.csv"


def test_compare_and_lrt_take_results_read_back(network, tmp_path):
    m1, m2 = network
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    r1 = _round_trip(m1, tmp_path / "a")[1]
    r2 = _round_trip(m2, tmp_path / "b")[1]
    want = sr.compare(m1, m2, names=["m1", "m2"]).table
    got = sr.compare(r1, r2, names=["m1", "m2"]).table
    pd.testing.assert_frame_equal(got, want)
    assert sr.lrt(r1, r2).statistic == sr.lrt(m1, m2).statistic


def test_grids_and_spatial_plots_from_results(spatial, tmp_path):
    back = _round_trip(spatial, tmp_path)[1]
    assert set(back.grids) == {"at(trial, A):units", "at(trial, B):units"}
    for group in ("A", "at(trial, B):units"):
        _, want = variogram(spatial, group)
        _, got = variogram(back, group)
        pd.testing.assert_frame_equal(got, want)
    with pytest.raises(ModelError, match="choose one with group="):
        variogram(back)


def test_results_refuse_what_they_do_not_hold(network, tmp_path):
    with pytest.raises(ModelError, match="holds no fit.json"):
        FitResults.read(tmp_path)
    (tmp_path / "fit.json").write_text('{"format": "something else"}')
    with pytest.raises(ModelError, match="another version"):
        FitResults.read(tmp_path)
    _round_trip(network[0], tmp_path)
    (tmp_path / "varcomp.csv").unlink()
    with pytest.raises(ModelError, match="varcomp.csv' is missing"):
        FitResults.read(tmp_path)
    back = FitResults.from_model(network[0])
    with pytest.raises(ModelError, match="no two-dimensional grid"):
        variogram(back)
    with pytest.raises(sr.errors.UnknownName, match="not a random term"):
        back.blups("Father")


def test_multivariate_results_have_no_records_and_say_why():
    df, _ = sr.datasets.trial_network(seed=5, trials=3, trees=1800, mothers=60)
    df = df.assign(h=df.dbh * 0.5 + np.random.default_rng(1).normal(size=len(df)))
    m = sr.fit("cbind(dbh, h) ~ trait + trait:Trial", "~ us(trait):Mother", "~ units:us(trait)", data=df)
    res = FitResults.from_model(m)
    assert res.records is None
    with pytest.raises(ModelError, match="several"):
        sr.plots.residuals(res)
