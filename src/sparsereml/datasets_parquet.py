"""A trial network written as Parquet partitions, trial by trial (``trial_network(out=...)``).

Only one partition's trees are held at a time, so networks of tens of millions of records can
be made on a machine whose memory holds a few partitions.  The trees are the in-memory
network's, number for number (the same draws, in the same order); trials are never split
across files, so that a partition holds whole residual groups of ``at(Trial):units`` and whole
trial grids.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = ["write_network", "repartition"]


def _partition_of_trials(trees_per_trial: np.ndarray, k: int) -> np.ndarray:
    """Partition (0..k-1) of each trial: consecutive trials, cut where the running number of trees
    passes each k-th of the total, every partition at least one trial."""
    n = trees_per_trial.size
    share = np.cumsum(trees_per_trial) / trees_per_trial.sum()
    part = np.minimum((share * k - 1e-9).astype(np.int64), k - 1)
    part = np.maximum.accumulate(part)
    # every partition gets a trial: at most one new partition per trial, none left over at the end
    out = np.empty(n, dtype=np.int64)
    for t in range(n):
        lo = out[t - 1] if t else 0
        need = k - (n - t)  # trials left must still reach the last partition
        out[t] = min(max(part[t], lo, need), lo + 1 if t else 0)
    return out


def write_network(net, trials: int, out: str, partitions: int) -> list[str]:
    """Draw the trials of ``net`` (a :class:`sparsereml.datasets._Network`) in order and write the
    half-sib trees with a diameter to ``out/part-00000.parquet``, ... (``partitions`` files).

    Trial, Block and Mother are written as categorical columns with the same categories in every
    file (every trial, block number and mother the network can have, as text in numeric order:
    pyarrow writes a categorical of integers as plain integers), so that each file, the directory
    and a glob read back with the in-memory network's factor levels, labels and order."""
    if not isinstance(partitions, (int, np.integer)) or isinstance(partitions, bool) or partitions < 1:
        raise DataError(f"partitions={partitions!r}: give a whole number of files of at least 1")
    if partitions > trials:
        raise DataError(f"partitions={partitions} is more than the {trials} trials: a trial is never split "
                        f"across files; give partitions <= {trials} or more trials")
    os.makedirs(out, exist_ok=True)
    old = [f for f in os.listdir(out) if f.startswith("part-") and f.endswith(".parquet")]
    if old:
        raise DataError(f"{out!r} already holds {len(old)} partition file(s) such as {old[0]!r}: give an empty or "
                        f"new directory (a fit of the directory would read them too)")
    cats = {name: pd.Index([str(i) for i in range(1, k + 1)], dtype=object) for name, k in
            (("Trial", trials), ("Block", int(net.n_blocks.max())), ("Mother", net.n_mothers))}
    part = _partition_of_trials(net.trees_per_trial, partitions)
    files, held = [], []
    for t in range(trials):
        frame, _ = net.trial(t)
        frame["dbh"] = frame["dbh"].round(1)
        held.append(frame[(frame["Father"] == 0) & frame["dbh"].notna()])
        if t == trials - 1 or part[t + 1] != part[t]:
            chunk = pd.concat(held, ignore_index=True)
            for col, levels in cats.items():
                chunk[col] = pd.Categorical(chunk[col].astype(str), categories=levels)
            path = os.path.join(out, f"part-{part[t]:05d}.parquet")
            try:
                chunk.to_parquet(path, index=False)
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise DataError("writing Parquet needs pyarrow: pip install 'sparsereml[dask]'") from exc
            files.append(path)
            held = []
    return files


def repartition(src, out, by: str, partitions: int | None = None) -> list[str]:
    """Write partitioned data again with every group of ``by`` whole in one file, for structured
    residuals (``at(Trial):ar1(Row):ar1(Col)``: a trial's grid is one residual group, whose records
    a fit to partitioned data needs together).

    Parameters
    ----------
    src : str or path
        A directory or glob of Parquet (or CSV) files, as ``fit`` takes it.
    out : str or path
        A new or empty directory: ``part-00000.parquet``, ... are written there.
    by : str
        The column whose groups must not be split (the residual's at() factor, e.g. "Trial").
    partitions : int, optional
        Files to write (default: as many as ``src`` has, at most one per group); consecutive
        groups in sorted order, cut so that the files hold about the same number of records.

    Returns
    -------
    list of str
        The files written.

    Notes
    -----
    Memory holds one input file and one output file at a time: each input file is read once to
    count its records per group, then once per output file for that file's groups.
    """
    from .partitioned.sources import _read_file, resolve_source

    source = resolve_source(src)
    if source.files is None:
        raise DataError("repartition() reads files (a directory or glob); a Dask DataFrame is regrouped by "
                        "ddf.shuffle(on=...) and written with ddf.to_parquet")
    counts = []
    for path in source.files:
        col = _read_file(path, source.kind, (by,))
        if by not in col.columns:
            raise DataError(f"column {by!r} is not in {path!r}; repartition by a column every file has")
        counts.append(col[by].astype(str).value_counts())
    total = pd.concat(counts).groupby(level=0).sum()
    groups = sorted(total.index, key=_natural)
    k = min(partitions or len(source.files), len(groups))
    if k < 1:
        raise DataError(f"partitions={partitions!r}: give a whole number of files of at least 1")
    part = _partition_of_trials(total[groups].to_numpy(), k)
    os.makedirs(out, exist_ok=True)
    if any(f.endswith((".parquet", ".csv")) for f in os.listdir(out)):
        raise DataError(f"{os.fspath(out)!r} already holds data files: give an empty or new directory")
    files = []
    for j in range(k):
        want = {g for g, p in zip(groups, part) if p == j}
        chunk = []
        for path, c in zip(source.files, counts):
            if want & set(c.index):  # only the files that hold some of this file's groups
                df = _read_file(path, source.kind, tuple(_columns(path, source.kind)))
                chunk.append(df[df[by].astype(str).isin(want).to_numpy()])
        path = os.path.join(out, f"part-{j:05d}.parquet")
        pd.concat(chunk, ignore_index=True).to_parquet(path, index=False)
        files.append(path)
    return files


def _natural(value: str):
    """Numbers in numeric order before text (so trials 1, 2, ..., 10 stay consecutive)."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def _columns(path: str, kind: str) -> list:
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(path).names
    return list(pd.read_csv(path, nrows=0).columns)
