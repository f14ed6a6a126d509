"""Where a fit's time goes: m2 (or m2b) on the default trial network, by stage and by kernel.

Wraps a timer around the engine's main functions (and the LAPACK calls of the dense root),
does three warm-up fits, then times ``--fits`` fits and prints the fit's own stage times
(``FittedModel.seconds``, best of the fits) and, per wrapped function, its calls per fit, the
median time per call and the total per fit.  The wrappers add a few microseconds per call.

Run (from the repository root):
  .venv/bin/python benchmarks/profile_fit.py            # m2, 10 timed fits
  .venv/bin/python benchmarks/profile_fit.py --model m2b --fits 5
"""
from __future__ import annotations

import argparse
import collections
import functools
import time

import numpy as np

import sparsereml as sr
from sparsereml import mme
from sparsereml.datasets import trial_network
from sparsereml.linalg import absorb, factor, kernels, selinv, star
from sparsereml.reml import problem

RANDOM = "~ Trial:Block + Mother + Trial:Mother"
RESIDUAL = {"m2": None, "m2b": "~ at(Trial):units"}
WRAPPED = [
    (problem.REMLProblem, ["evaluate", "derivatives"]),
    (mme.MixedModelEquations, ["assemble", "matvec", "h_products"]),
    (absorb.AbsorbPlan, ["reduce"]),
    (star.StarFactor, ["factorize"]),
    (star, ["in_parallel"]),
    (factor.SparseLDL, ["solve", "inverse_quadratic", "selected_inverse", "_join_pattern"]),
    (selinv, ["selinv"]),
    (kernels, ["gather_pattern"]),
]


def wrap(owner, name: str, label: str, acc: dict) -> None:
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        acc[label].append(time.perf_counter() - t0)
        return out

    setattr(owner, name, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(RESIDUAL), default="m2")
    ap.add_argument("--fits", type=int, default=10)
    args = ap.parse_args()
    acc: dict = collections.defaultdict(list)
    for owner, names in WRAPPED:
        for name in names:
            wrap(owner, name, f"{getattr(owner, '__name__', '?').split('.')[-1]}.{name}", acc)
    wrap(star.lapack, "dpotrf", "LAPACK dpotrf (root)", acc)
    wrap(factor.lapack, "dpotri", "LAPACK dpotri (root)", acc)
    df, _ = trial_network(seed=2011, trials=31, trees=198_000, mothers=1100)
    fit = functools.partial(sr.fit, "dbh ~ Trial", random=RANDOM, residual=RESIDUAL[args.model], data=df)
    for _ in range(3):
        fit()
    acc.clear()
    stages = collections.defaultdict(list)
    for _ in range(args.fits):
        for key, value in fit().seconds.items():
            stages[key].append(value)
    print(f"{args.model} on the default network, best of {args.fits} fits (ms):")
    print("  " + ", ".join(f"{k} {1e3 * min(v):.1f}" for k, v in stages.items()))
    print(f"\n{'function':38s} {'calls/fit':>9s} {'ms/call (median)':>17s} {'ms/fit':>8s}")
    for label, times in sorted(acc.items(), key=lambda kv: -sum(kv[1])):
        t = np.asarray(times)
        print(f"{label:38s} {t.size / args.fits:9.1f} {1e3 * np.median(t):17.2f} {1e3 * t.sum() / args.fits:8.1f}")


if __name__ == "__main__":
    main()
