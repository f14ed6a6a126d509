"""Fits to a network on disk as Parquet partitions (the Dask data pass) beside the same fit in
memory: wall time, peak memory of the fitting process and the data pass's throughput.

The network is written once by ``sr.datasets.trial_network(out=DIR, partitions=K)`` (trial by
trial, never held whole).  Each fit runs in a fresh process, whose peak resident memory
(getrusage's ru_maxrss) is that of the fit: reading, the passes, the equations, the iterations.

    .venv/bin/python benchmarks/dask.py --trees 21500000 --partitions 20 --dir /tmp/net20m --in-memory
    .venv/bin/python benchmarks/dask.py --trees 3200000 --partitions 8 --dir /tmp/net3m --models m2b,cov --in-memory
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]  # this file is not the dask package

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

MODELS = {"m2": ("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", None),
          "m2b": ("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units"),
          "m2c": ("dbh ~ Trial", "~ at(Trial):Block + Mother + Trial:Mother", "~ at(Trial):units"),
          # covariates: the record-by-record pass (lin(Row): a trend along the rows of every trial)
          "cov": ("dbh ~ Trial + lin(Row)", "~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units")}


def child(mode: str, model: str, path: str, scheduler: str) -> None:
    import glob

    import pandas as pd

    import sparsereml as sr

    fixed, random, residual = MODELS[model]
    t0 = time.perf_counter()
    if mode == "memory":
        data = pd.concat([pd.read_parquet(f) for f in sorted(glob.glob(os.path.join(path, "*.parquet")))],
                         ignore_index=True)
        kw = {}
    else:
        data, kw = path, {"scheduler": scheduler}
    t_read = time.perf_counter() - t0
    m = sr.fit(fixed, random, residual, data=data, **kw)
    wall = time.perf_counter() - t0
    s = m.seconds
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "model": model, "records": int(m.nobs), "wall": wall, "read": t_read,
                      "design": s.get("design"), "data_pass": s.get("data_pass"), "iterations": s.get("iterations"),
                      "peak_mib": rss, "loglik": m.loglik, "varcomp": m.varcomp.iloc[:, 0].tolist()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", type=int, default=21_500_000, help="trees planted (about 93%% are records)")
    ap.add_argument("--trials", type=int, default=31)
    ap.add_argument("--partitions", type=int, default=20)
    ap.add_argument("--dir", default="/tmp/sparsereml-net")
    ap.add_argument("--models", default="m2")
    ap.add_argument("--scheduler", default="threads")
    ap.add_argument("--in-memory", action="store_true", help="also fit the network read into memory")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(*a.child)
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(HERE), "src")}
    if not os.path.isdir(a.dir) or not os.listdir(a.dir):
        code = ("import sparsereml as sr, time, resource, json; t = time.perf_counter(); "
                f"files, _ = sr.datasets.trial_network(trials={a.trials}, trees={a.trees}, out={a.dir!r}, "
                f"partitions={a.partitions}); print(json.dumps({{'files': len(files), 'seconds': time.perf_counter() - t, "
                "'peak_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        print("write:", out.stdout.strip(), flush=True)
    size = sum(os.path.getsize(os.path.join(a.dir, f)) for f in os.listdir(a.dir))
    print(f"{a.dir}: {len(os.listdir(a.dir))} files, {size / 2**20:.0f} MiB", flush=True)
    rows = []
    for model in a.models.split(","):
        for mode in (["dask", "memory"] if a.in_memory else ["dask"]):
            out = subprocess.run([sys.executable, __file__, "--child", mode, model, a.dir, a.scheduler], env=env,
                                 capture_output=True, text=True)
            if out.returncode:
                print(f"{model} {mode} failed:\n{out.stderr[-2000:]}", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(r)
            passes = (r["design"] or 0) + (r["data_pass"] or 0)
            print(f"{model:4s} {mode:6s} {r['records']:>11,} records  wall {r['wall']:8.1f} s  (read {r['read']:.1f}, "
                  f"design {r['design']:.1f}, data pass {r['data_pass']:.1f}, iterations {r['iterations']:.1f})  "
                  f"peak {r['peak_mib']:8.0f} MiB  logL {r['loglik']:.6f}  "
                  f"throughput {r['records'] / passes / os.cpu_count():,.0f} records/s/core", flush=True)
    by = {(r["model"], r["mode"]): r for r in rows}
    for model in a.models.split(","):
        if (model, "dask") in by and (model, "memory") in by:
            d, m = by[model, "dask"], by[model, "memory"]
            rel = abs(d["loglik"] - m["loglik"]) / abs(m["loglik"])
            comp = max(abs(x - y) / abs(y) for x, y in zip(d["varcomp"], m["varcomp"]))
            print(f"{model}: logL relative difference {rel:.2e}, components {comp:.2e}")


if __name__ == "__main__":
    main()
