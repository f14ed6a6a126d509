"""trial_network(out=..., partitions=k) writes the in-memory network, row for row, as Parquet files
of whole trials, drawing trial by trial."""
import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.datasets_parquet import _partition_of_trials

pytest.importorskip("pyarrow")

SIZE = dict(seed=3, trials=7, trees=9000, mothers=80)


def test_the_files_hold_the_in_memory_network_row_for_row(tmp_path):
    df, truth = sr.datasets.trial_network(**SIZE)
    files, truth_out = sr.datasets.trial_network(**SIZE, out=tmp_path / "net", partitions=3)
    assert len(files) == 3 and truth_out == truth
    parts = [pd.read_parquet(f) for f in files]
    trials = [set(p["Trial"].astype(str)) for p in parts]
    assert all(a.isdisjoint(b) for i, a in enumerate(trials) for b in trials[i + 1:])  # trials never split
    back = pd.concat(parts, ignore_index=True)
    assert all(list(p["Mother"].cat.categories) == [str(i) for i in range(1, 81)] for p in parts)
    for col in ("Trial", "Block", "Mother"):
        back[col] = back[col].astype(int).astype("category")
    pd.testing.assert_frame_equal(back, df)


@pytest.mark.parametrize("sizes, k, expect", [([5, 1, 1, 1, 10, 2], 3, [0, 0, 1, 1, 2, 2]),
                                              ([1, 1, 1], 3, [0, 1, 2]), ([100, 1, 1, 1], 4, [0, 1, 2, 3])])
def test_partitions_are_consecutive_trials_and_none_is_empty(sizes, k, expect):
    assert _partition_of_trials(np.array(sizes), k).tolist() == expect


@pytest.mark.parametrize("kw, match", [(dict(partitions=8), "more than the 7 trials"),
                                       (dict(partitions=0), "partitions=0"),
                                       (dict(families="all"), "half-sib network")])
def test_what_cannot_be_written_is_refused(tmp_path, kw, match):
    with pytest.raises(sr.DataError, match=match):
        sr.datasets.trial_network(**SIZE, out=tmp_path / "x", **kw)


def test_partitions_without_out_and_a_used_directory_are_refused(tmp_path):
    with pytest.raises(sr.DataError, match="out='directory'"):
        sr.datasets.trial_network(**SIZE, partitions=2)
    sr.datasets.trial_network(**SIZE, out=tmp_path, partitions=2)
    with pytest.raises(sr.DataError, match="already holds 2 partition"):
        sr.datasets.trial_network(**SIZE, out=tmp_path, partitions=2)
