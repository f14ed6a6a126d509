"""The first fit after installing: m2 in a fresh process with an empty kernel cache, against a
warm one and against lme4, in the same run.

Rows (each a fresh process; m2 = ``dbh ~ Trial``, random ``~ Trial:Block + Mother + Trial:Mother``
on the default network of 184,413 trees):

- ``cold``: empty numba cache (a new NUMBA_CACHE_DIR); the kernels are compiled by this
  process and ``SPARSEREML_COMPILE_PROCESSES`` - 1 workers (default: one per core).
- ``cold 1 proc``: the same with SPARSEREML_COMPILE_PROCESSES=1 (no workers).
- ``warm``: the cache the cold row filled.
- ``pip cold``/``pip warm`` (``--pip``): ``pip install --no-deps --target``
  of this tree into a temporary directory, numba's cache next to the installed sources (what a
  plain ``pip install .`` user gets).
- ``base cold``/``base warm`` (``--base SRC``): another source tree (e.g. the main branch's
  ``src``) the same way, for a before/after in one run.
- ``lme4``: a fresh ``Rscript``: ``library(lme4)`` then ``lmer`` (REML) on the same data written
  to CSV (reading it is not timed); "fit s" is lmer alone, "total s" adds loading lme4;
  ``lme4 again``: a second ``lmer`` of the same data in that session.

Columns: import s (``import sparsereml``), fit s (``sr.fit``), total s (the child process from
start to end, data simulation included), CPU s (user + system of the process and its compile
workers, from getrusage), whether the "compiling kernels" line was printed, and the logL.

    .venv/bin/python benchmarks/first_fit.py --rounds 2 --pip --base /work/main/src
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RANDOM = "~ Trial:Block + Mother + Trial:Mother"
R_CODE = r"""
t0 <- proc.time()
suppressPackageStartupMessages(library(lme4))
t1 <- proc.time()
args <- commandArgs(trailingOnly = TRUE)
dat <- read.csv(args[1])
for (v in c("Trial", "Block", "Mother")) dat[[v]] <- factor(dat[[v]])
t2 <- proc.time()
m <- suppressWarnings(suppressMessages(
  lmer(dbh ~ Trial + (1 | Trial:Block) + (1 | Mother) + (1 | Trial:Mother), data = dat, REML = TRUE)))
t3 <- proc.time()
m2 <- suppressWarnings(suppressMessages(
  lmer(dbh ~ Trial + (1 | Trial:Block) + (1 | Mother) + (1 | Trial:Mother), data = dat, REML = TRUE)))
t4 <- proc.time()
cpu <- function(a, b) sum((b - a)[c("user.self", "sys.self")])
cat(sprintf('{"load": %.3f, "fit": %.3f, "fit_cpu": %.3f, "load_cpu": %.3f, "fit2": %.3f, "fit2_cpu": %.3f, "logLik": %.6f, "version": "%s"}\n',
            (t1 - t0)[["elapsed"]], (t3 - t2)[["elapsed"]], cpu(t2, t3), cpu(t0, t1), (t4 - t3)[["elapsed"]],
            cpu(t3, t4), as.numeric(logLik(m)), as.character(packageVersion("lme4"))))
"""


def child() -> None:
    """One first fit: import, simulate, fit; times and logL as JSON on stdout."""
    t0 = time.perf_counter()
    import sparsereml as sr

    t1 = time.perf_counter()
    df, _ = sr.datasets.trial_network()
    t2 = time.perf_counter()
    m = sr.fit("dbh ~ Trial", random=RANDOM, data=df)
    t3 = time.perf_counter()
    print(json.dumps({"import": t1 - t0, "fit": t3 - t2, "loglik": m.loglik, "backend": m.backend}))


def run_child(label: str, pythonpath: str, cache: str | None) -> dict:
    env = dict(os.environ, PYTHONPATH=pythonpath)
    env.pop("NUMBA_CACHE_DIR", None)
    if cache:
        env["NUMBA_CACHE_DIR"] = cache
    if label.endswith("1 proc"):
        env["SPARSEREML_COMPILE_PROCESSES"] = "1"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True)
    total = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        return {"label": label, "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:100]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(label=label, total=total, line="compiling kernels" in proc.stderr,
               cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return out


def run_lme4(csv: str) -> list[dict]:
    """lme4's first fit in a fresh R session (loading lme4 counted in "total"), and a second fit
    of the same data in the same session ("lme4 again": what a user meets after the first)."""
    if not shutil.which("Rscript"):
        return [{"label": "lme4", "error": "Rscript not installed"}]
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as f:
        f.write(R_CODE)
    t0 = time.perf_counter()
    proc = subprocess.run(["Rscript", f.name, csv], capture_output=True, text=True)
    os.unlink(f.name)
    if proc.returncode != 0:
        return [{"label": "lme4", "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:100]}]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    first = {"label": f"lme4 {r['version']}", "import": r["load"], "fit": r["fit"], "total": r["load"] + r["fit"],
             "cpu": r["fit_cpu"] + r["load_cpu"], "line": False, "loglik": r["logLik"],
             "wall_process": time.perf_counter() - t0}
    again = {**first, "label": "lme4 again", "import": 0.0, "fit": r["fit2"], "total": r["fit2"], "cpu": r["fit2_cpu"]}
    return [first, again]


def pip_install(target: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--target", target, str(ROOT)], check=True, capture_output=True)


def fmt(r: dict) -> str:
    if "error" in r:
        return f"{r['label']:<14} {r['error']}"
    return (f"{r['label']:<14} {r['import']:8.2f} {r['fit']:8.2f} {r['total']:8.2f} {r['cpu']:8.2f}  "
            f"{'yes' if r['line'] else 'no':<5} {r['loglik']:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=1, help="run every row this many times, in turn")
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True, help="time lme4")
    ap.add_argument("--pip", action="store_true", help="also a non-editable pip install of this tree")
    ap.add_argument("--base", metavar="SRC", help="also another source tree (before/after)")
    ap.add_argument("--one-process", action=argparse.BooleanOptionalAction, default=True,
                    help="also a cold fit compiling in one process")
    args = ap.parse_args()
    if args.child:
        child()
        return
    src = str(ROOT / "src")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; backend {os.environ.get('SPARSEREML_BACKEND', 'auto')}, "
          f"SPARSEREML_DENSE_THREADS={os.environ.get('SPARSEREML_DENSE_THREADS', '')}")
    print("command: " + " ".join([Path(sys.executable).name] + sys.argv))
    print(f"load average at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "m2.csv")
        if args.peers:
            sys.path.insert(0, src)
            from sparsereml.datasets import trial_network

            df, _ = trial_network()
            out = df[["Trial", "Block", "Mother", "dbh"]].copy()
            for col in ("Trial", "Block", "Mother"):
                out[col] = out[col].astype("int64")
            out.to_csv(csv, index=False)
        if args.pip:
            pip_install(os.path.join(tmp, "site"))
        print(f"\n{'row':<14} {'import s':>8} {'fit s':>8} {'total s':>8} {'CPU s':>8}  line  logL")
        for rnd in range(args.rounds):
            caches = {name: tempfile.mkdtemp(dir=tmp) for name in ("new", "one", "base")}
            jobs = [("cold", src, caches["new"]), ("warm", src, caches["new"])]
            jobs += [("cold 1 proc", src, caches["one"])] if args.one_process else []
            site = os.path.join(tmp, "site")
            jobs += [("pip cold", site, None), ("pip warm", site, None)] if args.pip else []
            jobs += [("base cold", args.base, caches["base"]), ("base warm", args.base, caches["base"])] if args.base else []
            jobs += [("lme4", csv, None)] if args.peers else []
            for label, path, cache in jobs:
                if label == "pip cold":
                    for p in Path(site).rglob("*.nb[ic]"):
                        p.unlink()  # a fresh install in every round
                for r in run_lme4(path) if label == "lme4" else [run_child(label, path, cache)]:
                    print(fmt(r) + (f"   (round {rnd + 1})" if args.rounds > 1 else ""), flush=True)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
