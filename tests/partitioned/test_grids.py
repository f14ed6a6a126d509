"""Structured residuals (ar1 x ar1 grids per trial) on Parquet partitions that hold whole trials
give the fit of the same records in memory (the reference); a trial split across files is
refused by name, and ``sr.datasets.repartition`` writes the files again with whole trials."""
import numpy as np
import pandas as pd
import pytest

import sparsereml as sr

from .common import assert_same_fit

SIZE = dict(seed=3, trials=7, trees=9000, mothers=80)
GRID = ("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):ar1(Row):ar1(Col)")


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """Three Parquet files of whole trials, the records in memory, and four files that cut
    through trials."""
    out = tmp_path_factory.mktemp("grid")
    files, _ = sr.datasets.trial_network(**SIZE, out=out / "whole", partitions=3)
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    (out / "cut").mkdir()
    for i, idx in enumerate(np.array_split(np.arange(len(df)), 4)):
        df.iloc[idx].to_parquet(out / "cut" / f"c{i}.parquet")
    return out, df


@pytest.fixture(scope="module")
def in_memory(network):
    return sr.fit(*GRID, data=network[1])


def test_ar1_grids_per_trial_on_both_schedulers(network, in_memory, scheduler):
    out, _ = network
    m = sr.fit(*GRID, data=out / "whole", scheduler=scheduler)
    assert_same_fit(in_memory, m)
    assert "at(Trial, 1):units!Row:cor" in m.varcomp.index


def test_grids_beside_independent_groups(network):
    out, df = network
    residual = "~ at(Trial, 1, 2):ar1(Row):ar1(Col) + at(Trial, 3, 4, 5, 6, 7):units"
    ref = sr.fit("dbh ~ Trial", "~ Mother + Trial:Mother", residual, data=df)
    assert_same_fit(ref, sr.fit("dbh ~ Trial", "~ Mother + Trial:Mother", residual, data=out / "whole"))


def test_a_split_trial_is_refused_with_the_fix_and_repartition_gives_the_fit(network, in_memory, tmp_path):
    out, _ = network
    with pytest.raises(sr.DataError, match=r"split: at\(Trial, \d\):units in .*c\d\.parquet, .*c\d\.parquet.*"
                                           r"repartition\(src, out, by='Trial'\)"):
        sr.fit(*GRID, data=out / "cut")
    files = sr.datasets.repartition(out / "cut", tmp_path / "re", by="Trial", partitions=3)
    trials = [set(pd.read_parquet(f)["Trial"].astype(str)) for f in files]
    assert len(files) == 3 and sum(map(len, trials)) == 7 == len(set().union(*trials))
    assert_same_fit(in_memory, sr.fit(*GRID, data=tmp_path / "re"))


def test_repartition_refuses_a_used_directory_and_an_unknown_column(network, tmp_path):
    out, _ = network
    with pytest.raises(sr.DataError, match="column 'Site' is not in"):
        sr.datasets.repartition(out / "cut", tmp_path / "a", by="Site")
    sr.datasets.repartition(out / "cut", tmp_path / "b", by="Trial")
    with pytest.raises(sr.DataError, match="already holds data files"):
        sr.datasets.repartition(out / "cut", tmp_path / "b", by="Trial")
