"""The command line's memory forecast (``sparsereml plan``, ``--max-memory``) and partitioned data
(``sparsereml fit DIR --scheduler ...``), against sr.plan and the in-memory fit of the same records."""
import json

import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.cli import main
from sparsereml.datasets import trial_network

SIZE = dict(seed=5, trials=4, trees=3000, mothers=60)
MODEL = ["--fixed", "dbh ~ Trial", "--random", "~ Trial:Block + Mother + Trial:Mother"]


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    df, _ = trial_network(**SIZE)
    path = tmp_path_factory.mktemp("cli") / "trees.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory):
    pytest.importorskip("dask")
    pytest.importorskip("pyarrow")
    out = tmp_path_factory.mktemp("parts")
    trial_network(**SIZE, out=out, partitions=2)
    return out


def test_plan_prints_the_forecast_of_sr_plan(csv, capsys, backend):
    """Reference: sr.plan on the same file."""
    args = ["plan", str(csv), *MODEL, "--factors", "Trial"] + (["--backend", backend] if backend else [])
    assert main(args) == 0
    text = capsys.readouterr().out
    ref = sr.plan("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", data=str(csv), factors=["Trial"],
                  backend=backend)
    assert "Memory forecast" in text and f"{ref.peak / 1e6:,.1f}" in text and "within it" in text
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["peak_bytes"] == ref.peak and out["facts"]["nnz_L"] == ref.facts["nnz_L"] and out["fits"]
    assert {i["part"] for i in out["items"]} == set(ref.table["part"])


def test_plan_over_budget_exits_4_and_fit_refuses_with_the_figure(csv, capsys):
    assert main(["plan", str(csv), *MODEL, "--factors", "Trial", "--max-memory", "1MB"]) == 4
    assert "OVER it" in capsys.readouterr().out
    assert main(["fit", str(csv), *MODEL, "--factors", "Trial", "--max-memory", "1MB", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "would need about" in err and "max_memory=1.0 MB" in err and "Traceback" not in err
    assert main(["fit", str(csv), *MODEL, "--max-memory", "4XB", "--quiet"]) == 2
    assert "max_memory" in capsys.readouterr().err


def test_fit_of_a_directory_takes_the_partitioned_route(parquet_dir, tmp_path, capsys):
    """Reference: the in-memory fit of the same records (issue 19: logL to 1e-10 relative)."""
    df = pd.concat([pd.read_parquet(f) for f in sorted(parquet_dir.glob("*.parquet"))], ignore_index=True)
    ref = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", data=df)
    for data, scheduler in ((str(parquet_dir), "synchronous"), (str(parquet_dir / "*.parquet"), "threads")):
        assert main(["fit", data, *MODEL, "--scheduler", scheduler, "--max-memory", "8GB", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["nobs"] == ref.nobs and abs(out["loglik"] - ref.loglik) <= 1e-10 * abs(ref.loglik)


def test_scheduler_is_refused_for_one_file_and_an_unknown_one_by_name(csv, parquet_dir, capsys):
    assert main(["fit", str(csv), *MODEL, "--scheduler", "threads", "--quiet"]) == 2
    assert "--scheduler is for partitioned data" in capsys.readouterr().err
    assert main(["fit", str(parquet_dir), *MODEL, "--scheduler", "nowhere", "--quiet"]) == 2
    assert "--scheduler 'nowhere'" in capsys.readouterr().err
    # an address where no scheduler listens: refused by name, no traceback, after Dask's connect time-out
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main(["plan", str(parquet_dir), *MODEL, "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "--scheduler 'tcp://127.0.0.1:9'" in err and "Traceback" not in err


def test_records_of_a_partitioned_fit_are_written_per_partition_and_the_report_says_why(parquet_dir, tmp_path,
                                                                                          capsys):
    """Reference: the in-memory fit's records.csv (same records, same command line)."""
    df = pd.concat([pd.read_parquet(f) for f in sorted(parquet_dir.glob("*.parquet"))], ignore_index=True)
    df.to_csv(tmp_path / "all.csv", index=False)
    assert main(["fit", str(tmp_path / "all.csv"), *MODEL, "--factors", "Trial,Block,Mother", "--out",
                 str(tmp_path / "mem"), "--records", "--quiet"]) == 0
    assert main(["fit", str(parquet_dir), *MODEL, "--out", str(tmp_path / "part"), "--records", "--report",
                 "--quiet"]) == 0
    parts = sorted((tmp_path / "part" / "records").glob("part-*.parquet"))
    assert len(parts) == 2 and not (tmp_path / "part" / "records.csv").exists()
    got = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    want = pd.read_csv(tmp_path / "mem" / "records.csv", index_col=0)
    assert len(got) == len(want) == len(df)
    assert abs(got["fitted"].to_numpy() - want["fitted"].to_numpy()).max() <= 1e-8 * abs(want["fitted"]).max()
    capsys.readouterr()
    assert main(["report", str(tmp_path / "part"), "--quiet"]) == 0
    page = (tmp_path / "part" / "report.html").read_text()
    assert "records stay in their partitions" in page and "write_records" in page
