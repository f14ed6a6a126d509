"""Fixtures of the partitioned-data tests: one dask.distributed LocalCluster of two worker
processes on the loopback address for the whole package (started once: a few seconds), and the
trial networks written as Parquet partitions."""
from __future__ import annotations

import warnings

import pytest

pytest.importorskip("dask")
pytest.importorskip("pyarrow")


@pytest.fixture(scope="package")
def cluster():
    """A Client of a real LocalCluster (2 worker processes, 1 thread each), stopped at the end."""
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None) as lc, distributed.Client(lc, timeout="60s") as client:
            yield client


@pytest.fixture(params=["threads", pytest.param("cluster", marks=pytest.mark.cluster)])
def scheduler(request):
    """Each scheduler the data pass runs on: Dask's threads here, and the worker processes."""
    return request.getfixturevalue("cluster") if request.param == "cluster" else "threads"
