"""Terms that change only G (at() random terms, vm() pedigree terms, correlated structures diag,
us, fa, corgh) fitted to Parquet partitions give the fit of the same records in memory (the
reference): the cells of the data pass hold every record's row of W for them."""
import os

import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.datasets import simulate_trees
from sparsereml.demo import MODELS

from .common import assert_same_fit

SIZE = dict(seed=3, trials=7, trees=9000, mothers=80)
THREE = dict(seed=5, trials=3, trees=15000, mothers=150)


def _written(out, size: dict, partitions: int = 3):
    files, _ = sr.datasets.trial_network(**size, out=out, partitions=partitions)
    return out, pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """The network as three Parquet files of whole trials, and its records in memory."""
    return _written(tmp_path_factory.mktemp("net"), SIZE)


def _pedigree(size: dict) -> sr.Pedigree:
    """The network's pedigree (mothers related through grandparents), its mothers named as in
    the Mother column ('13', not 'M13')."""
    _, ped_df, _ = simulate_trees(**size)
    for c in ("id", "sire", "dam"):
        ped_df[c] = ped_df[c].astype(str).str.replace(r"^M", "", regex=True)
    return sr.Pedigree(ped_df)


@pytest.fixture(scope="module")
def ped():
    return _pedigree(SIZE)


def test_at_random_terms_m2c_on_both_schedulers(network, scheduler):
    out, df = network
    fixed, random, residual = MODELS["m2c"]
    assert_same_fit(sr.fit(fixed, random, residual, data=df), sr.fit(fixed, random, residual, data=out,
                                                                    scheduler=scheduler))


def test_a_pedigree_term_on_both_schedulers(network, ped, scheduler):
    out, df = network
    random = "~ Trial:Block + vm(Mother, ped) + Trial:Mother"
    ref = sr.fit("dbh ~ Trial", random, "~ at(Trial):units", data=df, matrices={"ped": ped})
    m = sr.fit("dbh ~ Trial", random, "~ at(Trial):units", data=out, matrices={"ped": ped}, scheduler=scheduler)
    assert_same_fit(ref, m)
    assert m.varcomp.loc["vm(Mother, ped)", "component"] > 0
    bv, bv_ref = m.breeding_values("vm(Mother, ped)"), ref.breeding_values("vm(Mother, ped)")
    assert len(bv) == len(bv_ref) > df["Mother"].nunique()  # the grandparents too
    cols = ["BLUP", "PEV"]  # accuracy is sqrt(1 - PEV / s2): a grandparent's 0 may come out as sqrt(2e-16)
    pd.testing.assert_frame_equal(bv[cols], bv_ref[cols], rtol=1e-6, atol=1e-8)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three trials whose correlations REML puts inside the cone: on its edge (7 trials of the
    small network) the iterations' end depends on the last digits of the start, in memory too."""
    return _written(tmp_path_factory.mktemp("three"), THREE)


@pytest.mark.parametrize("random", ["~ Trial:Block + Mother + diag(Trial):Mother", "~ Trial:Block + us(Trial):Mother",
                                    "~ Trial:Block + fa(Trial, 1):Mother", "~ Trial:Block + corgh(Trial):Mother"])
def test_correlated_structures(three, random):
    out, df = three
    ref = sr.fit("dbh ~ Trial", random, "~ at(Trial):units", data=df)
    assert_same_fit(ref, sr.fit("dbh ~ Trial", random, "~ at(Trial):units", data=os.fspath(out)))


def test_a_correlated_structure_on_a_pedigree_term(three):
    out, df = three
    ped = _pedigree(THREE)
    random = "~ Trial:Block + us(Trial):vm(Mother, ped)"
    ref = sr.fit("dbh ~ Trial", random, "~ at(Trial):units", data=df, matrices={"ped": ped})
    assert_same_fit(ref, sr.fit("dbh ~ Trial", random, "~ at(Trial):units", data=out, matrices={"ped": ped}))
