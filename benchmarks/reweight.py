"""Re-forming the equations for new record weights (REMLProblem.reweight) against building the
problem afresh, on the default trial network: what each outer iteration of a GLMM or a profile
likelihood pays.  Prints the best of ``--repeat`` for each step.

    .venv/bin/python benchmarks/reweight.py --repeat 3
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import sparsereml as sr

MODELS = {"m2": ("~ Trial:Block + Mother + Trial:Mother", None),
          "m2b": ("~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units")}


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    df, _ = sr.datasets.trial_network()
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(df))
    print(f"{len(df):,} records\n\nmodel  build design  new REMLProblem  reweight(w)  one evaluation  fit (reweighted)")
    for name, (random, residual) in MODELS.items():
        spec = sr.model_spec("dbh ~ Trial", random, residual)
        design = sr.build_design(spec, df)
        problem = sr.REMLProblem(design)  # warm-up: kernels loaded
        t_design = best(lambda: sr.build_design(spec, df), args.repeat)
        t_problem = best(lambda: sr.REMLProblem(design), args.repeat)
        t_reweight = best(lambda: problem.reweight(w), args.repeat)
        theta = sr.start_values(problem)[0]
        t_eval = best(lambda: problem.evaluate(theta), args.repeat)
        t_fit = best(lambda: sr.ai_reml(problem), args.repeat)
        print(f"{name:<6} {t_design:12.3f} {t_problem:16.3f} {t_reweight:12.3f} {t_eval:15.3f} {t_fit:17.3f}")


if __name__ == "__main__":
    main()
