"""Benchmark: many-level fixed factors beside the m2 random terms on the default network.

What it measures
  The default network of ``sparsereml.datasets.trial_network`` (184,413 records) and
      m2      dbh ~ Trial                      random ~ Trial:Block + Mother + Trial:Mother
      cgN     dbh ~ CG   (N contemporary groups, ``sr.datasets.contemporary_groups(df, N)``), same random
      oldN    cgN through the code before issue 13 item 5: a dense X'X for the aliasing check and the
              OLS fit, the fixed effects in the last ordering group (the dense root)
      tree    dbh ~ C(Tree): one level per record, refused (ModelError) -- the time to the refusal
  Every case runs in a fresh child process: it simulates the data, warms numba's cache with a
  fit on a tiny network, resets the kernel's peak-RSS mark, then times ``sr.fit`` (best of
  --repeat).  "wall s" is that time, "cpu s" the process's user+system CPU time for it (both
  cores count: CPU time is steadier than wall time on a shared machine), "peak MiB" the peak
  resident memory of the fit with the data in memory, "root" the widest dense block of the
  factor.  Cases run one after the other, all of them --rounds times; the table shows each
  case's fastest round.

Run (from the repository root):
  .venv/bin/python benchmarks/fixed_factors.py                         # m2, cg10000, cg50000, tree
  .venv/bin/python benchmarks/fixed_factors.py --cases m2,cg2000,old2000 --rounds 2
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RANDOM = "~ Trial:Block + Mother + Trial:Mother"
WARMUP = dict(seed=1, trials=6, trees=12000, mothers=200)
MIB = 1024.0


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def formula(case: str) -> str:
    if case == "m2":
        return "dbh ~ Trial"
    if case == "tree":
        return "dbh ~ C(Tree)"
    return "dbh ~ CG"


def child(case: str, repeat: int, out: str) -> None:
    import warnings

    import sparsereml as sr

    if case.startswith("old"):  # the dense aliasing check and OLS, fixed effects in the dense root
        import sparsereml.design.fixed as fixed
        import sparsereml.reml.problem as problem

        fixed.DENSE_MAX = 10**12
        problem.WIDE_FIXED = 10**12
    warnings.simplefilter("ignore", sr.AliasWarning)
    df, _ = sr.datasets.trial_network()
    levels = int(case[2:] if case.startswith("cg") else case[3:]) if case[:2] in ("cg", "ol") else 0
    if levels:
        df["CG"] = sr.datasets.contemporary_groups(df, levels)
    small, _ = sr.datasets.trial_network(**WARMUP)
    small["CG"] = sr.datasets.contemporary_groups(small, 1200)
    sr.fit("dbh ~ CG", random=RANDOM, data=small)  # warm-up: numba's cache, wide fixed path included
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    rss_before = status_kib("VmRSS")
    best = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), cpu_seconds()
        try:
            m = sr.fit(formula(case), random=RANDOM, data=df)
            res = dict(iterations=m.n_iterations, loglik=m.loglik, rank=m.rank, equations=m.equations.unknowns,
                       root=m.equations.largest_supernode,
                       converged=m.converged, varcomp=m.varcomp.component.round(4).to_dict())
        except sr.ModelError as e:
            res = dict(refused=str(e))
        res.update(seconds=time.perf_counter() - t0, cpu=cpu_seconds() - c0)
        if best is None or res["seconds"] < best["seconds"]:
            best = res
        gc.collect()
    best.update(levels=int(df["CG"].nunique()) if levels else None, nobs=len(df), rss_before_kib=rss_before,
                peak_kib=status_kib("VmHWM"))
    Path(out).write_text(json.dumps(best))


def run_case(case: str, repeat: int, tmp: str, timeout: float) -> dict:
    out = os.path.join(tmp, f"{case}.json")
    cmd = [sys.executable, __file__, "--child", case, "--repeat", str(repeat), "--child-out", out]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f"no result within {timeout:.0f} s")
    if proc.returncode != 0 or not os.path.exists(out):
        return dict(error=f"child failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return json.loads(Path(out).read_text())


def row(case: str, r: dict) -> str:
    if "error" in r:
        return f"{case:<10} {r['error']}"
    lev = f"{r['levels']:,}" if r.get("levels") else "-"
    head = f"{case:<10} {lev:>7} {r['seconds']:>8.2f} {r['cpu']:>8.2f} {r['peak_kib'] / MIB:>9.0f}"
    if "refused" in r:
        return head + f"  refused: {r['refused'][:110]}"
    return head + f" {r['iterations']:>5} {r['rank']:>7,} {r['equations']:>9,} {r['root']:>6,} {r['loglik']:>15.4f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="m2,cg10000,cg50000,tree")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds before a case is given up")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.repeat, a.child_out)
        return
    cases = a.cases.split(",")
    results: dict = {c: [] for c in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(a.rounds):
            for c in cases:
                results[c].append(run_case(c, a.repeat, tmp, a.timeout))
                print(f"round {k + 1}: {row(c, results[c][-1])}", flush=True)
    best = {c: min(rs, key=lambda r: r.get("seconds", float("inf"))) for c, rs in results.items()}
    print(f"\n{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"best of {a.rounds} round(s) x {a.repeat}")
    print(f"{'case':<10} {'levels':>7} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} {'iter':>5} {'rank X':>7} "
          f"{'equations':>9} {'root':>6} {'logL':>15}")
    for c in cases:
        print(row(c, best[c]))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
