"""Benchmark: the memory forecast (sr.plan, the check behind max_memory=) against the measured peak.

What it measures
  Each case runs in a fresh child process: it makes the data, warms numba's cache with a fit of
  the same kind on a tiny network, collects garbage, reads its resident memory (VmRSS), resets the
  kernel's peak mark (/proc/self/clear_refs), then runs ``sr.prepare_fit(...).run()`` with the
  data already in memory.  "measured" is the peak resident memory during the fit less the
  resident memory before it (VmHWM - VmRSS); "forecast" is the peak of the MemoryPlan the fit was
  checked against (``PreparedFit.memory``), made before its first factorisation.  "factor nnz"
  compares the forecast's nonzeros of L with the fitted factor's.

Cases (default network of sparsereml.datasets.trial_network unless said)
  m2, m2b, m2c    sparsereml.demo.MODELS
  m2-cholmod      m2 with Control(star=False): the sparse backend instead of the star
  cg5000          dbh ~ CG (5,000 contemporary groups: a wide fixed factor) + m2's random terms
  vm              dbh ~ Trial, ~ Trial:Block + vm(TreeId, ped), ~ at(Trial):units on 60,000 trees
                  (benchmarks/pedigree.py's tree_data)
  m2-parquet      m2 on the network written as 8 Parquet partitions (the partitioned route, threads;
                  PARTITIONS=k in the environment writes k instead)

Run (from the repository root):
  .venv/bin/python benchmarks/memory_forecast.py                    # every case, the default backend
  SPARSEREML_BACKEND=qdldl .venv/bin/python benchmarks/memory_forecast.py --cases m2,cg5000
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the script's own directory goes last: benchmarks/dask.py must not shadow the dask package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
from trial_network import last_line, reset_peak_rss, status_kib  # noqa: E402

CASES = ("m2", "m2b", "m2c", "m2-cholmod", "cg5000", "vm", "m2-parquet")
WARMUP = dict(seed=1, trials=6, trees=12000, mothers=200)


def _model(case: str, tmp: str):
    """(fixed, random, residual, data, keyword arguments) of a case, and its warm-up data."""
    import sparsereml as sr
    from sparsereml.demo import MODELS

    small = sr.datasets.trial_network(**WARMUP)[0]
    if case in ("m2", "m2b", "m2c", "m2-cholmod"):
        df = sr.datasets.trial_network()[0]
        kw = {"control": sr.Control(star=False)} if case == "m2-cholmod" else {}
        return (*MODELS[case.split("-")[0]], df, kw), (*MODELS[case.split("-")[0]], small, kw)
    if case == "cg5000":
        df = sr.datasets.trial_network()[0]
        df["CG"] = sr.datasets.contemporary_groups(df, 5000)
        small["CG"] = sr.datasets.contemporary_groups(small, 300)
        model = ("dbh ~ CG", MODELS["m2"][1], None)
        return (*model, df, {}), (*model, small, {})
    if case == "vm":
        from pedigree import tree_data

        data, ped = tree_data(60_000)
        sdata, sped = tree_data(6_000, seed=1)
        model = ("dbh ~ Trial", "~ Trial:Block + vm(TreeId, ped)", "~ at(Trial):units")
        return (*model, data, {"matrices": {"ped": sr.Pedigree(ped)}}), \
            (*model, sdata, {"matrices": {"ped": sr.Pedigree(sped)}})
    if case == "m2-parquet":
        parts = int(os.environ.get("PARTITIONS", "8"))  # the partitions' size: what the pass holds in flight
        files, _ = sr.datasets.trial_network(out=os.path.join(tmp, "net"), partitions=parts)
        sfiles, _ = sr.datasets.trial_network(**WARMUP, out=os.path.join(tmp, "small"), partitions=2)
        return (*MODELS["m2"], os.path.join(tmp, "net"), {"scheduler": "threads"}), \
            (*MODELS["m2"], os.path.join(tmp, "small"), {"scheduler": "threads"})
    raise SystemExit(f"unknown case {case!r}; cases: {', '.join(CASES)}")


def child(case: str, out: str) -> None:
    import sparsereml as sr

    with tempfile.TemporaryDirectory() as tmp:
        (f, r, e, data, kw), (sf, sr_, se, small, skw) = _model(case, tmp)
        sr.fit(sf, sr_, se, data=small, **skw)  # compiled kernels loaded: not the fit's memory
        del small
        gc.collect()
        rss_before = status_kib("VmRSS")
        reset = reset_peak_rss()
        prepared = sr.prepare_fit(f, r, e, data=data, **kw)
        m = prepared.run()
        peak = status_kib("VmHWM")
        plan = prepared.memory
        res = dict(case=case, measured_mb=(peak - rss_before) * 1024 / 1e6, forecast_mb=plan.peak / 1e6,
                   parts_mb={p: plan.part(p) / 1e6 for p in ("records", "data pass", "equations", "factor",
                                                             "selected inverse", "AI-REML")},
                   nnz_forecast=plan.facts["nnz_L"], nnz_factor=m.equations.factor_nonzeros,
                   dense_forecast=plan.facts["dense_block"], method=plan.facts["method"],
                   records=plan.facts["records"], unknowns=plan.facts["unknowns"], peak_reset=reset,
                   converged=m.converged, backend=m.backend)
    Path(out).write_text(json.dumps(res))


def run(case: str, tmp: str) -> dict:
    out = os.path.join(tmp, f"{case}.json")
    proc = subprocess.run([sys.executable, __file__, "--child", case, "--child-out", out], capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(out):
        return dict(case=case, error=last_line(proc.stderr))
    return json.loads(Path(out).read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.child_out)
    rows = []
    print(f"{'case':<12} {'method':<32} {'records':>9} {'unknowns':>9} {'factor nnz (forecast/fit)':>27} "
          f"{'forecast MB':>12} {'measured MB':>12} {'ratio':>6}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            r = run(case.strip(), tmp)
            rows.append(r)
            if "error" in r:
                print(f"{case:<12} failed: {r['error']}", flush=True)
                continue
            nnz = f"{r['nnz_forecast']:,}/{r['nnz_factor']:,}"
            print(f"{case:<12} {r['method'][:32]:<32} {r['records']:>9,} {r['unknowns']:>9,} {nnz:>27} "
                  f"{r['forecast_mb']:>12,.1f} {r['measured_mb']:>12,.1f} {r['forecast_mb'] / r['measured_mb']:>6.2f}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
