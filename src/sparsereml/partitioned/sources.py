"""Where the partitions of a partitioned data set come from: Parquet or CSV files (a directory or a
glob), or a Dask DataFrame's partitions; and how a pass over them is run on Dask.

Each file is one partition, read by a task of its own (so an error names the file); a Dask
DataFrame's partitions are its own.  A pass maps a function over the partitions and sums the
results by a tree of pairwise merges, on the scheduler given (default: Dask's, which is threads
on one machine unless a ``dask.distributed.Client`` is active)."""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import pandas as pd

from ..errors import DataError

__all__ = ["Source", "is_partitioned", "resolve_source", "run_pass", "per_partition"]

_GLOB = ("*", "?", "[")
_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".txt", ".tsv")


def is_partitioned(data) -> bool:
    """A Dask DataFrame, a directory or a glob pattern: data read partition by partition."""
    if type(data).__module__.startswith("dask"):
        return True
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        return os.path.isdir(path) or any(c in path for c in _GLOB)
    return False


def _need_dask():
    try:
        import dask
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DataError("fitting partitioned data (a directory, a glob or a Dask DataFrame) needs Dask: "
                        "pip install 'sparsereml[dask]'") from exc
    return dask


@dataclass
class Source:
    """The partitions of a data set: ``names`` (file paths, or ``partition i`` of a Dask
    DataFrame) and what reads them (``files`` with their format, or the Dask DataFrame)."""

    names: list
    files: list | None = None
    kind: str = "parquet"
    frame: object = None

    def describe(self) -> str:
        what = f"{len(self.names)} {self.kind} file(s)" if self.files is not None else \
            f"a Dask DataFrame of {len(self.names)} partition(s)"
        return what

    def columns(self) -> list | None:
        """The columns, when known without reading the records (a Dask DataFrame's)."""
        return list(self.frame.columns) if self.frame is not None else None

    def sample(self) -> pd.DataFrame:
        """The columns' types without their records: a Dask DataFrame's meta, the first Parquet
        file's schema, the first rows of the first CSV file that has rows (an empty file's
        columns read as text); what decides a covariate."""
        if self.frame is not None:
            return self.frame._meta
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(self.files[0]).empty_table().to_pandas()
        for path in self.files:
            head = pd.read_csv(path, sep="\t" if path.lower().endswith(".tsv") else ",", nrows=1000,
                               na_values=["NA", "", "."], keep_default_na=True)
            if len(head):
                return head
        return head

    def tasks(self, columns: list) -> list:
        """One delayed pandas DataFrame per partition, holding ``columns`` (those it has)."""
        dask = _need_dask()
        if self.frame is not None:
            present = [c for c in columns if c in self.frame.columns]
            return list(self.frame[present].to_delayed())
        read = dask.delayed(_read_file, pure=True)
        return [read(path, self.kind, tuple(columns), dask_key_name=f"read-{i}-{abs(hash((path, tuple(columns))))}")
                for i, path in enumerate(self.files)]


def _read_file(path: str, kind: str, columns: tuple) -> pd.DataFrame:
    """The columns of one file that it has (a missing one is named by the pass that needs it)."""
    if not os.path.exists(path):
        raise DataError(f"partition file {path!r} no longer exists (it was there when the fit began)")
    if kind == "parquet":
        import pyarrow.parquet as pq

        have = set(pq.read_schema(path).names)
        return pd.read_parquet(path, columns=[c for c in columns if c in have])
    from ..data import read_csv

    return read_csv(path, sep="\t" if path.lower().endswith(".tsv") else ",")[
        lambda df: [c for c in columns if c in df.columns]]


def resolve_source(data) -> Source:
    """The partitions of ``data`` (a directory, a glob of Parquet or CSV files, a Dask DataFrame)."""
    if type(data).__module__.startswith("dask"):
        _need_dask()
        if not hasattr(data, "to_delayed") or not hasattr(data, "columns"):
            raise DataError(f"data is a Dask {type(data).__name__}; give a Dask DataFrame (dask.dataframe)")
        return Source([f"partition {i}" for i in range(data.npartitions)], frame=data)
    path = os.fspath(data)
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(_PARQUET + _CSV))
        if not files:
            raise DataError(f"directory {path!r} holds no .parquet or .csv files; give a directory of Parquet "
                            f"files or a glob such as {os.path.join(path, '*.parquet')!r}")
    else:
        files = sorted(glob.glob(path))
        if not files:
            raise DataError(f"no file matches {path!r}: check the directory and the pattern (e.g. "
                            f"'trees/*.parquet')")
    kinds = {"parquet" if f.lower().endswith(_PARQUET) else "csv" if f.lower().endswith(_CSV) else None
             for f in files}
    if None in kinds:
        odd = next(f for f in files if not f.lower().endswith(_PARQUET + _CSV))
        raise DataError(f"{odd!r} (matched by {path!r}) is neither .parquet nor .csv; narrow the pattern")
    if len(kinds) > 1:
        raise DataError(f"{path!r} matches both Parquet and CSV files; give one kind (e.g. '*.parquet')")
    return Source(files, files=files, kind=kinds.pop())


def per_partition(function, *args):
    """``function(*args)`` as a delayed task (pure: the same partition and arguments give the
    same result), one per partition of a pass."""
    import dask

    return dask.delayed(function, pure=True)(*args)


def run_pass(tasks: list, merge, scheduler=None):
    """Reduce ``tasks`` (delayed results, one per partition) by a tree of pairwise ``merge``s and
    compute the result on ``scheduler`` (a name such as "threads", a ``dask.distributed.Client``,
    or None for Dask's default)."""
    dask = _need_dask()
    step = dask.delayed(merge, pure=True)
    level = list(tasks)
    while len(level) > 1:
        level = [step(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
    if scheduler is not None and hasattr(scheduler, "compute") and hasattr(scheduler, "gather"):
        return scheduler.compute(level[0]).result()  # a dask.distributed.Client
    return dask.compute(level[0], scheduler=scheduler)[0]
