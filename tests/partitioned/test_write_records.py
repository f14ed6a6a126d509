"""m.write_records: the per-record outputs of a fit to Parquet partitions, written one file per
partition by the workers, are those of the same records fitted in memory (the reference:
``record_table`` of the in-memory fit, rows matched by partition and row number); the records
are not gathered on this node; what cannot be written is refused by name."""
import tracemalloc

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.records import record_table

SIZE = dict(seed=3, trials=7, trees=9000, mothers=80)
M2 = ("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother")


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """Three Parquet files of whole trials (some responses missing), and the records in memory."""
    out = tmp_path_factory.mktemp("write")
    files, _ = sr.datasets.trial_network(**SIZE, out=out / "raw", partitions=3)
    parts = []
    for i, f in enumerate(files):
        p = pd.read_parquet(f)
        p.loc[p.index[5:12], "dbh"] = np.nan  # dropped by the fit: left out of the outputs
        p.to_parquet(out / f"p{i}.parquet")
        parts.append(p)
    return out, parts


def written_against_reference(paths: list, parts: list, ref) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The written records and the reference's record table on the same rows (the in-memory data
    is the partitions one after another, so a record's place there is its part's offset + row)."""
    offsets = np.cumsum([0] + [len(p) for p in parts])[:-1]
    got = pd.concat([pd.read_parquet(f).assign(pos=lambda d, o=o: d["row"] + o) for f, o in zip(paths, offsets)],
                    ignore_index=True).set_index("pos")
    table, _ = record_table(ref)
    assert len(got) == len(table) == ref.nobs and got.index.is_unique
    return got, table.loc[got.index]


def assert_same_records(got: pd.DataFrame, want: pd.DataFrame, data: pd.DataFrame) -> None:
    scale = float(np.abs(want["response"]).max())
    np.testing.assert_allclose(got["fitted"].to_numpy(), want["fitted"].to_numpy(), rtol=1e-10, atol=0)
    np.testing.assert_allclose(got["residual"].to_numpy(), want["residual"].to_numpy(), rtol=0, atol=1e-10 * scale)
    np.testing.assert_array_equal(got["group"].astype(str).to_numpy(), want["group"].astype(str).to_numpy())
    np.testing.assert_array_equal(got["dbh"].to_numpy(), want["response"].to_numpy())
    np.testing.assert_array_equal(got["Tree"].to_numpy(), data["Tree"].to_numpy()[got.index])
    if "grid_row" in want and (want["grid_row"] >= 0).any():
        np.testing.assert_array_equal(got[["grid_row", "grid_col"]].to_numpy(), want[["grid_row", "grid_col"]].to_numpy())


def test_cell_route_writes_the_in_memory_records_on_both_schedulers(network, scheduler, tmp_path):
    out, parts = network
    data = pd.concat(parts, ignore_index=True)
    m = sr.fit(*M2, data=str(out / "p*.parquet"), scheduler=scheduler)
    paths = m.write_records(tmp_path / "rec", columns=["Tree"])
    assert [p.name for p in paths] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    got, want = written_against_reference(paths, parts, sr.fit(*M2, data=data))
    assert_same_records(got, want, data)
    assert not np.isin(np.arange(5, 12), got.index).any()  # the missing responses of part 0: left out
    assert list(got.columns[:5]) == ["row", "dbh", "Trial", "Block", "Mother"]


@pytest.mark.parametrize("fixed, random, residual", [
    ("dbh ~ Trial + lin(Row)", M2[1], "~ at(Trial):units"),  # covariates: record by record
    (M2[0], "~ Trial:Block + Mother", "~ at(Trial):ar1(Row):ar1(Col)"),  # grids: the positions too
])
def test_covariate_and_grid_routes_write_the_in_memory_records(network, tmp_path, fixed, random, residual):
    out, parts = network
    data = pd.concat(parts, ignore_index=True)
    m = sr.fit(fixed, random, residual, data=out, scheduler="threads")
    paths = m.write_records(tmp_path / "rec", columns=["Tree"])
    got, want = written_against_reference(paths, parts, sr.fit(fixed, random, residual, data=data))
    assert_same_records(got, want, data)


def test_records_dropped_for_a_missing_predictor_are_left_out(network, tmp_path):
    _, parts = network
    cut = [p.copy() for p in parts]
    cut[1].loc[cut[1].index[:4], "Mother"] = np.nan
    for i, p in enumerate(cut):
        p.to_parquet(tmp_path / f"q{i}.parquet")
    data = pd.concat(cut, ignore_index=True)
    m = sr.fit(*M2, data=str(tmp_path / "q*.parquet"), na_action="drop")
    got, want = written_against_reference(m.write_records(tmp_path / "rec", columns=["Tree"]), cut,
                                          sr.fit(*M2, data=data, na_action="drop"))
    assert_same_records(got, want, data)
    assert not np.isin(len(cut[0]) + np.arange(4), got.index).any()


def test_the_records_are_not_gathered_on_this_node(tmp_path):
    """Eight equal partitions written one at a time (synchronous scheduler): the traced peak of
    the write (numpy and pandas allocations) stays within three partitions' frames (measured:
    about two, one read and its output), well below the eight of the records' total."""
    files, _ = sr.datasets.trial_network(seed=5, trials=12, trees=96000, mothers=80, out=tmp_path / "raw",
                                         partitions=2)
    data = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    (tmp_path / "net").mkdir()
    frames = [data.iloc[idx] for idx in np.array_split(np.arange(len(data)), 8)]  # equal parts, across trials
    for i, f in enumerate(frames):
        f.to_parquet(tmp_path / "net" / f"p{i:02d}.parquet")
    one = max(int(f.memory_usage(deep=True).sum()) for f in frames)
    total = sum(int(f.memory_usage(deep=True).sum()) for f in frames)
    del frames, data
    m = sr.fit(*M2, data=tmp_path / "net", scheduler="synchronous")
    tracemalloc.start()
    try:
        paths = m.write_records(tmp_path / "rec", columns=["Tree"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(paths) == 8 and total > 7 * one
    assert peak < 3 * one, (peak, one, total)


def test_what_cannot_be_written_is_refused_by_name(network, tmp_path):
    out, parts = network
    m = sr.fit(*M2, data=str(out / "p*.parquet"))
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    with pytest.raises(sr.ModelError, match="overwrite=True"):
        m.write_records(tmp_path / "used")
    first = m.write_records(tmp_path / "used", overwrite=True)
    again = m.write_records(tmp_path / "used", overwrite=True, format="csv")
    assert (tmp_path / "used" / "notes.txt").exists() and not any(p.exists() for p in first)
    assert sorted(p.name for p in (tmp_path / "used").iterdir()) == ["notes.txt"] + [p.name for p in again]
    with pytest.raises(sr.DataError, match="column 'TreeId' .columns=. is not in the data"):
        m.write_records(tmp_path / "new", columns=["TreeId"])
    with pytest.raises(sr.ModelError, match="data= is for fits in memory"):
        m.write_records(tmp_path / "new2", data=parts[0])


def test_an_in_memory_fit_writes_one_file_with_the_same_api(network, tmp_path):
    _, parts = network
    data = pd.concat(parts, ignore_index=True)
    ref = sr.fit(*M2, data=data)
    table, _ = record_table(ref)
    for name in ("rec.parquet", "rec.csv"):
        (path,) = ref.write_records(tmp_path / name, columns=["Tree"], data=data)
        got = (pd.read_parquet if name.endswith("parquet") else pd.read_csv)(path).set_index("row")
        assert_same_records(got, table.loc[got.index], data)
    with pytest.raises(sr.ModelError, match="overwrite=True"):
        ref.write_records(tmp_path / "rec.csv")
    with pytest.raises(sr.ModelError, match="pass the data it was fitted to as data="):
        ref.write_records(tmp_path / "r2.csv", columns=["Tree"])
    with pytest.raises(sr.DataError, match="not the data the model was fitted to"):
        ref.write_records(tmp_path / "r3.csv", columns=["Tree"], data=data.assign(dbh=data["dbh"] + 1))
    with pytest.raises(sr.ModelError, match="format='parquet'"):
        ref.write_records(tmp_path / "rec.txt")
