"""The individual-tree model with additive and dominance relationships on the whole network (issue 17).

    PYTHONPATH=src .venv/bin/python benchmarks/dominance.py [--trials 31]

trial_network(families="all") (half-sibs, full-sibs, clones; ~198,000 trees), one individual per
genotype (a clone's ramets are one), the pedigree made from the records (parents as founders, so
the full-sib families are unrelated to each other and D^-1 is block diagonal), then
dbh ~ Trial, random Trial:Block + vm(Genotype, ped) + vm(Genotype, dom) + Trial:Mother +
and(Trial:Father), residual at(Trial):units.  Prints the time to build the pedigree and D^-1, the
fit's time and iterations, and the process's peak memory.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import sparsereml as sr  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=31)
    args = ap.parse_args()
    trees, _ = sr.datasets.trial_network(trials=args.trials, families="all")
    trees = trees.assign(Genotype=np.where(trees.Type == "clone", trees.Clone, "T" + trees.Tree.astype(str)))
    t0 = time.perf_counter()
    ped = sr.Pedigree(trees, id="Genotype", sire="Father", dam="Mother")
    dom = sr.dominance(ped, list(dict.fromkeys(trees.Genotype)))
    t1 = time.perf_counter()
    m = sr.fit("dbh ~ Trial", "~ Trial:Block + vm(Genotype, ped) + vm(Genotype, dom) + Trial:Mother"
               " + and(Trial:Father)", "~ at(Trial):units", data=trees, matrices={"ped": ped, "dom": dom})
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{len(trees):,} trees, {len(ped.ids):,} individuals; load average {os.getloadavg()[0]:.2f}")
    print(f"pedigree and D^-1: {t1 - t0:.2f} s ({dom.matrix.nnz:,} nonzeros)")
    print(f"fit: {t2 - t1:.1f} s, {m.n_iterations} iterations, converged {m.converged}; peak memory {peak:.2f} GiB")
    print(m.varcomp.loc[["vm(Genotype, ped)", "vm(Genotype, dom)"]].to_string())


if __name__ == "__main__":
    main()
