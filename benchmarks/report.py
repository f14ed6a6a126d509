"""The demo's comparison report against the time of its three fits (issue 16).

    PYTHONPATH=src .venv/bin/python benchmarks/report.py [--repeat 3]

Target: the report of m2, m2b and m2c on the default network (184,413 trees) is written in at
most the time of the three fits.  Each round, in this one process (as ``sparsereml demo`` does):
the three fits, then the report as the demo writes it (`report(fits, predict=["Trial"],
functions=heritabilities)`: the models' results, then the figures drawn in forked worker processes
when cores are idle); then again three fits and the report drawn in this process alone.  Every
report is made from fresh fits (a second report of the same fits finds their results' parts
cached).  The first round includes matplotlib's import and font set-up, which a user's first
report pays: it is shown and left out of the verdict.  Ratios are within one round: the machine
is shared.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import sparsereml as sr  # noqa: E402
from sparsereml.demo import MODELS, heritabilities  # noqa: E402
from sparsereml.report_figures import usable_processes  # noqa: E402
from sparsereml.reporting import report  # noqa: E402


def one_round(df, truth, out: Path, processes: int | None = None) -> dict:
    """The three fits, then the report as the demo writes it (``processes=1``: drawn in this
    process alone).  A round is what a user meets: the report's results are built from fresh fits."""
    t0 = time.perf_counter()
    fits = {n: sr.fit(fx, rnd, res, data=df) for n, (fx, rnd, res) in MODELS.items()}
    t1 = time.perf_counter()
    report(fits, out / "report.html", predict=["Trial"], functions=lambda m: heritabilities(m, truth),
           processes=processes)
    t2 = time.perf_counter()
    return {"fits": t1 - t0, "report": t2 - t1, "MB": (out / "report.html").stat().st_size / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    df, truth = sr.datasets.trial_network()
    print(f"default network: {len(df):,} trees; drawing processes: {usable_processes()}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'round':>5} {'drawing':>8} {'fits s':>8} {'report s':>9} {'report/fits':>12} {'MB':>5}")
    ratios = {"forked": [], "one process": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat):
            for how, processes in (("forked", None), ("one process", 1)):
                r = one_round(df, truth, Path(tmp), processes)
                if k or args.repeat == 1:  # the first round pays matplotlib's import: shown, not counted
                    ratios[how].append(r["report"] / r["fits"])
                print(f"{k + 1:>5} {how:>8} {r['fits']:8.2f} {r['report']:9.2f} {r['report'] / r['fits']:12.2f} "
                      f"{r['MB']:5.1f}")
    for how, rs in ratios.items():
        print(f"{how}: report/fits over the warm rounds: best {min(rs):.2f}, median {statistics.median(rs):.2f}")
    rs = ratios["forked"]
    verdict = "PASS" if statistics.median(rs) <= 1.0 else "FAIL"
    print(f"{verdict}  report (as the demo writes it) <= the three fits' time, median of warm rounds: "
          f"{statistics.median(rs):.2f}x; load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
