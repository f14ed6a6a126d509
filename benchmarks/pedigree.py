"""Benchmark: pedigree tools and an individual-tree model (issue 4 targets).

What it measures
  ainverse   a simulated pedigree of 1,000,000 individuals (--generations, default 5, of equal
             size; each generation's parents drawn from the previous one: sires from a tenth of
             it, dams from all of it, 5% of sires unknown, so inbreeding arises from the third
             generation on).  Timed: sr.Pedigree(DataFrame) (checks, coding, order) and
             ped.ainverse() (inbreeding by Meuwissen and Luo, then Henderson's rules with Quaas'
             correction), after a warm-up on a small pedigree so that compiled code is loaded.
  tree       the simulated trial network with 210,000 trees (sparsereml.datasets.simulate_trees
             (trees=210_000)): every tree in the pedigree (half-sibs: dam = mother, sire unknown;
             full-sibs: their father), plus the mothers' own pedigree; the model
             dbh ~ Trial, random ~ Trial:Block + vm(Tree, ped), residual ~ at(Trial):units
             on the trees with a diameter.  Timed: sr.fit (A^-1 included), in a fresh process,
             after a warm-up fit on a small network; memory is the peak RSS of that fit.

Run (from the repository root):
  .venv/bin/python benchmarks/pedigree.py
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from trial_network import MIB, last_line, reset_peak_rss, status_kib  # noqa: E402


def simulate_pedigree(n: int = 1_000_000, generations: int = 5, seed: int = 1):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    per = n // generations
    sire = np.zeros(n, dtype=np.int64)
    dam = np.zeros(n, dtype=np.int64)
    for g in range(1, generations):
        lo = (g - 1) * per
        idx = np.arange(g * per, (g + 1) * per)
        sire[idx] = rng.integers(lo, lo + per // 10, per) + 1
        dam[idx] = rng.integers(lo, lo + per, per) + 1
        sire[idx[rng.random(per) < 0.05]] = 0
    return pd.DataFrame({"id": np.arange(1, n + 1), "sire": sire, "dam": dam})


def tree_data(trees: int = 210_000, seed: int = 2011):
    import pandas as pd

    from sparsereml.datasets import simulate_trees

    df, ped_df, _ = simulate_trees(seed=seed, trees=trees)
    tree_ids = "T" + df["Tree"].astype(str)
    sires = df["Father"].map(lambda f: f"F{f}" if f > 0 else "0")
    ped = pd.concat([ped_df, pd.DataFrame({"id": tree_ids, "sire": sires, "dam": "M" + df["Mother"].astype(str)})])
    data = df[df["dbh"].notna()].copy()
    data["TreeId"] = "T" + data["Tree"].astype(str)
    for col in ("Trial", "Block"):
        data[col] = data[col].astype("category")
    return data, ped


def child(what: str, args: dict, out: str) -> None:
    import sparsereml as sr

    if what == "ainverse":
        sr.Pedigree(simulate_pedigree(20_000, args["generations"])).ainverse()  # warm-up
        df = simulate_pedigree(args["n"], args["generations"])
        reset = reset_peak_rss()
        t0 = time.perf_counter()
        ped = sr.Pedigree(df)
        t1 = time.perf_counter()
        Ai = ped.ainverse()
        t2 = time.perf_counter()
        F = ped.inbreeding
        res = dict(read=t1 - t0, ainverse=t2 - t1, seconds=t2 - t0, n=len(ped), nnz=int(Ai.nnz),
                   mean_F=float(F.mean()), max_F=float(F.max()), inbred=int((F > 0).sum()),
                   peak_kib=status_kib("VmHWM"), peak_is_fit_only=reset)
    else:
        small, small_ped = tree_data(12_000, seed=1)
        sr.fit("dbh ~ Trial", "~ Trial:Block + vm(TreeId, ped)", "~ at(Trial):units", data=small,
               matrices={"ped": sr.Pedigree(small_ped)})
        data, ped_df = tree_data(args["trees"])
        reset = reset_peak_rss()
        t0 = time.perf_counter()
        ped = sr.Pedigree(ped_df)
        m = sr.fit("dbh ~ Trial", "~ Trial:Block + vm(TreeId, ped)", "~ at(Trial):units", data=data,
                   matrices={"ped": ped})
        wall = time.perf_counter() - t0
        s = m.seconds
        res = dict(seconds=wall, iterations=m.n_iterations, per_iteration=s["iterations"] / (m.n_iterations + 1),
                   setup=s["design"] + s["data_pass"] + s["analyse"], converged=m.converged, message=m.message,
                   loglik=m.loglik, nobs=m.nobs, pedigree=len(ped), equations=m.equations.to_dict(),
                   va=float(m.varcomp.loc["vm(TreeId, ped)", "component"]),
                   peak_kib=status_kib("VmHWM"), peak_is_fit_only=reset)
    Path(out).write_text(json.dumps(res))


def run(what: str, args: dict, tmp: str) -> dict:
    out = os.path.join(tmp, f"{what}.json")
    proc = subprocess.run([sys.executable, __file__, "--child", what, json.dumps(args), out],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(out):
        return dict(error=f"child failed: {last_line(proc.stderr)}")
    return json.loads(Path(out).read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--individuals", type=int, default=1_000_000)
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--trees", type=int, default=210_000)
    ap.add_argument("--only", choices=["ainverse", "tree"])
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child(a.child[0], json.loads(a.child[1]), a.child[2])
        return 0
    print(f"sparsereml pedigree benchmark, {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"command: {shlex.join(getattr(sys, 'orig_argv', [sys.executable] + sys.argv))}")
    cpu = next((ln.split(':', 1)[1].strip() for ln in open('/proc/cpuinfo') if ln.startswith('model name')), '?')
    print(f"machine: {cpu}, {os.cpu_count()} cores\n")
    lines = []
    with tempfile.TemporaryDirectory(prefix="sparsereml_pedigree_") as tmp:
        if a.only in (None, "ainverse"):
            r = run("ainverse", {"n": a.individuals, "generations": a.generations}, tmp)
            if "error" in r:
                print("ainverse:", r["error"])
            else:
                print(f"pedigree of {r['n']:,} individuals in {a.generations} generations: read and checked "
                      f"{r['read']:.2f} s, inbreeding + A^-1 {r['ainverse']:.2f} s (total {r['seconds']:.2f} s); "
                      f"A^-1 {r['nnz']:,} nonzeros; {r['inbred']:,} inbred, mean F {r['mean_F']:.5f}, "
                      f"max F {r['max_F']:.3f}; peak {r['peak_kib'] / MIB:.0f} MiB")
                lines.append(f"{'PASS' if r['seconds'] <= 5 else 'FAIL'}  A-inverse with inbreeding for "
                             f"{r['n']:,} individuals <= 5 s: {r['seconds']:.2f} s")
        if a.only in (None, "tree"):
            r = run("tree", {"trees": a.trees}, tmp)
            if "error" in r:
                print("tree model:", r["error"])
            else:
                eq = r["equations"]
                gb = r["peak_kib"] * 1024 / 1e9
                print(f"individual-tree model: {r['nobs']:,} trees with a diameter, pedigree {r['pedigree']:,} rows; "
                      f"{r['seconds']:.1f} s, {r['iterations']} iterations, {r['per_iteration']:.2f} s per "
                      f"iteration, setup {r['setup']:.1f} s; {eq['unknowns']:,} equations ({eq['absorbed']:,} "
                      f"absorbed), factor {eq['factor_nonzeros']:,} nonzeros; peak {gb:.2f} GB; logL "
                      f"{r['loglik']:.4f}; s2_A {r['va']:.2f}; {r['message'][:60]}")
                ok = r["seconds"] <= 120 and gb <= 6 and r["converged"]
                lines.append(f"{'PASS' if ok else 'FAIL'}  individual-tree model on {r['nobs']:,} trees <= 2 min, "
                             f"<= 6 GB: {r['seconds']:.1f} s, {gb:.2f} GB")
    print("\ntargets:\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
