"""Benchmark (issue 18, speed): binary GLMMs (survival) on the trial network against glmer and glmmTMB.

What it measures
  Data: ``sparsereml.datasets.trial_network(survival=True)`` (seed 2011): every planted half-sib
  tree (190,143 on the default network; ``--trees N`` simulates a smaller one, at least 600 trees
  a trial: 17,809 records at the least) with a 0/1
  ``survival`` column from a probit liability with known truth (``truth["survival"]``: block 0.08,
  mother 0.12 on A, Trial:Mother 0.04, residual 1).  Models (fixed ``survival ~ Trial``, Trial a
  factor):
    mother  random ~ Trial:Block + Mother
    vm      random ~ Trial:Block + vm(MotherId, ped)   (MotherId = "M<m>", ped = the mothers and
                                                        their grandparents, sr.Pedigree of
                                                        simulate_trees()'s pedigree)
  each with the probit link (the issue's target) and the logit link (``--links``).  Trial:Mother
  is not in the models: its variance goes to the residual, so the expected estimates are the
  truth / 1.04 (probit: the residual is fixed at 1).

  sparsereml (``sr.fit(..., family=sr.glmm.Binomial(link))``, the Laplace approximation):
    cold   a fresh process with an empty numba cache (a new NUMBA_CACHE_DIR), run first: the first
           fit of each model compiles every kernel it needs (import and simulation not counted),
           then the first model again (warm, in that process)
    first  the same in a fresh process with the cache filled (run after this process's warm-up)
    warm   this process, after one warm-up fit of every model and link: best of --repeat
           interleaved rounds (every model and link in turn, so a change in the machine's speed
           hits all alike), and --repeat more after the peers when they ran (they take hours);
           the stage times (m.seconds: design, equations, start, iterations,
           information) are that fit's.
  Peers (``Rscript benchmarks/glmm_peers.R``, data as a CSV in a temporary directory; each fit
  in its own Rscript process under a time limit (``--peer-timeout``; a time-out is reported as
  "> N s", N the seconds the timed fit had run when the process was stopped), after a small
  warm-up fit; reading the CSV is not timed):
    glmer     lme4::glmer, nAGQ = 1 (Laplace), glmerControl() defaults, stages timed
    glmerb    lme4::glmer, nAGQ = 1, glmerControl(optimizer = "bobyqa", calc.derivs = FALSE): the
              settings of lme4's performance vignette (lmerperf) for large models ("fast")
    glmer0    lme4::glmer, nAGQ = 0: NOT the Laplace fit (beta inside PIRLS, only theta optimised)
    glmmTMB   glmmTMB::glmmTMB, ML (Laplace with the observed information, as sparsereml)
  By default all four for probit (``--peer-tools``) and glmer0 and glmmTMB for logit
  (``--logit-peer-tools``): glmer nAGQ = 1 has 33 top-level parameters here (2 variances and 31
  fixed effects, all in its derivative-free optimiser) and does not finish within 30 minutes on
  the default network with either control.
  vm for the peers: a known covariance is declared through a hand-built Z = Z_individual L,
  A = L L' (Henderson's L = T D^(1/2), pedigreemm's construction; see glmm_peers.R).
  Each peer is reported by its best of --rounds rounds.  logL: the Laplace log-likelihood with
  constants.  For the logit link glmer, glmmTMB and sparsereml maximise the same function and the
  logLs should agree to ~1e-3; for probit glmer puts the expected (Fisher) weights in the Laplace
  log-determinant, glmmTMB and sparsereml the observed information (the exact Laplace
  approximation; tests/glmm/test_reference.py), so there glmmTMB is the reference for logL and
  glmer's differs.
  Target: probit, mother and vm, sparsereml >= 20x faster than glmer (nAGQ = 1) in the same run.

Run (from the repository root):
  PYTHONPATH=src .venv/bin/python benchmarks/glmm.py --trees 20000 --peer-tools glmer0,glmmTMB   # quick try
  PYTHONPATH=src .venv/bin/python benchmarks/glmm.py --repeat 3               # the default network (~3 h)
  PYTHONPATH=src .venv/bin/python benchmarks/glmm.py --no-peers --no-cold     # sparsereml only
Options: --models mother,vm  --links probit,logit  --peer-tools glmer,glmerb,glmer0,glmmTMB
  --logit-peer-tools glmer0,glmmTMB  --peer-timeout SECONDS (per Rscript process, default 1800)
  --rounds N (peers)  --json PATH.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run_header import print_header

HERE = Path(__file__).resolve().parent
FIXED = "survival ~ Trial"
MODELS = {"mother": "~ Trial:Block + Mother", "vm": "~ Trial:Block + vm(MotherId, ped)"}
GENETIC = {"mother": "Mother", "vm": "vm(MotherId, ped)"}
TOOLS = ("glmer", "glmerb", "glmer0", "glmmTMB")
TOOL_LABEL = {"glmer": "glmer nAGQ=1", "glmerb": "glmer nAGQ=1 fast", "glmer0": "glmer nAGQ=0 (*)",
              "glmmTMB": "glmmTMB"}
LOGL_TOL = 0.01  # logL: sparsereml against a peer that maximises the same Laplace likelihood
TM_FOLD = 1.04  # 1 + Trial:Mother's 0.04: the probit residual the omitted term joins


def load(trees: int | None):
    """The survival data, the truth and the pedigree of the mothers (ids M<m>)."""
    from sparsereml.datasets import simulate_trees, trial_network

    kw = {} if trees is None else {"trees": trees}
    df, truth = trial_network(survival=True, **kw)
    _, ped_df, _ = simulate_trees(**kw)
    df["MotherId"] = "M" + df["Mother"].astype(str)
    return df, truth, ped_df


def fit(df, ped, model: str, link: str):
    import sparsereml as sr

    t0 = time.perf_counter()
    m = sr.fit(FIXED, MODELS[model], data=df, family=sr.glmm.Binomial(link), factors=["Trial"],
               matrices={"ped": ped} if model == "vm" else None)
    return time.perf_counter() - t0, m


def summary(secs: float, m, model: str) -> dict:
    vc = m.varcomp
    return dict(seconds=secs, iterations=int(m.n_iterations), loglik=float(m.loglik), converged=bool(m.converged),
                stages={k: float(v) for k, v in m.seconds.items()},
                variances={k: float(v) for k, v in vc["component"].items() if k != "units"},
                std_errors={k: float(v) for k, v in vc["std.error"].items() if k != "units"})


CUMULATIVE = [  # (file suffix, function): the stages of a GLMM fit worth a total of their own
    ("glmm/fit.py", "fit_glmm"), ("reml/optimizer.py", "ai_reml"), ("glmm/optimize.py", "laplace_fit"),
    ("glmm/fit.py", "laplace_information"), ("glmm/laplace.py", "mode"), ("glmm/laplace.py", "gradient"),
    ("glmm/laplace.py", "information"), ("reml/problem.py", "evaluate"), ("reml/problem.py", "reweight"),
    ("linalg/factor.py", "factorize"), ("linalg/factor.py", "selected_inverse"),
    ("glmm/families.py", "derivatives"), ("glmm/laplace.py", "_record_quadratic"),
]


def profiled_fit(df, ped, model: str, link: str) -> dict:
    import cProfile
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    secs, _ = fit(df, ped, model, link)
    pr.disable()
    stats = pstats.Stats(pr).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}

    def name(k):
        f = k[0]
        f = f.split("/sparsereml/", 1)[1] if "/sparsereml/" in f else os.path.basename(f)
        return f"{f}:{k[1]}({k[2]})"

    own = sorted(stats.items(), key=lambda kv: -kv[1][2])[:15]
    cum = [(k, v) for target in CUMULATIVE for k, v in stats.items()
           if k[0].endswith(target[0]) and k[2] == target[1]]
    return {"seconds": secs,
            "own": [(v[1], round(v[2], 4), round(v[3], 4), name(k)) for k, v in own],
            "cumulative": [(v[1], round(v[2], 4), round(v[3], 4), name(k)) for k, v in cum]}


# ---- child process: the first fits of a fresh process -----------------------------------------
def child(trees: int | None, links: list[str], models: list[str]) -> None:
    t0 = time.perf_counter()
    import sparsereml as sr

    t1 = time.perf_counter()
    df, _, ped_df = load(trees)
    ped = sr.Pedigree(ped_df)
    out = {"import": t1 - t0, "fits": []}
    link = links[0]
    for model in models + models[:1]:  # the first of each model, then the first model again (warm)
        secs, m = fit(df, ped, model, link)
        out["fits"].append(dict(model=model, link=link, **summary(secs, m, model)))
    print("CHILD_JSON " + json.dumps(out))


def run_child(args, cache: str | None) -> dict:
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)
    if cache:
        env["NUMBA_CACHE_DIR"] = cache
    cmd = [sys.executable, __file__, "--child", "--links", args.links, "--models", args.models]
    cmd += ["--trees", str(args.trees)] if args.trees else []
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("CHILD_JSON ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
    out = json.loads(lines[-1].split(" ", 1)[1])
    out.update(process=time.perf_counter() - t0,
               compiling=[ln.strip() for ln in proc.stderr.splitlines() if "compiling" in ln])
    return out


# ---- the R peers ------------------------------------------------------------------------------
def run_peer(tmp: str, csv: str, ped_csv: str, tool: str, model: str, link: str, timeout: float) -> dict:
    out = os.path.join(tmp, f"{tool}_{model}_{link}.json")
    cmd = ["Rscript", str(HERE / "glmm_peers.R"), csv, tool, model, link, out] + ([ped_csv] if model == "vm" else [])
    t0 = time.perf_counter()
    # its own session, so that a time-out ends R and anything it started (the group), nothing else
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        started = out + ".started"  # written by R just before the timed fit
        ran = time.time() - os.path.getmtime(started) if os.path.exists(started) else 0.0
        return {"timeout": ran, "limit": timeout, "process": time.perf_counter() - t0}
    if proc.returncode != 0 or not os.path.exists(out):
        return {"error": f"Rscript failed: {(stderr.strip().splitlines() or [''])[-1][:200]}"}
    res = json.loads(Path(out).read_text())
    res["process"] = time.perf_counter() - t0
    return res


def fmt_vars(v: dict, model: str) -> str:
    return f"{v.get('Trial:Block', math.nan):8.4f} {v.get(GENETIC[model], math.nan):8.4f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trees", type=int, default=None,
                    help="trial_network(trees=N): a smaller network (at least 600 trees a trial: ~18,000 records)")
    ap.add_argument("--models", default="mother,vm")
    ap.add_argument("--links", default="probit,logit", help="sparsereml's links (the first is the cold fits')")
    ap.add_argument("--repeat", type=int, default=3, help="warm rounds after the warm-up fits; best per row")
    ap.add_argument("--cold", action=argparse.BooleanOptionalAction, default=True,
                    help="the first fits in fresh processes (empty and filled numba cache)")
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True, help="the R peers (Rscript)")
    ap.add_argument("--peer-tools", default=",".join(TOOLS), help="R peers of the probit fits")
    ap.add_argument("--logit-peer-tools", default="glmer0,glmmTMB",
                    help="R peers of the logit fits (glmer nAGQ=1 is left out by default: it does not "
                         "finish within the limit on the default network, and glmmTMB checks the logL)")
    ap.add_argument("--peer-timeout", type=float, default=1800.0, help="seconds per R fit (process)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of the peers; best round per peer")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True,
                    help="one more warm fit of the first model and link under cProfile: its main functions")
    ap.add_argument("--json", help="also save the numbers to this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    models, links = args.models.split(","), args.links.split(",")
    if args.child:
        child(args.trees, links, models)
        return 0

    import numpy as np
    import sparsereml as sr

    date, command = print_header("sparsereml GLMM benchmark (issue 18)")

    # the first fits of a fresh process: with an empty numba cache (before anything else), and with
    # the cache filled (after this process's warm-up fits, which fill it)
    cold = {}
    if args.cold:
        with tempfile.TemporaryDirectory(prefix="sparsereml_glmm_numba_") as cache:
            cold["cold"] = run_child(args, cache)

    df, truth, ped_df = load(args.trees)
    ped = sr.Pedigree(ped_df)
    st = truth["survival"]
    print(f"data: trial_network(survival=True{'' if args.trees is None else f', trees={args.trees}'}), seed 2011: "
          f"{len(df):,} trees, {df['Trial'].nunique()} trials, {df.groupby(['Trial', 'Block'], observed=True).ngroups} "
          f"Trial:Block, {df['Mother'].nunique():,} mothers, pedigree {len(ped_df):,} (mothers + grandparents); "
          f"survival {df['survival'].mean():.3f} ({st['n_dead']:,} dead)\n")

    rows = [(model, link) for model in models for link in links]
    for model, link in rows:  # warm-up
        fit(df, ped, model, link)
    if args.cold:
        cold["first"] = run_child(args, None)
    best: dict = {}
    all_seconds: dict = {key: [] for key in rows}

    def warm_rounds() -> None:
        for _ in range(max(1, args.repeat)):
            for key in rows:
                secs, m = fit(df, ped, *key)
                all_seconds[key].append(round(secs, 3))
                if key not in best or secs < best[key]["seconds"]:
                    best[key] = summary(secs, m, key[0])

    warm_rounds()

    peers: dict = {}
    peer_rows = []
    if args.peers:
        if not shutil.which("Rscript"):
            print("peers: Rscript not found (not installed)\n")
        else:
            tools = {"probit": args.peer_tools, "logit": args.logit_peer_tools}
            peer_rows = [(model, link, tool) for model in models for link in links
                         for tool in tools[link].split(",") if tool]
            with tempfile.TemporaryDirectory(prefix="sparsereml_glmm_") as tmp:
                csv, ped_csv = os.path.join(tmp, "survival.csv"), os.path.join(tmp, "pedigree.csv")
                out = df[["Trial", "Block", "Mother", "survival"]].copy()
                for col in ("Trial", "Block", "Mother"):
                    out[col] = out[col].astype("int64")
                out.to_csv(csv, index=False)
                ped_df.to_csv(ped_csv, index=False)
                for _ in range(max(1, args.rounds)):
                    for key in peer_rows:
                        r = run_peer(tmp, csv, ped_csv, key[2], key[0], key[1], args.peer_timeout)
                        print(f"  [{time.strftime('%H:%M:%S')}] {key[2]} {key[0]} {key[1]}: "
                              + (f"{r['seconds']:.1f} s" if "seconds" in r else
                                 f"> {r['timeout']:.0f} s (time-out)" if "timeout" in r else r["error"]),
                              flush=True)
                        old = peers.get(key)
                        if (old is None or ("seconds" in r and r["seconds"] < old.get("seconds", math.inf))
                                or ("timeout" in r and r["timeout"] > old.get("timeout", math.inf))):
                            peers[key] = r
            print()

    if peers:  # the peers take hours: the warm rounds again, so that sparsereml meets the same machine
        warm_rounds()

    # ---- the table --------------------------------------------------------------------------------
    header = (f"{'model':<7} {'link':<7} {'tool':<17} {'seconds':>9} {'x sr':>7} {'iter':>7} {'logL':>15} "
              f"{'dlogL':>9} {'Tr:Block':>8} {'mother':>8}")
    print(header + "\n" + "-" * len(header))
    verdict = []
    for model in models:
        for link in links:
            ours = best.get((model, link))
            if ours:
                ll = f"{ours['loglik']:.3f}" + ("" if ours["converged"] else "*")
                print(f"{model:<7} {link:<7} {'sparsereml':<17} {ours['seconds']:>9.2f} {1:>7.2f} "
                      f"{ours['iterations']:>7d} {ll:>15} {'':>9} {fmt_vars(ours['variances'], model)}")
            for tool in TOOLS:
                r = peers.get((model, link, tool))
                if r is None:
                    continue
                name = TOOL_LABEL[tool] + (f" {r['version']}" if "version" in r and tool == "glmmTMB" else "")
                if "timeout" in r:
                    print(f"{'':<7} {'':<7} {name:<17} {'> ' + format(r['timeout'], '.0f'):>9} "
                          f"{'> ' + format(r['timeout'] / ours['seconds'], '.0f') if ours else '':>7}  "
                          f"(stopped at the {r['limit']:.0f} s limit of the Rscript process)")
                    continue
                if "error" in r:
                    print(f"{'':<7} {'':<7} {name:<17} {r['error']}")
                    continue
                ratio = r["seconds"] / ours["seconds"] if ours else math.nan
                dll = ours["loglik"] - r["logLik"] if ours else math.nan
                bad = "*" if r.get("messages") else ""
                ev = r["evaluations"]
                ev = "/".join(map(str, ev)) if isinstance(ev, list) else str(ev)  # glmmTMB: function/gradient
                print(f"{'':<7} {'':<7} {name:<17} {r['seconds']:>9.2f} {ratio:>7.1f} {ev:>7} "
                      f"{r['logLik']:>14.3f}{bad:1} {dll:>+9.3f} {fmt_vars(r['variances'], model)}")
            if link == "probit" and ours and args.peers:
                r = peers.get((model, link, "glmer"))
                if r and ("seconds" in r or "timeout" in r):
                    g = r.get("seconds", r.get("timeout"))
                    ratio = g / ours["seconds"]
                    sign = "> " if "timeout" in r else ""
                    status = "PASS" if ratio >= 20 else "OPEN" if "timeout" in r else "FAIL"
                    verdict.append(f"{status}  probit, {MODELS[model].strip('~ ')}: "
                                   f"glmer {'> ' if 'timeout' in r else ''}{g:.1f} s / sparsereml "
                                   f"{ours['seconds']:.2f} s = {sign}{ratio:.1f}x (target >= 20x)")
    print(f"\nseconds: sparsereml's sr.fit, warm, best of {len(all_seconds[rows[0]])} interleaved rounds"
          f"{' (half before the peers, half after)' if peers else ''}; the peers' the timed "
          f"fit in R (best of {args.rounds} round(s); limit {args.peer_timeout:.0f} s per Rscript process).  x sr: seconds / "
          f"sparsereml's (same model and link).  iter: sparsereml's outer iterations, the peers' objective "
          f"evaluations.  dlogL = sparsereml - peer.  Tr:Block, mother: the variances (mother = Mother or "
          f"vm(MotherId, ped)).  (*) nAGQ=0 is not the Laplace fit: its logL is the Laplace logL at its own "
          f"estimates (beta from PIRLS), lower than the maximum.  fast: glmerControl(optimizer = 'bobyqa', "
          f"calc.derivs = FALSE) (lme4's lmerperf vignette).  * after a logL: convergence warnings (below).")
    for key, r in peers.items():
        if r.get("messages"):
            print(f"  {key[2]} {key[0]} {key[1]}: " + "; ".join(r["messages"])[:300])
    agree = []
    for (model, link, tool), r in peers.items():
        ours = best.get((model, link))
        if not ours or "logLik" not in r or tool == "glmer0":
            continue
        d = ours["loglik"] - r["logLik"]
        same = tool == "glmmTMB" or link == "logit"  # glmer's probit objective is another approximation
        status = ("OK   " if abs(d) <= LOGL_TOL else "CHECK") if same else "info "
        agree.append(f"{status} logL {model} {link}: sparsereml - {TOOL_LABEL[tool]} = {d:+.2e}"
                     + ("" if same else " (glmer's probit Laplace uses Fisher weights in log|H|: "
                                        "not the same function)"))
    if agree:
        print(f"\nlogL agreement (tolerance {LOGL_TOL:g}):\n" + "\n".join(agree))
    if verdict:
        print("\n" + "\n".join(verdict))

    # ---- glmer's stages -------------------------------------------------------------------------------
    staged = [(k, r) for k, r in peers.items() if r.get("stages")]
    if staged:
        print("\nglmer's time: setup (glFormula + devfun), stage 1 (nAGQ=0, bobyqa on theta), stage 2 "
              "(nAGQ=1, Nelder-Mead on theta and beta, + the finite-difference derivatives of the convergence check)")
        for (model, link, tool), r in staged:
            s = r["stages"]
            print(f"  {tool:<7} {model:<7} {link:<7} setup {s['setup']:7.2f}  stage 1 {s['stage1']:7.2f}  "
                  f"stage 2 {s['stage2']:8.2f}  ({r['evaluations']} evaluations)")

    # ---- where sparsereml's time goes ---------------------------------------------------------------------
    print("\nsparsereml, where the time goes (m.seconds of the best warm fit; s/iter = iterations / iter):")
    names = ["design", "equations", "start", "iterations", "information"]
    print(f"  {'model':<7} {'link':<7} " + " ".join(f"{n:>11}" for n in names) + f" {'total':>8} {'iter':>5} {'s/iter':>7}")
    for (model, link), r in best.items():
        s = r["stages"]
        print(f"  {model:<7} {link:<7} " + " ".join(f"{s.get(n, 0.0):>11.3f}" for n in names)
              + f" {s['total']:>8.3f} {r['iterations']:>5d} {s['iterations'] / max(r['iterations'], 1):>7.3f}")

    profile = None
    if args.profile:
        profile = profiled_fit(df, ped, *rows[0])
        print(f"\nsparsereml under cProfile, {rows[0][0]} {rows[0][1]} ({profile['seconds']:.2f} s with the "
              f"profiler): the functions with the most time of their own (numba kernels and LAPACK count as "
              f"their caller's), then selected totals (cumulative)")
        print(f"  {'calls':>6} {'own s':>7} {'total s':>8}  function")
        for r in profile["own"]:
            print(f"  {r[0]:>6} {r[1]:>7.3f} {r[2]:>8.3f}  {r[3]}")
        print("  --")
        for r in profile["cumulative"]:
            print(f"  {r[0]:>6} {r[1]:>7.3f} {r[2]:>8.3f}  {r[3]}")

    if cold:
        print("\nsparsereml, first fits in a fresh process (" + links[0] + "; import and simulation not counted):")
        for label, c in cold.items():
            if "error" in c:
                print(f"  {label:<6} {c['error']}")
                continue
            parts = [f"{f['model']}{' again' if i == len(c['fits']) - 1 else ''} {f['seconds']:.2f} s "
                     f"(design {f['stages']['design']:.2f}, start {f['stages']['start']:.2f}, "
                     f"iterations {f['stages']['iterations']:.2f})" for i, f in enumerate(c["fits"])]
            print(f"  {label:<6} " + "; ".join(parts))
            print(f"         import {c['import']:.2f} s, process {c['process']:.1f} s"
                  + (f"; stderr: {' | '.join(c['compiling'])}" if c["compiling"] else "; no compiling line"))
        if best.get((models[0], links[0])):
            print(f"  warm   {models[0]} {best[(models[0], links[0])]['seconds']:.2f} s (the table's)")

    # ---- estimates against the truth ------------------------------------------------------------------------
    print(f"\nestimates against the truth (liability scale, residual 1).  truth: the simulation's variance; "
          f"Trial:Mother's {st['sigma2_trial_mother']} is not in the models and joins the residual, so the "
          f"model's scale is 1 + {st['sigma2_trial_mother']} and 'expected' = truth / {TM_FOLD:g}; 'realised' = "
          f"the variance of the simulated effects themselves / {TM_FOLD:g} (what these data can show); z = "
          f"(estimate - realised) / s.e.  ML (Laplace) variances are biased low by about the share of "
          f"fixed effects: Trial:Block by ~{df['Trial'].nunique()} trial means / "
          f"{df.groupby(['Trial', 'Block'], observed=True).ngroups} blocks.  logit rows x 3/pi^2 (logistic "
          f"residual variance pi^2/3; a rough conversion).")
    realised = {"Trial:Block": np.var(list(st["block_effect"].values())),
                "mother": np.var(list(st["mother_effect"].values()))}
    truths = {"Trial:Block": st["sigma2_block"], "mother": st["sigma2_mother"]}
    print(f"  {'model':<7} {'link':<7} {'term':<18} {'truth':>7} {'expected':>9} {'realised':>9} {'estimate':>9} "
          f"{'s.e.':>7} {'z':>6}")
    for (model, link), r in best.items():
        for term, key in (("Trial:Block", "Trial:Block"), (GENETIC[model], "mother")):
            est, se = r["variances"][term], r["std_errors"][term]
            scale = 1.0 if link == "probit" else 3.0 / math.pi ** 2
            real = realised[key] / TM_FOLD
            print(f"  {model:<7} {link:<7} {term:<18} {truths[key]:>7.3f} {truths[key] / TM_FOLD:>9.4f} "
                  f"{real:>9.4f} {est * scale:>9.4f} {se * scale:>7.4f} {(est * scale - real) / (se * scale):>+6.1f}")

    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(
            date=date, command=command, trees=args.trees, records=len(df),
            sparsereml={f"{m}/{lk}": r for (m, lk), r in best.items()},
            sparsereml_rounds={f"{m}/{lk}": v for (m, lk), v in all_seconds.items()},
            peers={"/".join(k): r for k, r in peers.items()}, cold=cold, profile=profile, targets=verdict), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
