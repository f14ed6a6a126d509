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
