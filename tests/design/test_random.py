"""Random-term coding: levels, at() blocks and residual groups."""
import numpy as np
import pandas as pd
import pytest

from sparsereml.design import build_design
from sparsereml.design.random import ColumnBlock
from sparsereml.errors import DataError
from sparsereml.formula import model_spec


@pytest.fixture
def df():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"y": rng.normal(size=24), "T": np.repeat([3, 1, 2], 8),
                         "B": np.tile([1, 2, 3, 4], 6), "M": rng.integers(1, 6, 24)})


def test_interaction_levels_are_sorted_combinations(df):
    d = build_design(model_spec("y ~ 1", "~ T:B"), df)
    rb = d.random[0]
    assert rb.levels[:5] == ("1:1", "1:2", "1:3", "1:4", "2:1") and rb.size == 12
    assert rb.levels[rb.record_column[0]] == "3:1"


def test_at_blocks_one_per_level(df):
    d = build_design(model_spec("y ~ 1", "~ at(T):B", "~ at(T):units"), df)
    assert d.random[0].blocks == [ColumnBlock("at(T, 1):B", 0, 4), ColumnBlock("at(T, 2):B", 4, 4),
                                  ColumnBlock("at(T, 3):B", 8, 4)]
    assert d.residual.labels == ["at(T, 1):units", "at(T, 2):units", "at(T, 3):units"]
    d = build_design(model_spec("y ~ 1", "~ at(T, 3):B"), df)  # the label 3, not the third level
    rb = d.random[0]
    assert rb.blocks == [ColumnBlock("at(T, 3):B", 0, 4)] and np.all((rb.record_column >= 0) == (df["T"] == 3))


@pytest.mark.parametrize("dtype", ["int", "str", "category", "float", "object"])
def test_at_codes_only_the_kept_rows_as_the_whole_column_would(df, dtype, monkeypatch):
    # at(T, ...):G codes G on the records at() keeps (clone ids of the clones only, say): the same
    # columns, labels and blocks as coding G on every record first
    ids = np.random.default_rng(1).permutation(24) * 7 + 3  # one level per record, unsorted
    g = {"int": ids, "str": [f"g{i}" for i in ids], "category": pd.Categorical([f"g{i}" for i in ids]),
         "float": ids.astype(float), "object": np.array([f"g{i}" if i % 2 else int(i) for i in ids], dtype=object)}
    data = df.assign(G=g[dtype])
    spec = model_spec("y ~ 1", "~ at(T, c(1, 3)):G + at(T, 2):B")
    fast = build_design(spec, data).random
    monkeypatch.setattr("sparsereml.design.random._kept_rows_factor", lambda term, columns: None)
    whole = build_design(spec, data).random
    for a, b in zip(fast, whole):
        assert np.array_equal(a.record_column, b.record_column)
        assert tuple(a.levels) == tuple(b.levels) and a.blocks == b.blocks
    assert fast[0].size == 16 and np.all((fast[0].record_column >= 0) == df["T"].isin([1, 3]))


def test_random_columns_are_factors_whatever_their_dtype(df):
    d = build_design(model_spec("y ~ 1", "~ M"), df.assign(M=df.M.astype(float)))
    assert d.random[0].levels == ("1", "2", "3", "4", "5")


def test_at_level_that_does_not_exist(df):
    with pytest.raises(DataError, match=r"level 'x' is not a level of 'T' \(levels: 1, 2, 3\)"):
        build_design(model_spec("y ~ 1", "~ at(T, 'x'):B"), df)


def test_one_level_factor(df):
    with pytest.raises(DataError, match="'K' has only one level"):
        build_design(model_spec("y ~ 1", "~ K"), df.assign(K="only"))
