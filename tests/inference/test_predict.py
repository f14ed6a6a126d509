"""Predicted values, their SEs, SEDs and pairwise tests against emmeans 1.8 with lmerTest/pbkrtest
df (tests/reference/inference.R -> inference.json: equal weights over the other fixed factors,
as predict.asreml's default averaging); Cullis' heritability against its dense definition."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sparsereml as sr

from .test_wald import MODELS, REF, _data

CASES = [(name, key) for name in ("splitplot", "alpha", "multisite") for key in REF[name]["emmeans"]]


@pytest.fixture(scope="module")
def fits():
    return {name: sr.fit(*MODELS[name], data=_data(name), control=sr.Control(tol=1e-9))
            for name in ("splitplot", "alpha", "multisite")}


@pytest.mark.parametrize("name,key", CASES)
def test_predictions_match_emmeans(fits, name, key):
    ref = REF[name]["emmeans"][key]
    cols = ref["level_columns"] if isinstance(ref["level_columns"], list) else [ref["level_columns"]]
    ddf = "kr" if key.endswith("kenward-roger") else "satterthwaite"
    pred = fits[name].predict(":".join(cols))
    table = pred.table.set_index(cols)
    keys = list(zip(*ref["levels"])) if len(cols) > 1 else [k for k in ref["levels"][0]]
    ours = table.loc[keys]
    np.testing.assert_allclose(ours["predicted.value"], ref["emmean"], rtol=1e-6)
    if ddf == "satterthwaite":  # emmeans' KR SEs use the adjusted covariance; predict's are C^-1's
        np.testing.assert_allclose(ours["std.error"], ref["SE"], rtol=1e-5)
    pairs = pred.pairs(ddf).set_index("contrast")
    ref_pairs = {k: np.atleast_1d(v).tolist() for k, v in ref["pairs"].items()}  # one pair: scalars
    names = [" ".join(c.split()) for c in ref_pairs["contrast"]]
    for c, est, se, df, p in zip(names, *(ref_pairs[k] for k in ("estimate", "SE", "df", "p.value"))):
        a, b = [x.strip() for x in c.split(" - ")]
        a, b = a.replace(" ", ":"), b.replace(" ", ":")
        row = pairs.loc[f"{a} - {b}"] if f"{a} - {b}" in pairs.index else None
        sign = 1.0
        if row is None:
            row, sign = pairs.loc[f"{b} - {a}"], -1.0
        assert sign * row["estimate"] == pytest.approx(est, rel=1e-5, abs=1e-7)
        assert row["std.error"] == pytest.approx(se, rel=1e-5)
        assert row["df"] == pytest.approx(df, rel=1e-4)
        assert row["p.value"] == pytest.approx(p, rel=1e-3, abs=1e-10)


def test_sed_summary_streams_over_blocks_of_cells(fits, monkeypatch):
    """Without the matrix the SED summary is gathered a block of cells at a time (24 cells in
    blocks of 5 here): it equals the summary of the whole matrix."""
    from sparsereml.inference import predict as predict_module

    whole = fits["alpha"].predict("gen").avsed
    monkeypatch.setattr(predict_module, "CHUNK", 5)
    pd.testing.assert_series_equal(fits["alpha"].predict("gen", sed=False).avsed, whole, rtol=1e-10)


def test_sed_avsed_and_lsd_agree(fits):
    pred = fits["alpha"].predict("gen")
    sed = pred.sed.to_numpy()
    off = ~np.isnan(sed)
    s = pred.avsed
    assert s["min"] == pytest.approx(sed[off].min()) and s["max"] == pytest.approx(sed[off].max())
    assert s["mean"] == pytest.approx(sed[off].mean()) and s["v.mean"] == pytest.approx((sed[off] ** 2).mean())
    assert pred.lsd(0.05, df=30)["mean"] == pytest.approx(stats.t.ppf(0.975, 30) * s["mean"], rel=1e-12)
    # the SED summary without the matrix (as for a table too large for it) is the same
    small = fits["alpha"].predict("gen", sed=False)
    pd.testing.assert_series_equal(small.avsed, s, rtol=1e-10)
    with pytest.raises(sr.ModelError, match="covariance is not formed"):
        small.sed


def test_blups_in_classify_and_cullis_heritability(backend):
    """Mother predictions on a small network: the fixed Trial effects averaged with equal weights
    plus each mother's BLUP; their PEV-based SEs; Cullis' H2 from its definition with dense C^-1."""
    df, _ = sr.datasets.trial_network(seed=11, trials=4, trees=3000, mothers=60)
    m = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", data=df, backend=backend)
    pred = m.predict("Mother")
    b = m.fixed["estimate"].to_numpy()
    u = m.blups("Mother")
    mean_trial = b[0] + b[1:].sum() / 4
    np.testing.assert_allclose(pred.table["predicted.value"], mean_trial + u["BLUP"].to_numpy(), rtol=1e-10)
    # dense check of SEs and of H2 = 1 - mean PEV of differences / (2 s2)
    prob = m.problem
    C = np.zeros((prob.mme.N, prob.mme.N))
    ev = m.result.evaluation
    prob.hold(ev)
    Cinv = prob.factor.solve(np.eye(prob.mme.N))
    off, q = prob.mme.offsets[1], 60
    k = np.zeros((q, prob.mme.N))
    k[:, 0] = 1.0
    k[:, 1:4] = 0.25
    k[np.arange(q), off + np.arange(q)] = 1.0
    np.testing.assert_allclose(pred.table["std.error"], np.sqrt(np.diag(k @ Cinv @ k.T)), rtol=1e-8)
    B = Cinv[off:off + q, off:off + q]
    d = np.diag(B)
    v = (d[:, None] + d[None, :] - 2 * B)[~np.eye(q, dtype=bool)].mean()
    assert m.heritability_cullis("Mother") == pytest.approx(1 - v / (2 * m.varcomp.loc["Mother", "component"]), rel=1e-10)
    del C


def test_unobserved_combinations_are_predicted_with_their_status():
    df, _ = sr.datasets.trial_network(seed=11, trials=4, trees=3000, mothers=60)
    t0, m0 = df["Trial"].cat.categories[0], df["Mother"].cat.categories[0]
    df = df[~((df["Trial"] == t0) & (df["Mother"] == m0))]
    m = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", data=df)
    t = m.predict("Trial:Mother", sed=False).table.set_index(["Trial", "Mother"])
    gone = t.loc[(str(t0), str(m0))]
    assert gone["status"] == "Trial:Mother not in the data"
    assert set(t["status"]) == {"estimated", "Trial:Mother not in the data"}
    # predicted from the trial's mean and the mother's BLUP, the absent effect's whole variance in its SE
    b = m.fixed["estimate"].to_numpy()
    u = m.blups("Mother")["BLUP"].to_numpy()
    assert gone["predicted.value"] == pytest.approx(b[0] + u[0], rel=1e-10)
    s2 = m.varcomp.loc["Trial:Mother", "component"]
    prob = m.problem
    k = np.zeros(prob.mme.N)
    k[0] = 1.0  # intercept; the first trial is the baseline
    k[prob.mme.offsets[1]] = 1.0  # the first mother's BLUP
    assert gone["std.error"] ** 2 == pytest.approx(k @ prob.factor.solve(k) + s2, rel=1e-9)


def test_bad_requests_are_refused(fits):
    m = fits["splitplot"]
    with pytest.raises(sr.ModelError, match="'c' is not a variable of the model"):
        m.predict("c")
    with pytest.raises(sr.ModelError, match="'a9' is not a level of 'a'"):
        m.predict("a", levels={"a": ["a1", "a9"]})
    with pytest.raises(sr.ModelError, match="present: 'rep' must be a fixed factor"):
        m.predict("a", present=["rep"])
    with pytest.raises(sr.ModelError, match="average: 'c' is not a fixed factor averaged over"):
        m.predict("a", average={"c": [1.0, 1.0]})
    with pytest.raises(sr.ModelError, match="adjust must be"):
        m.predict("a").pairs(adjust="tukey")
    with pytest.raises(sr.ModelError, match="ddf must be one of"):
        m.wald("kenward")


def test_average_weights_combine_the_cells(fits):
    m = fits["splitplot"]
    cells = m.predict("a:b")
    w = np.array([0.75, 0.25])
    pred = m.predict("a", average={"b": [3, 1]})
    V = cells.vcov.to_numpy()
    for i in range(3):
        rows = [2 * i, 2 * i + 1]  # (a_i, b1), (a_i, b2)
        est = w @ cells.table["predicted.value"].to_numpy()[rows]
        assert pred.table["predicted.value"][i] == pytest.approx(est, rel=1e-12)
        assert pred.table["std.error"][i] == pytest.approx(np.sqrt(w @ V[np.ix_(rows, rows)] @ w), rel=1e-10)
    with pytest.raises(sr.ModelError, match="average: 'b' needs 2 non-negative weights"):
        m.predict("a", average={"b": [1, 2, 3]})
    with pytest.raises(sr.ModelError, match="use: 'rep:b' is not a random term"):
        m.predict("a", use=["rep:b"])


def test_a_classify_factor_no_included_term_uses_is_refused():
    df, _ = sr.datasets.trial_network(seed=3, trials=4, trees=3000, mothers=60)
    m = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother", data=df)
    with pytest.raises(sr.ModelError, match="no fixed term and no random term inside classify uses 'Block'.*"
                                            "'Trial:Block'"):
        m.predict("Block")
    t = m.predict("Trial:Block", sed=False).table  # the whole term: its BLUPs are included
    seen = t[t["status"] == "estimated"]  # (blocks are nested in trials: other pairs are absent)
    assert seen["predicted.value"].nunique() == len(seen) > 4
