"""Fits to partitioned data (Parquet or CSV files, a Dask DataFrame) with the data pass on Dask agree
with the fit of the same records in memory; what the first slice does not fit is refused by name."""
import warnings

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr

pytest.importorskip("dask")
pytest.importorskip("pyarrow")

SIZE = dict(seed=3, trials=7, trees=9000, mothers=80)
RANDOM = "~ Trial:Block + Mother + Trial:Mother"
MODELS = {"m2": None, "m2b": "~ at(Trial):units"}


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """The small network as three Parquet files, and the same records in memory."""
    out = tmp_path_factory.mktemp("net")
    files, _ = sr.datasets.trial_network(**SIZE, out=out, partitions=3)
    return out, files, pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


@pytest.fixture(scope="module")
def in_memory(network):
    return {name: sr.fit("dbh ~ Trial", RANDOM, res, data=network[2]) for name, res in MODELS.items()}


def assert_same_fit(a, b):
    assert abs(a.loglik - b.loglik) <= 1e-10 * abs(a.loglik)
    va, vb = a.varcomp["component"].to_numpy(), b.varcomp["component"].to_numpy()
    np.testing.assert_allclose(vb, va, rtol=1e-8)
    assert list(a.varcomp.index) == list(b.varcomp.index) and a.nobs == b.nobs
    np.testing.assert_allclose(b.fixed["estimate"].to_numpy(), a.fixed["estimate"].to_numpy(), rtol=1e-8)


@pytest.mark.parametrize("model", list(MODELS))
def test_a_directory_of_parquet_files_gives_the_in_memory_fit(network, in_memory, model):
    out, _, _ = network
    m = sr.fit("dbh ~ Trial", RANDOM, MODELS[model], data=out, scheduler="threads")
    assert_same_fit(in_memory[model], m)
    blups = m.blups("Mother") if callable(getattr(m, "blups", None)) else None
    if blups is not None:
        pd.testing.assert_frame_equal(blups, in_memory[model].blups("Mother"), rtol=1e-6, atol=1e-8)


def test_a_glob_and_a_dask_dataframe_give_it_too(network, in_memory):
    import dask.dataframe as dd

    out, files, df = network
    assert_same_fit(in_memory["m2"], sr.fit("dbh ~ Trial", RANDOM, data=str(out / "*.parquet")))
    ddf = dd.from_pandas(df, npartitions=4)
    assert_same_fit(in_memory["m2b"], sr.fit("dbh ~ Trial", RANDOM, MODELS["m2b"], data=ddf))


def test_a_glob_of_csv_files_with_a_level_in_one_partition_and_an_empty_one(network, tmp_path):
    _, _, df = network
    df = df.assign(**{c: c[0] + df[c].astype(str) for c in ("Trial", "Block", "Mother")})  # text ids in the files
    parts = np.array_split(np.arange(len(df)), 3)  # cuts through trials: levels shared across files
    df.loc[df.index[parts[2][-5:]], "Mother"] = "new"  # a mother seen in one file only
    for i, idx in enumerate(parts):
        df.iloc[idx].to_csv(tmp_path / f"p{i}.csv", index=False)
    df.iloc[:0].to_csv(tmp_path / "p3.csv", index=False)  # an empty partition
    ref = sr.fit("dbh ~ Trial", RANDOM, data=df)
    m = sr.fit("dbh ~ Trial", RANDOM, data=str(tmp_path / "*.csv"))
    assert_same_fit(ref, m)


def test_int_ids_in_one_file_and_text_in_another_are_refused_by_name(network, tmp_path):
    _, _, df = network
    a, b = df.iloc[:4000].copy(), df.iloc[4000:].copy()
    a["Mother"] = a["Mother"].astype(int)
    b["Mother"] = "M" + b["Mother"].astype(str)
    a.to_parquet(tmp_path / "a.parquet")
    b.to_parquet(tmp_path / "b.parquet")
    with pytest.raises(sr.DataError, match=r"column 'Mother' holds numbers .*a\.parquet.* but texts .*b\.parquet"):
        sr.fit("dbh ~ Trial", RANDOM, data=tmp_path)


def test_missing_files_and_columns_are_refused_by_name(network, tmp_path):
    with pytest.raises(sr.DataError, match="no file matches"):
        sr.fit("dbh ~ Trial", RANDOM, data=str(tmp_path / "nothing-*.parquet"))
    with pytest.raises(sr.DataError, match="holds no .parquet"):
        sr.fit("dbh ~ Trial", RANDOM, data=tmp_path)
    with pytest.raises(sr.DataError, match=r"column 'Mum' is not in .*part-0000\d\.parquet"):
        sr.fit("dbh ~ Trial", "~ Mum", data=network[0])


@pytest.mark.parametrize("kw, match", [
    (dict(residual="~ ar1(Row):ar1(Col)"), "grid"),
    (dict(fixed="cbind(dbh, Row) ~ trait:Trial", random="~ us(trait):Mother"), "multivariate"),
    (dict(random="~ Mother + and(Father)"), "overlay"),
    (dict(family="binomial", fixed="dbh ~ Trial"), "generalized"),
])
def test_what_this_slice_does_not_fit_is_refused(network, kw, match):
    args = {"fixed": "dbh ~ Trial", "random": RANDOM, **kw}
    with pytest.raises((sr.DataError, sr.ModelError), match=match):
        sr.fit(args.pop("fixed"), args.pop("random"), args.pop("residual", None), data=network[0], **args)


def test_per_record_values_are_refused_and_scheduler_needs_partitions(network, in_memory):
    m = sr.fit("dbh ~ Trial", RANDOM, data=network[0])
    with pytest.raises(sr.ModelError, match="per-record values.*m.write_records"):
        m.fitted
    page = m.report()  # its data and residual sections say why there are no per-record figures
    assert "records stay in their partitions" in page and "Traceback" not in page
    with pytest.raises(sr.ModelError, match="scheduler= is for partitioned data"):
        sr.fit("dbh ~ Trial", RANDOM, data=network[2], scheduler="threads")


def test_a_local_cluster_of_worker_processes_gives_the_in_memory_fit(network, in_memory):
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            m = sr.fit("dbh ~ Trial", RANDOM, MODELS["m2b"], data=network[0], scheduler=client)
    assert_same_fit(in_memory["m2b"], m)


def test_fits_to_partitioned_data_are_compared_as_in_memory(network, in_memory, tmp_path):
    """sr.compare and the comparison report of two fits whose records stay in partitions: the same
    LRT as the in-memory fits (the records' identity checked by n, sum y and sum y^2 from the
    cells), also from written results; other records are refused."""
    part = {name: sr.fit("dbh ~ Trial", RANDOM, res, data=network[0]) for name, res in MODELS.items()}
    ref = sr.compare(*in_memory.values(), names=list(MODELS)).table
    got = sr.compare(*part.values(), names=list(MODELS)).table
    np.testing.assert_allclose(got["statistic"].to_numpy(float)[1:], ref["statistic"].to_numpy(float)[1:], rtol=1e-6)
    assert got["df"].tolist() == ref["df"].tolist()
    y = network[2]["dbh"].to_numpy()
    np.testing.assert_allclose(part["m2"].response_summary, [y.size, y.sum(), y @ y], rtol=1e-12)
    sr.compare(in_memory["m2"], part["m2b"])  # one of each: by the summaries
    for name, m in part.items():
        sr.FitResults.from_model(m).write(tmp_path / name)
    read = [sr.FitResults.read(tmp_path / name) for name in MODELS]
    assert not read[0].holds_records
    np.testing.assert_allclose(sr.compare(*read).table["statistic"].to_numpy(float)[1:],
                               ref["statistic"].to_numpy(float)[1:], rtol=1e-6)
    page = sr.report({"memory": in_memory["m2"], **dict(zip(MODELS, read))})
    assert "Models compared" in page and "residuals against fitted values: memory</figcaption>" in page
    for name in MODELS:  # each partitioned fit says why it has no residual plot
        mine = page[page.index(f'id="m-{name}"'):]
        assert "records stay in their partitions" in mine[:mine.index("Iterations")]
    other = sr.fit("dbh ~ Trial", RANDOM, data=network[2].assign(dbh=network[2]["dbh"] * 1.001))
    with pytest.raises(sr.ModelError, match="do not use the same records"):
        sr.compare(part["m2"], other)
