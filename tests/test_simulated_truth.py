"""Simulated truth: the default network (184,413 trees, sparsereml.datasets, seed 2011) and 20
smaller replicates, against the variances the simulator used (truth.json's contents).

Block variances are estimated from 6 to 40 blocks per trial, so their sampling distribution is
skewed (about sigma^2 chi2_{k-1}/(k-1)); they are checked on the log scale, where the Wald
interval is well calibrated, and against the realized variance of the simulated block effects.
"""
import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.datasets import trial_network

RANDOM = {"m2": "~ Trial:Block + Mother + Trial:Mother", "m2b": "~ Trial:Block + Mother + Trial:Mother",
          "m2c": "~ at(Trial):Block + Mother + Trial:Mother"}
RESIDUAL = {"m2": None, "m2b": "~ at(Trial):units", "m2c": "~ at(Trial):units"}


def truths(truth: dict) -> dict:
    out = {"Mother": truth["sigma2_mother"], "Trial:Mother": truth["sigma2_trial_mother"]}
    for t, (b, r) in enumerate(zip(truth["block_var"], truth["resid_var"]), start=1):
        out[f"at(Trial, {t}):Block"] = b
        out[f"at(Trial, {t}):units"] = r
    return out


@pytest.fixture(scope="module")
def network():
    return trial_network()


@pytest.mark.parametrize("model", ["m2", "m2b", "m2c"])
def test_default_network_components_within_3_se_of_truth(model, network, backend):
    df, truth = network
    m = sr.fit("dbh ~ Trial", RANDOM[model], RESIDUAL[model], data=df, backend=backend)
    assert m.converged and m.nobs == 184_413
    vc = m.varcomp
    checked = 0
    for label, value in truths(truth).items():
        if label not in vc.index:
            continue
        est, se = vc.loc[label, "component"], vc.loc[label, "std.error"]
        if label.endswith(":Block"):
            assert abs(np.log(est / value)) <= 3 * se / est, label
            t = int(label.split(",")[1].split(")")[0])
            effects = [truth["block_effect"][f"{t}:{j}"] for j in range(1, truth["n_blocks"][t - 1] + 1)]
            assert abs(est - np.var(effects, ddof=1)) <= 3 * se, label
        else:
            assert abs(est - value) <= 3 * se, label
        checked += 1
    assert checked == {"m2": 2, "m2b": 33, "m2c": 64}[model]


def test_standard_errors_match_the_spread_over_20_replicates(backend):
    """20 networks of 8 trials (about 18,600 trees each, seeds 1-20) fitted with m2c.  For Mother
    and Trial:Mother (the same truth in every replicate) the mean standard error agrees within
    20% with the standard deviation of the 20 estimates (that SD itself has about 16% sampling
    error); over all 360 components the z-scores (estimate - truth) / SE have SD within 20% of 1."""
    rows = []
    for seed in range(1, 21):
        df, truth = trial_network(seed=seed, trials=8, trees=20000, mothers=160)
        m = sr.fit("dbh ~ Trial", RANDOM["m2c"], RESIDUAL["m2c"], data=df, backend=backend)
        for label, value in truths(truth).items():
            if label in m.varcomp.index:
                rows.append((seed, label, *m.varcomp.loc[label, ["component", "std.error"]], value))
    r = pd.DataFrame(rows, columns=["seed", "term", "est", "se", "truth"])
    assert len(r) == 20 * 18
    for term in ("Mother", "Trial:Mother"):
        s = r[r.term == term]
        assert s.se.mean() == pytest.approx(s.est.std(ddof=1), rel=0.2), term
        assert s.est.mean() == pytest.approx(s.truth.iloc[0], rel=0.1), term
    z = ((r.est - r.truth) / r.se).dropna()  # components held on the boundary have no SE
    assert len(z) >= 340
    assert 0.8 <= z.std(ddof=1) <= 1.2


def test_all_families_recover_gca_sca_and_clone_variances(backend):
    # trial_network(families="all"): half-sib, full-sib and clonal trees with known GCA (the
    # mothers' variance), Trial x parent, SCA and clone variances; one analysis of them all
    df, truth = trial_network(seed=31, trials=10, trees=60000, mothers=300, families="all")
    m = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother + and(Father) + Trial:Mother + and(Trial:Father)"
               " + sca(Mother, Father) + at(Type, clone):Clone", "~ at(Trial):units", data=df, backend=backend)
    vc = m.varcomp
    want = {"Mother": truth["sigma2_gca"], "Trial:Mother": truth["sigma2_trial_mother"],
            "sca(Mother, Father)": truth["sigma2_sca"], "at(Type, clone):Clone": truth["sigma2_clone"]}
    for label, value in want.items():
        est, se = vc.loc[label, "component"], vc.loc[label, "std.error"]
        assert abs(est - value) < 3 * se, (label, est, se, value)
    for t, r in enumerate(truth["resid_var"], start=1):
        est, se = vc.loc[f"at(Trial, {t}):units", ["component", "std.error"]]
        assert abs(est - r) < 3.5 * se, (t, est, se, r)
    # genetic parameters of a tree in trial 1 (vpredict, delta-method SEs) against the truth
    g, tm, sca, cl = "Mother", "`Trial:Mother`", "`sca(Mother, Father)`", "`at(Type, clone):Clone`"
    p = f"(2 * {g} + 2 * {tm} + {sca} + `at(Trial, 1):units`)"
    funcs = {"h2": f"4 * {g} / {p}", "d2": f"4 * {sca} / {p}",
             "H2": f"(2 * {g} + {sca} + {cl}) / ({cl} + {p})"}
    tg, ttm, ts, tc = (truth[k] for k in ("sigma2_gca", "sigma2_trial_mother", "sigma2_sca", "sigma2_clone"))
    te = truth["resid_var"][0]
    tp = 2 * tg + 2 * ttm + ts + te
    want = {"h2": 4 * tg / tp, "d2": 4 * ts / tp, "H2": (2 * tg + ts + tc) / (tc + tp)}
    got = m.vpredict(funcs)
    for name, value in want.items():
        est, se = got.loc[name, ["estimate", "std.error"]]
        assert abs(est - value) < 3 * se, (name, est, se, value)


def test_tree_model_with_full_sib_and_clonal_individuals(backend):
    # the individual-tree model on a pedigree holding every genotype: a half-sib tree (dam its
    # mother), a full-sib tree (both parents), a clone (one individual, its ramets several records);
    # GCA = A/4 in the simulation, so the additive variance is 4 x sigma2_gca
    trees, truth = trial_network(seed=31, trials=10, trees=60000, mothers=300, families="all")
    trees = trees.assign(Genotype=np.where(trees.Type == "clone", trees.Clone, "T" + trees.Tree.astype(str)))
    ped = sr.Pedigree(trees, id="Genotype", sire="Father", dam="Mother")  # from the records: parents as founders
    m = sr.fit("dbh ~ Trial", "~ Trial:Block + vm(Genotype, ped) + Trial:Mother + and(Trial:Father)"
               " + sca(Mother, Father)", "~ at(Trial):units", data=trees, matrices={"ped": ped},
               backend=backend)
    est, se = m.varcomp.loc["vm(Genotype, ped)", ["component", "std.error"]]
    assert abs(est - 4 * truth["sigma2_gca"]) < 3 * se, (est, se)
    assert m.varcomp.loc["vm(Genotype, ped)", "bound"] == "P" and len(m.blups("vm(Genotype, ped)")) == len(ped.ids)
    bad = trees.copy()
    ramet = bad.index[bad.Type == "clone"][0]
    bad.loc[ramet, "Father"] = 999  # one ramet of a clone in another family
    with pytest.raises(sr.DataError, match=f"id '{bad.Genotype[ramet]}' appears with different parents"):
        sr.Pedigree(bad, id="Genotype", sire="Father", dam="Mother")
