"""Warm fits of m2, m2b and m2c (compiled kernels cached) in this tree against another source tree,
alternating fresh processes, to check that a change to the kernels costs the fits nothing.

Each process simulates the default network, fits once to load (or compile) the kernels, then
fits ``--fits`` more times; the table gives each tree's best wall and best CPU seconds
(user + system of all threads, from getrusage) per fit over all its processes.

    .venv/bin/python benchmarks/warm_fit.py --base /path/to/other/src --rounds 3 --fits 5
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"m2": ("~ Trial:Block + Mother + Trial:Mother", None),
          "m2b": ("~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units"),
          "m2c": ("~ at(Trial):Block + Mother + Trial:Mother", None)}


def child(fits: int) -> None:
    import sparsereml as sr

    df, _ = sr.datasets.trial_network()
    out = {}
    for model, (random, residual) in MODELS.items():
        sr.fit("dbh ~ Trial", random=random, residual=residual, data=df)
        runs = []
        for _ in range(fits):
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            sr.fit("dbh ~ Trial", random=random, residual=residual, data=df)
            t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
            runs.append((t1 - t0, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime))
        out[model] = runs
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--base", required=False, help="the other tree's src directory")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fits", type=int, default=5)
    args = ap.parse_args()
    if args.child:
        child(args.fits)
        return
    trees = {"this": str(ROOT / "src")} | ({"base": args.base} if args.base else {})
    best: dict = {}
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for rnd in range(args.rounds):
        for name, src in trees.items():
            env = dict(os.environ, PYTHONPATH=src)
            proc = subprocess.run([sys.executable, __file__, "--child", "--fits", str(args.fits)], env=env,
                                  capture_output=True, text=True, check=True)
            for model, runs in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                b = best.setdefault((model, name), [float("inf"), float("inf")])
                b[0] = min(b[0], min(w for w, _ in runs))
                b[1] = min(b[1], min(c for _, c in runs))
                print(f"round {rnd + 1} {name:<5} {model:<4} wall {sorted(w for w, _ in runs)[0]:.3f} "
                      f"median {sorted(w for w, _ in runs)[len(runs) // 2]:.3f}  CPU best "
                      f"{min(c for _, c in runs):.3f}", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}\n\nmodel tree   best wall s  best CPU s  wall / base")
    for (model, name), (w, c) in sorted(best.items()):
        base = best.get((model, "base"), [w])[0]
        print(f"{model:<5} {name:<6} {w:11.3f} {c:11.3f} {w / base:11.3f}")


if __name__ == "__main__":
    main()
