"""Benchmark (issue 15): Wald tests, predictions with SEDs and Cullis' heritability after an m2 fit,
against the fit's own time, and with --peers against lmerTest / pbkrtest / emmeans in the same run.

What it measures
  m2 = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother") on trial networks from
  ``sparsereml.datasets.trial_network``.  A size is a number of records (measured half-sib trees):
  184413 is the default network (seed 2011, 31 trials, 198,000 trees, 1,100 mothers); another size
  keeps its seed, 31 trials and 1,100 mothers and scales the simulated trees until the records are
  within 1% of it (the mixed-model equations keep about the same size; only the records change);
  below 18,000 records the trials are cut to size / 640 too (the simulator puts 600 trees or more
  in every trial).

  Each size runs in a fresh child process: it simulates the network, loads the compiled kernels
  (a fit and every step below on a small network), then, --repeat times, for each step: a fresh
  fit (timed: "fit"), then the step alone, timed, on that fit (the first Wald call forms the
  quantities the later calls share, so every step is the first call on its own fit):
    wald kr            m.wald(ddf="kr")              Kenward-Roger F tests (incremental: Trial after the intercept)
    wald satterthwaite m.wald(ddf="satterthwaite")
    predict Trial+sed  m.predict("Trial").sed        31 trial means and their 31 x 31 SED matrix
    predict Mother     m.predict("Mother", sed=False).avsed   1,100 mothers' BLUPs, SED summary
    Cullis H2          m.heritability_cullis("Mother")
  Seconds are each step's best of --repeat; "x fit" divides by the best of all the fits of the
  size (5 x --repeat fits).  Targets (issue 15): wald kr and predict Trial + sed <= 2x the fit,
  predict Mother avsed <= 3x.

  --peers: the same network is written to a temporary CSV and benchmarks/inference_peers.R runs
  on it (each R step in its own Rscript under `timeout --peer-timeout` and `ulimit -v
  --peer-memory-gib`; see that file): lmerTest::lmer (lme4's fit + lmerTest's derivatives),
  anova type 1 Satterthwaite and Kenward-Roger (pbkrtest), emmeans(~ Trial) + pairs with KR and
  Satterthwaite df.  R's steps run once (no best of N).  The table puts each beside ours, and a
  second table compares Trial's F and denDF and the trial means' SEDs.

Run (from the repository root):
  .venv/bin/python benchmarks/inference.py                          # default network, sparsereml only
  .venv/bin/python benchmarks/inference.py --sizes 20000 60000 184413 --peers --repeat 2
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = dict(seed=2011, trials=31, trees=198_000, mothers=1100)
DEFAULT_RECORDS = 184_413
WARMUP = dict(seed=1, trials=6, trees=12000, mothers=200)
FIXED, RANDOM = "dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother"
STEPS = ["wald kr", "wald satterthwaite", "predict Trial+sed", "predict Mother avsed", "Cullis H2"]
TARGETS = {"wald kr": 2.0, "predict Trial+sed": 2.0, "predict Mother avsed": 3.0}
# each of our rows beside the R step that does the same (None: R has no counterpart)
PEER_OF = {"fit": "fit", "wald kr": "kr", "wald satterthwaite": "sat", "predict Trial+sed": "emm_sat",
           "predict Mother avsed": None, "Cullis H2": None}
PEER_NAME = {"fit": "lmerTest::lmer", "kr": "anova KR (pbkrtest)", "sat": "anova Satterthwaite",
             "emm_sat": "emmeans+pairs, Satt. df", "emm_kr": "emmeans+pairs, KR df"}


def network(size: int) -> tuple:
    """The trial network with about ``size`` records (the default network for 184413)."""
    from sparsereml.datasets import trial_network

    params = dict(DEFAULT)
    if size < 18_000:  # 31 trials of at least 600 simulated trees each give ~17,300 records
        params["trials"] = max(2, size // 640)
    if size != DEFAULT_RECORDS:
        params["trees"] = int(round(DEFAULT["trees"] * size / DEFAULT_RECORDS))
    for _ in range(6):
        df, _truth = trial_network(**params)
        if size == DEFAULT_RECORDS or abs(len(df) - size) <= 0.01 * size:
            break
        params["trees"] = int(round(params["trees"] * size / len(df)))
    return df, params


def steps_of(m) -> dict:
    return {"wald kr": lambda: m.wald(ddf="kr"),
            "wald satterthwaite": lambda: m.wald(ddf="satterthwaite"),
            "predict Trial+sed": lambda: m.predict("Trial").sed,
            "predict Mother avsed": lambda: m.predict("Mother", sed=False).avsed,
            "Cullis H2": lambda: m.heritability_cullis("Mother")}


# ---- child process: one size ------------------------------------------------------------------
def child(size: int, repeat: int, csv: str | None, out: str) -> None:
    import numpy as np
    import sparsereml as sr
    from sparsereml.datasets import trial_network

    df, params = network(size)
    if csv:
        cols = df[["Trial", "Block", "Mother", "dbh"]].copy()
        for col in ("Trial", "Block", "Mother"):
            cols[col] = cols[col].astype("int64")
        cols.to_csv(csv, index=False)
    warm = trial_network(**WARMUP)[0]
    for f in steps_of(sr.fit(FIXED, RANDOM, data=warm)).values():
        f()
    sr.fit(FIXED, RANDOM, data=df)  # one fit first on these data
    fits, best, results = [], {}, {}
    for _ in range(repeat):
        for step in STEPS:
            gc.collect()
            t0 = time.perf_counter()
            m = sr.fit(FIXED, RANDOM, data=df)
            fits.append(time.perf_counter() - t0)
            f = steps_of(m)[step]
            t0 = time.perf_counter()
            r = f()
            secs = time.perf_counter() - t0
            best[step] = min(best.get(step, float("inf")), secs)
            if step in ("wald kr", "wald satterthwaite"):
                results[step] = dict(NumDF=int(r.loc["Trial", "Df"]), DenDF=float(r.loc["Trial", "denDF"]),
                                     F=float(r.loc["Trial", "F.inc"]))
            elif step == "predict Trial+sed":
                s = r.to_numpy()
                off = s[~np.eye(len(s), dtype=bool)]
                results[step] = dict(mean_sed=float(off.mean()), min_sed=float(off.min()), max_sed=float(off.max()),
                                     cells=len(s))
            elif step == "predict Mother avsed":
                results[step] = {k: float(v) for k, v in r.items()}
            else:
                results[step] = dict(H2=float(r))
            results["fit"] = dict(loglik=float(m.loglik), iterations=int(m.n_iterations), converged=bool(m.converged))
            del m, r, f
    Path(out).write_text(json.dumps(dict(size=size, nobs=len(df), params=params, fit=min(fits), fits=fits,
                                         steps=best, results=results, repeat=repeat)))


def run_child(size: int, repeat: int, csv: str | None, tmp: str) -> dict:
    out = os.path.join(tmp, f"ours_{size}.json")
    cmd = [sys.executable, __file__, "--child", str(size), "--repeat", str(repeat), "--child-out", out]
    if csv:
        cmd += ["--csv", csv]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(out):
        return dict(size=size, error=f"child failed: {(proc.stderr.strip().splitlines() or [''])[-1][:200]}")
    return json.loads(Path(out).read_text())


def run_peers(csv: str, timeout: float, memory_gib: float) -> dict:
    cmd = ["Rscript", str(HERE / "inference_peers.R"), csv, "--timeout", str(timeout), "--memory-gib", str(memory_gib)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=8 * timeout + 600)
    except subprocess.TimeoutExpired:
        return dict(error="inference_peers.R itself did not finish")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PEERS_JSON ")), None)
    if line is None:
        return dict(error=f"Rscript failed: {(proc.stderr.strip().splitlines() or [''])[-1][:200]}")
    return json.loads(line[len("PEERS_JSON "):])


# ---- report -------------------------------------------------------------------------------------
def peer_cell(step: dict | None) -> tuple[str, float | None]:
    if step is None:
        return "-", None
    if step["status"] == "ok":
        return f"{step['seconds']:.2f}", step["seconds"]
    if step["status"] == "timeout":
        return step["message"], None
    if step["status"] == "skipped":
        return "not run", None
    if "seconds" in step:
        return f"failed after {step['seconds']:.1f} s", None
    return "failed (see below)", None


def table(rows: list, peers: bool) -> list:
    head = f"{'records':>8}  {'step':<21} {'ours s':>8} {'x fit':>6} {'target':>6}"
    if peers:
        head += f"  {'R step':<24} {'R s':>26} {'R / ours':>8}"
    lines = [head, "-" * len(head)]
    notes = []
    for ours, peer in rows:
        if "error" in ours:
            lines.append(f"{ours['size']:>8}  {ours['error']}")
            continue
        fit = ours["fit"]
        for step in ["fit"] + STEPS:
            secs = fit if step == "fit" else ours["steps"][step]
            ratio = secs / fit
            goal = TARGETS.get(step)
            mark = "" if goal is None else f"<={goal:.0f}" + ("" if ratio <= goal else "!")
            line = f"{ours['nobs']:>8}  {step:<21} {secs:8.3f} {ratio:6.2f} {mark:>6}"
            if peers:
                names = [PEER_OF[step]] + (["emm_kr"] if step == "predict Trial+sed" else [])
                for k, name in enumerate(names):
                    st = (peer.get("steps") or {}).get(name) if name and "error" not in peer else None
                    text, psecs = peer_cell(st) if name else ("-", None)
                    if name and "error" in peer:
                        text = "R failed (see below)"
                    label = PEER_NAME.get(name, "-") if name else "-"
                    speed = f"{psecs / secs:8.1f}" if psecs is not None else f"{'-':>8}"
                    if k == 0:
                        line += f"  {label:<24} {text:>26} {speed}"
                    else:
                        lines.append(line)
                        line = f"{'':>8}  {'':<21} {'':>8} {'':>6} {'':>6}  {label:<24} {text:>26} {speed}"
                    if st and st["status"] == "error":
                        notes.append(f"{ours['nobs']} records, {label}: {st['message']}")
                    if st and st["status"] == "skipped":
                        notes.append(f"{ours['nobs']} records, {label}: {st['message']}")
            lines.append(line)
        if peers and "error" in peer:
            notes.append(f"{ours['nobs']} records: {peer['error']}")
        elif peers:
            fr = (peer["steps"]["fit"] or {}).get("results") if peer["steps"]["fit"]["status"] == "ok" else None
            if fr:
                notes.append(f"{ours['nobs']} records, lmerTest::lmer {peer['steps']['fit']['seconds']:.2f} s = lme4::lmer "
                             f"{fr['lme4_seconds']:.2f} s + lmerTest's derivatives {fr['lmertest_seconds']:.2f} s; logL "
                             f"R {fr['logLik']:.4f}, ours {ours['results']['fit']['loglik']:.4f}"
                             + ("" if fr["converged"] else f" (lme4: {'; '.join(fr['warnings'])[:150]})"))
    return lines + ([""] + notes if notes else [])


def agreement(rows: list) -> list:
    head = f"{'records':>8}  {'quantity':<34} {'sparsereml':>22} {'R':>22}"
    lines = [head, "-" * len(head)]
    for ours, peer in rows:
        if "error" in ours or "error" in peer:
            continue
        res, st = ours["results"], peer["steps"]

        def fd(r):
            return f"F {r['F']:.3f} / {r['DenDF']:.1f}"
        for ostep, pstep, what in (("wald kr", "kr", "Trial F / denDF, Kenward-Roger"),
                                   ("wald satterthwaite", "sat", "Trial F / denDF, Satterthwaite")):
            p = st[pstep]
            lines.append(f"{ours['nobs']:>8}  {what:<34} {fd(res[ostep]):>22} "
                         f"{fd(p['results']) if p['status'] == 'ok' else '-':>22}")
        ps = st["emm_sat"]
        lines.append(f"{ours['nobs']:>8}  {'Trial means, mean SED':<34} {res['predict Trial+sed']['mean_sed']:>22.5f} "
                     f"{format(ps['results']['mean_sed'], '.5f') if ps['status'] == 'ok' else '-':>22}")
        pk = st["emm_kr"]
        if pk["status"] == "ok":
            lines.append(f"{ours['nobs']:>8}  {'Trial means, mean SED (KR-adjusted)':<34} {'-':>22} "
                         f"{pk['results']['mean_sed']:>22.5f}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[DEFAULT_RECORDS], help="records per network")
    ap.add_argument("--repeat", type=int, default=1, help="best of N (sparsereml)")
    ap.add_argument("--peers", action="store_true", help="run benchmarks/inference_peers.R on the same data")
    ap.add_argument("--peer-timeout", type=float, default=300, help="seconds per R step")
    ap.add_argument("--peer-memory-gib", type=float, default=12, help="address-space limit per R step")
    ap.add_argument("--json", help="write the results there")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--csv", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.repeat, args.csv, args.child_out)
        return 0

    import sparsereml as sr

    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "benchmarks/inference.py"] + sys.argv[1:])
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    start = datetime.datetime.now(datetime.timezone.utc)
    load0 = os.getloadavg()
    print(f"{start:%Y-%m-%d %H:%M} UTC  {command}")
    print(f"machine: {cpu}, {os.cpu_count()} cores; sparsereml {sr.__version__}")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in load0)}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sparsereml_inference_") as tmp:
        for size in args.sizes:
            csv = os.path.join(tmp, f"net_{size}.csv") if args.peers else None
            t0 = time.perf_counter()
            ours = run_child(size, args.repeat, csv, tmp)
            print(f"  {size}: sparsereml done in {time.perf_counter() - t0:.0f} s", flush=True)
            peer = {}
            if args.peers and "error" not in ours:
                t0 = time.perf_counter()
                peer = run_peers(csv, args.peer_timeout, args.peer_memory_gib)
                print(f"  {size}: R done in {time.perf_counter() - t0:.0f} s", flush=True)
                os.remove(csv)
            rows.append((ours, peer))
    end = datetime.datetime.now(datetime.timezone.utc)
    load1 = os.getloadavg()
    print()
    for line in table(rows, args.peers):
        print(line)
    if args.peers:
        print()
        for line in agreement(rows):
            print(line)
    print(f"\nours s: best of {args.repeat}, each step the first call on its own fresh fit; x fit: / the best fit "
          f"of the size ({5 * args.repeat} fits); target: issue 15's limit (! = missed).")
    if args.peers:
        pv = next((p for _, p in rows if p and "versions" in p), None)
        if pv:
            print("R " + pv["R"] + ", " + ", ".join(f"{k} {v}" for k, v in pv["versions"].items())
                  + f"; R steps run once, each in its own Rscript (timeout {args.peer_timeout:.0f} s, "
                  f"ulimit -v {args.peer_memory_gib:g} GiB); R / ours = R s / ours s.")
    for ours, _ in rows:
        if "error" not in ours:
            r = ours["results"]
            print(f"{ours['nobs']} records (trees={ours['params']['trees']}): logL {r['fit']['loglik']:.4f}, "
                  f"{r['fit']['iterations']} iterations; Mother avsed mean {r['predict Mother avsed']['mean']:.4f}, "
                  f"Cullis H2 {r['Cullis H2']['H2']:.4f}")
    print("\ntargets:")
    for ours, _ in rows:
        if "error" in ours:
            continue
        for step, goal in TARGETS.items():
            ratio = ours["steps"][step] / ours["fit"]
            print(f"{'PASS' if ratio <= goal else 'FAIL'}  {ours['nobs']} records: {step} <= {goal:.0f}x the fit: "
                  f"{ratio:.2f}x ({ours['steps'][step]:.3f} s / {ours['fit']:.3f} s)")
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in load1)}  "
          f"({end:%H:%M} UTC, {(end - start).total_seconds() / 60:.1f} min)")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(command=command, start=str(start), end=str(end), load_start=load0,
                                                   load_end=load1, rows=rows), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
