"""Benchmark: fits at the same time share the cores (issue 13, item 6).

What it measures
  Model m2 (``dbh ~ Trial``, random ``~ Trial:Block + Mother + Trial:Mother``) on the default
  simulated trial network (184,413 records), fitted
    lone   by one process while the others wait,
    2p/4p  by two / four processes at the same moment (each its own fits, back to back),
    2t     by two threads of one process at the same moment,
    busy   by one process beside a busy loop (a Python process that only spins).
  Worker processes are started once: each simulates the data, does a warm-up fit and then waits
  (blocked on its stdin, using no CPU) for an order "fit K T": K fits on each of T threads.  All
  workers of a scenario get the order at the same moment.  Each timed fit reports its wall
  seconds and the CPU seconds of its process (getrusage, every thread; divided by T for 2t).
  Scenarios are interleaved round by round (lone, 2p, lone, 4p, lone, 2t, ...) so that a load
  from elsewhere on the machine hits all of them alike; "x lone" divides a scenario's median wall
  per fit by the median of the lone fits of the same round.  With --compare SRC a second set of
  workers runs the sources in SRC (e.g. an export of the previous commit) in the same rounds.

Run (from the repository root):
  .venv/bin/python benchmarks/parallel_fits.py                         # 3 rounds, 3 fits per worker
  .venv/bin/python benchmarks/parallel_fits.py --compare /tmp/base/src --rounds 4
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
M2 = ("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother")
WARMUP = dict(seed=1, trials=6, trees=12000, mothers=200)


def worker() -> None:
    """A worker process: data, warm-up, then one JSON line of timings per order on stdin."""
    import sparsereml as sr

    df, _ = sr.datasets.trial_network()
    small, _ = sr.datasets.trial_network(**WARMUP)
    sr.fit(*M2, data=small)
    sr.fit(*M2, data=df)
    print(json.dumps({"ready": os.getpid(), "sparsereml": str(Path(sr.__file__).parent)}), flush=True)
    for line in sys.stdin:
        _, k, t = line.split()
        rows: list = []

        def run(tag: int) -> None:
            for _ in range(int(k)):
                c0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                m = sr.fit(*M2, data=df)
                w1, c1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
                cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
                rows.append({"thread": tag, "wall": w1 - w0, "cpu": cpu / int(t), "loglik": m.loglik})

        threads = [threading.Thread(target=run, args=(i,)) for i in range(int(t))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        print(json.dumps(rows), flush=True)


class Pool:
    """Worker processes running the sources in ``src`` (None: this checkout's)."""

    def __init__(self, n: int, src: str | None, label: str):
        env = dict(os.environ)
        src = src or str(HERE.parent / "src")
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        self.label = label
        self.procs = [subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True, env=env) for _ in range(n)]
        self.where = [json.loads(p.stdout.readline())["sparsereml"] for p in self.procs]

    def run(self, procs: int, fits: int, threads: int = 1) -> list:
        """Every fit's timings when ``procs`` workers are told at once to do ``fits`` fits on
        ``threads`` threads each."""
        for p in self.procs[:procs]:
            p.stdin.write(f"fit {fits} {threads}\n")
        for p in self.procs[:procs]:
            p.stdin.flush()
        return [row for p in self.procs[:procs] for row in json.loads(p.stdout.readline())]

    def close(self) -> None:
        for p in self.procs:
            p.stdin.close()
            p.wait()


SCENARIOS = {"lone": (1, 1), "2p": (2, 1), "4p": (4, 1), "2t": (1, 2), "busy": (1, 1)}


def run_scenario(pool: Pool, name: str, fits: int) -> list:
    procs, threads = SCENARIOS[name]
    if name != "busy":
        return pool.run(procs, fits, threads)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it get going
        return pool.run(procs, fits, threads)
    finally:
        spinner.kill()
        spinner.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fits", type=int, default=3, help="fits per worker (per thread for 2t) per scenario")
    ap.add_argument("--scenarios", default="2p,4p,2t", help="of 2p,4p,2t,busy (or lone alone); a lone scenario runs before each")
    ap.add_argument("--compare", metavar="SRC", help="also run the sources in SRC, interleaved")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker()
    scenarios = args.scenarios.split(",")
    need = max(SCENARIOS[s][0] for s in scenarios + ["lone"])
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}")
    print(f"# {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"# load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:4])}")
    env = {k: v for k, v in os.environ.items() if k.startswith(("SPARSEREML_", "OMP_", "OPENBLAS_", "NUMBA_"))}
    print(f"# environment: {env or 'no thread variables set'}")
    pools = [Pool(need, None, "this")] + ([Pool(need, args.compare, "compare")] if args.compare else [])
    for pool in pools:
        print(f"# {pool.label}: {pool.where[0]}")
    rows = []
    for r in range(args.rounds):
        for s in scenarios:
            for name in dict.fromkeys(("lone", s)):  # (--scenarios lone: lone fits only)
                for pool in pools:
                    for row in run_scenario(pool, name, args.fits):
                        rows.append({"round": r, "scenario": name, "before": s, "code": pool.label, **row})
        print(f"# round {r + 1} done, load average {' '.join(Path('/proc/loadavg').read_text().split()[:4])}",
              flush=True)
    for pool in pools:
        pool.close()
    report(rows, scenarios, [p.label for p in pools])
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def report(rows: list, scenarios: list, codes: list) -> None:
    """One line per code and scenario: median wall and CPU per fit, and the ratio to the lone
    fits of the same rounds (median over rounds of the per-round ratio)."""
    print(f"\n{'code':8} {'scenario':8} {'fits':>5} {'wall s':>8} {'min':>7} {'max':>7} {'CPU s':>7} "
          f"{'x lone':>7} {'CPU x lone':>10}")
    logliks = {round(row["loglik"], 4) for row in rows}
    for code in codes:
        mine = [row for row in rows if row["code"] == code]
        for name in dict.fromkeys(["lone"] + scenarios):
            sel = [row for row in mine if row["scenario"] == name]
            ratios, cratios = [], []
            for r in sorted({row["round"] for row in mine}):
                for s in scenarios if name == "lone" else [name]:
                    lone = [x for x in mine if x["round"] == r and x["scenario"] == "lone" and x["before"] == s]
                    it = [x for x in mine if x["round"] == r and x["scenario"] == name and x["before"] == s]
                    if lone and it:
                        ratios.append(statistics.median(x["wall"] for x in it) / statistics.median(x["wall"] for x in lone))
                        cratios.append(statistics.median(x["cpu"] for x in it) / statistics.median(x["cpu"] for x in lone))
            walls = [x["wall"] for x in sel]
            print(f"{code:8} {name:8} {len(sel):5d} {statistics.median(walls):8.3f} {min(walls):7.3f} "
                  f"{max(walls):7.3f} {statistics.median(x['cpu'] for x in sel):7.3f} "
                  f"{statistics.median(ratios):7.2f} {statistics.median(cratios):10.2f}")
    print(f"\nREML logL of every fit: {sorted(logliks)}")
    print(f"# load average at end: {' '.join(Path('/proc/loadavg').read_text().split()[:4])}")


if __name__ == "__main__":
    main()
