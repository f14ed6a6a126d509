"""sparsereml.datasets reproduces the project's reference simulator number for number.

Fingerprints below were computed on 2026-11-26 from the files written by the lead's
``shared/data/simulate_trees.py`` (sha256 2e7bd553...e5b) with
``--out DIR`` (defaults) and ``--seed 7 --trials 8 --trees 20000 --mothers 160 --spatial``.
"""
import hashlib

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr

from sparsereml.datasets import simulate_trees, trial_network

FINGERPRINTS = {
    # args: (rows, missing dbh, sum dbh, sum Mother, sum Father, sum Row, sum Col, sum Block, pedigree sha256[:16],
    #        first residual variances, first block variances, first rho_row)
    "default": (dict(), (198136, 5977, 41518319.5, 108993530, 240898, 8968397, 9049974, 2540058,
                         "88e9ba3662d0dbdd", [697.5348, 796.1805, 1052.8516], [92.9415, 155.8922], [])),
    "small_spatial": (dict(seed=7, trials=8, trees=20000, mothers=160, spatial=True),
                      (19996, 600, 4178461.4, 1651489, 23159, 555087, 562212, 226814, "7c6635fbbd5605f8",
                       [1105.3696, 676.1921, 621.5482], [18.7212, 47.2726], [0.2642, 0.4874])),
}


@pytest.mark.parametrize("case", list(FINGERPRINTS))
def test_same_output_as_the_reference_simulator(case):
    args, expect = FINGERPRINTS[case]
    trees, ped, truth = simulate_trees(**args)
    got = (len(trees), int(trees.dbh.isna().sum()), round(float(trees.dbh.sum()), 1), int(trees.Mother.sum()),
           int(trees.Father.sum()), int(trees.Row.sum()), int(trees.Col.sum()), int(trees.Block.sum()),
           hashlib.sha256(ped.to_csv(index=False).encode()).hexdigest()[:16],
           truth["resid_var"][:3], truth["block_var"][:2], truth["rho_row"][:2])
    assert got == expect


def test_trial_network_is_half_sib_trees_with_factors():
    df, truth = trial_network(seed=3, trials=5, trees=8000, mothers=80)
    assert (df.Father == 0).all() and df.dbh.notna().all()
    assert all(str(df[c].dtype) == "category" for c in ("Trial", "Block", "Mother"))
    assert len(truth["resid_var"]) == 5 and np.isfinite(df.dbh).all()


@pytest.mark.parametrize("kw, name", [({"mothers": 40}, "mothers=40"), ({"trials": 0}, "trials=0"),
                                      ({"trees": 2.5}, "trees=2.5")])
def test_sizes_the_simulation_cannot_draw_are_refused_by_name(kw, name):
    with pytest.raises(sr.DataError, match=name):
        sr.datasets.trial_network(**kw)


def test_all_families_keep_the_half_sibs_and_add_crosses_and_clones():
    half, _ = trial_network(seed=5, trials=6, trees=30000, mothers=150)
    full, truth = trial_network(seed=5, trials=6, trees=30000, mothers=150, families="all")
    hs = full[full.Type == "half-sib"].drop(columns=["Type", "Clone"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(hs, half)  # the half-sibs, number for number
    fs, cl = full[full.Type == "full-sib"], full[full.Type == "clone"]
    assert len(fs) > 500 and len(cl) > 300 and (fs.Father > 0).all() and (fs.Father != fs.Mother.astype(int)).all()
    assert cl.groupby("Clone").size().eq(3).all()  # three ramets per clone
    assert cl.groupby("Clone")[["Mother", "Father"]].nunique().eq(1).all().all()  # one family per clone
    assert not full.duplicated(["Trial", "Row", "Col"]).any()  # every tree its own cell
    assert truth["sigma2_gca"] == truth["sigma2_mother"] and truth["sigma2_sca"] > 0 and truth["sigma2_clone"] > 0
    with pytest.raises(sr.DataError, match="families='some'"):
        trial_network(families="some")


# --- the default networks stay as they were; survival=True (issue 18, item 5) ---------------------

def _frame_fingerprint(df: pd.DataFrame, truth: dict) -> tuple:
    import json

    return (len(df), round(float(df.dbh.sum()), 1), round(float((df.dbh**2).sum()), 1), int(df.Tree.sum()),
            hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()[:16],
            hashlib.sha256(json.dumps(truth, sort_keys=True).encode()).hexdigest()[:16])


# Taken from commit ea44407 (before survival= existed): rows, sum dbh, sum dbh^2, sum Tree, sha256[:16] of
# the frame's CSV and of the truth's JSON.  "demo" and "demo_all" are the networks `sparsereml demo
# --trials 5 --trees 6000 --mothers 80` (and --trees 8000 --families all) simulates.
UNCHANGED = {
    "default": (dict(), (184413, 39847021.4, 9371305828.0, 18265814288, "5201d766d1b8abb8", "a1a0353257ee3cbf")),
    "small": (dict(seed=5, trials=6, trees=30000, mothers=150),
              (27927, 6999647.7, 1838158852.1, 419482838, "5d38d94eea17bced", "6ffa2e572a1c3711")),
    "small_all": (dict(seed=5, trials=6, trees=30000, mothers=150, families="all"),
                  (30111, 7536483.2, 1977589141.9, 487382306, "19ea7eae454fe952", "25954f96e144685a")),
    "demo": (dict(trials=5, trees=6000, mothers=80),
             (5680, 1435876.2, 370907897.1, 17289214, "a76ac2cc2fb4236e", "c75d607302f15f59")),
    "demo_all": (dict(trials=5, trees=8000, mothers=80, families="all"),
                 (8333, 2111627.7, 547220124.3, 37197214, "5c5da66f75472a69", "a97837e91f7cbe7d")),
}


@pytest.mark.parametrize("case", list(UNCHANGED))
def test_default_networks_are_those_of_before_survival(case):
    args, expect = UNCHANGED[case]
    assert _frame_fingerprint(*trial_network(**args)) == expect
    assert _frame_fingerprint(*trial_network(**args, survival=False)) == expect


@pytest.mark.parametrize("families, case", [("half", "demo"), ("all", "demo_all")])
def test_the_demo_simulates_the_network_it_always_did(monkeypatch, families, case):
    """Whatever the size, run_demo asks trial_network for the default network (no survival=), so what
    it fits is unchanged; checked at the sizes of the fingerprints above."""
    from sparsereml import demo

    asked = []

    class Stop(Exception):
        pass

    def capture(**kw):
        asked.append(kw)
        raise Stop

    monkeypatch.setattr(demo, "trial_network", capture)
    args = UNCHANGED[case][0]
    with pytest.raises(Stop):
        demo.run_demo(trials=args["trials"], trees=args["trees"], mothers=args["mothers"], families=families,
                      say=lambda *a: None)
    assert asked == [{k: v for k, v in args.items()} | {"families": families}]
    assert _frame_fingerprint(*trial_network(**asked[0])) == UNCHANGED[case][1]


@pytest.fixture(scope="module")
def survival_net():
    """The default-size network and its survival version (half-sibs only, and all families)."""
    return {fam: (trial_network(families=fam), trial_network(families=fam, survival=True))
            for fam in ("half", "all")}


def _conditional_probability(df: pd.DataFrame, s: dict) -> np.ndarray:
    """Each tree's probability of living given the realised effects in truth["survival"] (residual N(0, 1))."""
    from scipy.special import ndtr

    t, b = df.Trial.astype(int).to_numpy(), df.Block.astype(int).to_numpy()
    m, f = df.Mother.astype(int).to_numpy(), df.Father.to_numpy()
    mean = (np.array(s["threshold"])[t - 1] + np.array([s["block_effect"][f"{i}:{j}"] for i, j in zip(t, b)])
            + np.array([s["mother_effect"][f"M{i}"] + s["trial_mother_effect"][f"{j}:{i}"] for i, j in zip(m, t)]))
    cross = f > 0
    mean[cross] += [s["mother_effect"][f"M{i}"] + s["trial_mother_effect"][f"{j}:{i}"]
                    for i, j in zip(f[cross], t[cross])]
    return ndtr(mean)


def test_survival_keeps_every_planted_tree_and_the_living_trees_dbh(survival_net):
    (default, _), (surv, truth) = survival_net["half"]
    planted, _, _ = simulate_trees()
    assert surv.Tree.tolist() == planted.Tree[planted.Father == 0].tolist()  # dead trees are rows
    assert surv.survival.dtype == np.int64 and set(surv.survival.unique()) == {0, 1}
    assert (surv.dbh.isna() == (surv.survival == 0)).all()  # missing dbh exactly for the dead
    assert list(surv.columns) == list(default.columns) + ["survival"]
    both = default.merge(surv, on="Tree", suffixes=("", "_s"))
    assert len(both) == len(default)
    alive = both.survival == 1
    assert (both.dbh[alive] == both.dbh_s[alive]).all() and both.dbh_s[~alive].isna().all()
    # the default's 3% dead at random are planted trees here, alive or dead by their liability
    extra = surv[~surv.Tree.isin(default.Tree)]
    assert len(extra) == len(surv) - len(default) > 0 and extra.dbh.notna().sum() > 0
    assert truth["survival"]["n_dead"] == int((surv.survival == 0).sum())
    for key in ("trial_mean", "resid_var", "block_var", "mother_effect", "trial_mother_effect"):
        assert truth[key] == survival_net["half"][0][1][key]  # dbh's truth untouched


def test_survival_rates_per_trial_follow_the_liability(survival_net):
    from sparsereml.datasets_survival import SURVIVAL_RATES, expected_rate

    _, (surv, truth) = survival_net["half"]
    s = truth["survival"]
    lo, hi = SURVIVAL_RATES
    assert all(lo <= p <= hi for p in s["target_rate"]) and len(s["threshold"]) == 31
    n = surv.groupby("Trial", observed=True).size().to_numpy()
    rate = surv.groupby("Trial", observed=True).survival.mean().to_numpy()
    assert np.allclose(rate, s["rate"]) and 0.45 < rate.min() and rate.max() < 0.995
    # given the realised effects, the trees live independently: within 3 binomial SEs
    p = pd.Series(_conditional_probability(surv, s), index=surv.index).groupby(surv.Trial, observed=True)
    expect, var = p.mean().to_numpy(), p.apply(lambda q: (q * (1 - q)).sum()).to_numpy() / n**2
    assert (np.abs(rate - expect) < 3 * np.sqrt(var)).all()
    # over the random effects: Phi(threshold / sqrt(V)), the SE adding the sampling of the trial's
    # block, mother and Trial:Mother effects to the binomial one
    V = s["total_var"]
    assert V == pytest.approx(s["sigma2_block"] + s["sigma2_mother"] + s["sigma2_trial_mother"] + s["resid_var"])
    marginal = np.array([expected_rate(c, V) for c in s["threshold"]])
    assert np.allclose(marginal, s["target_rate"])
    slope = np.exp(-0.5 * np.array(s["threshold"]) ** 2 / V) / np.sqrt(2 * np.pi * V)  # d rate / d mean liability
    g = surv.groupby("Trial", observed=True)
    share2 = lambda col: g[col].apply(lambda x: (x.value_counts(normalize=True) ** 2).sum()).to_numpy()
    effects_var = s["sigma2_block"] * share2("Block") + (s["sigma2_mother"] + s["sigma2_trial_mother"]) * share2("Mother")
    se = np.sqrt(marginal * (1 - marginal) / n + slope**2 * effects_var)
    assert (np.abs(rate - marginal) < 3 * se).all()


def test_survival_liability_variances_and_genetic_correlation(survival_net):
    _, (_, truth) = survival_net["half"]
    s = truth["survival"]
    mother = np.array(list(s["mother_effect"].values()))
    dbh_mother = np.array([truth["mother_effect"][k] for k in s["mother_effect"]])
    assert len(mother) == 1100
    assert np.var(mother, ddof=1) == pytest.approx(s["sigma2_mother"], rel=0.2)
    assert np.var(list(s["trial_mother_effect"].values()), ddof=1) == pytest.approx(s["sigma2_trial_mother"], rel=0.1)
    assert np.var(list(s["block_effect"].values()), ddof=1) == pytest.approx(s["sigma2_block"], rel=0.2)
    assert s["trial_mother_effect"].keys() == truth["trial_mother_effect"].keys()
    assert np.corrcoef(mother, dbh_mother)[0, 1] == pytest.approx(s["genetic_correlation"], abs=0.1)


def test_survival_with_all_families(survival_net):
    (default_all, _), (surv_all, truth) = survival_net["all"]
    _, (surv_half, _) = survival_net["half"]
    hs = surv_all[surv_all.Type == "half-sib"].drop(columns=["Type", "Clone"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(hs, surv_half)  # the half-sibs live or die as without the crosses
    added, before = (d[d.Type != "half-sib"].reset_index(drop=True) for d in (surv_all, default_all))
    pd.testing.assert_frame_equal(added.drop(columns=["dbh", "survival"]), before.drop(columns="dbh"))
    alive = added.survival == 1
    assert (added.dbh[alive] == before.dbh[alive]).all() and added.dbh[~alive].isna().all()
    assert 0 < (added.survival == 0).sum() < len(added)
    assert not surv_all.duplicated(["Trial", "Row", "Col"]).any() and not surv_all.Tree.duplicated().any()
    # crosses carry both parents' liability effects
    s = truth["survival"]
    p = _conditional_probability(added, s)
    assert abs(added.survival.mean() - p.mean()) < 3 * np.sqrt((p * (1 - p)).sum()) / len(p)


def test_survival_is_a_bool():
    with pytest.raises(sr.DataError, match="survival='yes'"):
        trial_network(trials=3, trees=2000, mothers=60, survival="yes")
