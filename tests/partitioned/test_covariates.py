"""Models with covariates (numeric columns in the fixed formula, lin(), random regressions)
fitted to Parquet partitions give the fit of the same records in memory (the reference): the
data pass goes record by record, each record's row of W its cell's row times its covariates."""
import numpy as np
import pandas as pd
import pytest

import sparsereml as sr

from .common import assert_same_fit

SIZE = dict(seed=3, trials=7, trees=9000, mothers=80)
M2 = "~ Trial:Block + Mother + Trial:Mother"


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """Three Parquet files of whole trials with a centred covariate x (Row scaled), and the
    records in memory."""
    out = tmp_path_factory.mktemp("cov")
    files, _ = sr.datasets.trial_network(**SIZE, out=out / "raw", partitions=3)
    parts = []
    for i, f in enumerate(files):
        p = pd.read_parquet(f)
        p["x"] = (p["Row"] - 20.0) / 10.0
        p.to_parquet(out / f"p{i}.parquet")
        parts.append(p)
    return out, pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("fixed, random, residual", [
    ("dbh ~ Trial + Row", M2, None),
    ("dbh ~ Trial + Trial:Col + lin(Row)", M2, "~ at(Trial):units"),
    ("dbh ~ Trial + x", "~ Trial:Block + Mother + Trial:lin(Col)", "~ at(Trial):units"),
    ("dbh ~ Trial + x", "~ Trial:Block + us(~ 1 + x):Mother", None),
])
def test_covariate_models_give_the_in_memory_fit(network, fixed, random, residual):
    out, df = network
    ref = sr.fit(fixed, random, residual, data=df)
    assert_same_fit(ref, sr.fit(fixed, random, residual, data=str(out / "*.parquet")))


def test_covariates_on_the_worker_processes(network, cluster):
    out, df = network
    fixed, residual = "dbh ~ Trial + Trial:Col + lin(Row)", "~ at(Trial):units"
    assert_same_fit(sr.fit(fixed, M2, residual, data=df), sr.fit(fixed, M2, residual, data=out / "p*.parquet",
                                                                 scheduler=cluster))


def test_an_aliased_covariate_is_dropped_as_in_memory(network, tmp_path):
    """x2 = 2 x: the records' X'X finds it aliased, as in memory (the cells, where every
    covariate stands at 1, would alias x with the intercept too, and keep neither apart)."""
    out, df = network
    df = df.assign(x2=2 * df["x"])
    for i, (_, p) in enumerate(df.groupby("Trial", observed=True)):
        p.to_parquet(tmp_path / f"t{i}.parquet")
    with pytest.warns(sr.errors.AliasWarning, match="x2"):
        ref = sr.fit("dbh ~ Trial + x + x2", M2, data=df)
    with pytest.warns(sr.errors.AliasWarning, match="x2"):
        m = sr.fit("dbh ~ Trial + x + x2", M2, data=tmp_path)
    assert_same_fit(ref, m)
    assert list(m.fixed.index) == list(ref.fixed.index) and "x" in m.fixed.index


def test_a_covariate_written_as_text_in_one_partition_is_refused_by_name(network, tmp_path):
    _, df = network
    a, b = df.iloc[:4000].copy(), df.iloc[4000:].copy()
    b["x"] = b["x"].astype(str)
    a.to_parquet(tmp_path / "a.parquet")
    b.to_parquet(tmp_path / "b.parquet")
    with pytest.raises(sr.DataError, match=r"column 'x' is a covariate .* in .*b\.parquet"):
        sr.fit("dbh ~ Trial + x", M2, data=tmp_path)


def test_csv_files_with_a_level_in_one_file_and_an_empty_one(network, tmp_path):
    """The record-by-record pass codes a mother seen in one file only, and skips an empty file."""
    _, df = network
    df = df.assign(**{c: c[0] + df[c].astype(str) for c in ("Trial", "Block", "Mother")})  # text ids in the files
    parts = np.array_split(np.arange(len(df)), 3)  # cuts through trials
    df.loc[df.index[parts[1][-7:]], "Mother"] = "new"
    for i, idx in enumerate(parts):
        df.iloc[idx].to_csv(tmp_path / f"p{i}.csv", index=False)
    df.iloc[:0].to_csv(tmp_path / "a.csv", index=False)  # first: its header alone does not make x a factor
    fixed, residual = "dbh ~ Trial + x", "~ at(Trial):units"
    ref = sr.fit(fixed, M2, residual, data=df)
    assert "new" in ref.blups("Mother").index
    assert_same_fit(ref, sr.fit(fixed, M2, residual, data=str(tmp_path / "*.csv")))


def test_a_file_removed_during_the_fit_is_named(network, tmp_path, monkeypatch):
    """The first pass saw the file; the next one finds it gone (removed once the first ends)."""
    import sparsereml.partitioned.design as design

    _, df = network
    for i, idx in enumerate(np.array_split(np.arange(len(df)), 2)):
        df.iloc[idx].to_parquet(tmp_path / f"p{i}.parquet")
    merge = design.merge_cells

    def merge_then_remove(a, b):
        (tmp_path / "p1.parquet").unlink(missing_ok=True)
        return merge(a, b)

    monkeypatch.setattr(design, "merge_cells", merge_then_remove)
    with pytest.raises(sr.DataError, match=r"p1\.parquet' no longer exists"):
        sr.fit("dbh ~ Trial + x", M2, data=tmp_path, scheduler="synchronous")


@pytest.mark.parametrize("fixed, random, match", [
    ("dbh ~ Trial + Row", "~ Row:Mother", "column 'Row' holds numbers, so the fixed formula"),
    ("dbh ~ Trial + lin(Row)", "~ Row:Mother", "column 'Row' is a covariate of the model and a factor in 'Row:Mother'"),
])
def test_a_column_both_covariate_and_factor_is_refused_by_name(network, fixed, random, match):
    with pytest.raises((sr.DataError, sr.ModelError), match=match):
        sr.fit(fixed, random, data=network[0] / "p*.parquet")
