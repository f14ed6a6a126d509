"""``sparsereml fit DIR --scheduler tcp://... --records``: the data pass and the per-record
values on a running dask.distributed scheduler (the package's LocalCluster of two worker processes), against the in-memory fit of the
same records (issue 19: logL to 1e-10 relative, components to 1e-8)."""
import json

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.cli import main
from sparsereml.datasets import trial_network

MODEL = ["--fixed", "dbh ~ Trial", "--random", "~ Trial:Block + Mother + Trial:Mother",
         "--residual", "~ at(Trial):units"]


@pytest.mark.cluster
def test_fit_on_a_scheduler_address_equals_the_in_memory_fit(cluster, tmp_path, capsys):
    parts = tmp_path / "parts"
    trial_network(seed=7, trials=4, trees=3000, mothers=60, out=parts, partitions=3)
    df = pd.concat([pd.read_parquet(f) for f in sorted(parts.glob("*.parquet"))], ignore_index=True)
    ref = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units", data=df)
    address = cluster.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    out_dir = tmp_path / "fit"
    assert main(["fit", str(parts), *MODEL, "--scheduler", address, "--out", str(out_dir), "--records", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["nobs"] == ref.nobs
    assert abs(out["loglik"] - ref.loglik) <= 1e-10 * abs(ref.loglik)
    written = pd.read_csv(out_dir / "varcomp.csv", index_col=0)
    np.testing.assert_allclose(written.loc[ref.varcomp.index, "component"], ref.varcomp["component"], rtol=1e-8)
    # per-record values written by the workers, one file per input partition, in the input's order
    parts_out = sorted((out_dir / "records").glob("part-*.parquet"))
    assert len(parts_out) == 3
    rec = pd.concat([pd.read_parquet(f) for f in parts_out], ignore_index=True)
    np.testing.assert_allclose(rec["fitted"], ref.fitted.to_numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(rec["residual"], ref.residuals.to_numpy(), rtol=1e-10, atol=1e-8)
    assert main(["report", str(out_dir), "--out", str(tmp_path / "r.html")]) == 0
