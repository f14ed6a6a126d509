"""Benchmark: variance structures on the default simulated trial network (issue 3 targets).

What it measures
  fa2      dbh ~ Trial, random ~ at(Trial):Block + fa(Trial, 2):Mother, residual ~ at(Trial):units
           on the default network (seed 2011, 31 trials, 184,413 half-sib trees).  Peer: glmmTMB
           with rr(0 + Trial | Mother, d = 2) + diag(0 + Trial | Mother) (= factor analytic),
           diag(0 + Trial | Trial:Block) and dispformula ~ 0 + Trial, REML.
  spatial  dbh ~ Trial, random ~ at(Trial):Block + Mother + Trial:Mother, residual
           ~ at(Trial):ar1(Row):ar1(Col) (31 variances and 62 correlations) on the same network
           simulated with spatial=True.  glmmTMB has no separable AR1 x AR1 per trial: no peer.
  nugget   (only with --nugget) spatial plus random at(Trial):units, the model the spatial
           simulation follows (a nugget beside the AR1 x AR1 field); it adds one unknown per tree.

  Each fit runs in a fresh child process (data simulated there, a warm-up fit on a small
  network first, then the timed fit); memory is the peak RSS during the fit (VmHWM after a reset),
  data included.  The glmmTMB peer runs through benchmarks/peers.R with a timeout.

Run (from the repository root):
  .venv/bin/python benchmarks/structures.py                       # fa2 and spatial, glmmTMB for fa2
  .venv/bin/python benchmarks/structures.py --no-peers --models spatial --nugget
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
sys.path.insert(0, str(HERE))
from trial_network import (MIB, NETWORKS, last_line, machine, r_versions, reset_peak_rss,  # noqa: E402
                           status_kib)

MODELS = {  # random, residual, spatial data
    "fa2": ("~ at(Trial):Block + fa(Trial, 2):Mother", "~ at(Trial):units", False),
    "spatial": ("~ at(Trial):Block + Mother + Trial:Mother", "~ at(Trial):ar1(Row):ar1(Col)", True),
    "nugget": ("~ at(Trial):Block + Mother + Trial:Mother + at(Trial):units", "~ at(Trial):ar1(Row):ar1(Col)", True),
}
TARGETS = {"fa2": 60.0, "spatial": 120.0}  # seconds; peak memory 4 GB for both
WARMUP = dict(seed=1, trials=6, trees=12000, mothers=200)


def child(model: str, out: str) -> None:
    import sparsereml as sr
    from sparsereml.datasets import trial_network

    random, residual, spatial = MODELS[model]
    df, _ = trial_network(**NETWORKS["default"], spatial=spatial)
    sr.fit("dbh ~ Trial", random=random, residual=residual, data=trial_network(**WARMUP, spatial=spatial)[0])
    gc.collect()
    reset = reset_peak_rss()
    rss_before = status_kib("VmRSS")
    t0 = time.perf_counter()
    m = sr.fit("dbh ~ Trial", random=random, residual=residual, data=df)
    wall = time.perf_counter() - t0
    s = m.seconds
    peak = status_kib("VmHWM")
    Path(out).write_text(json.dumps(dict(
        seconds=wall, iterations=m.n_iterations, converged=m.converged, message=m.message, loglik=m.loglik,
        per_iteration=s["iterations"] / (m.n_iterations + 1), setup=s["design"] + s["data_pass"] + s["analyse"],
        parameters=len(m.varcomp), nobs=m.nobs, equations=m.equations.to_dict(), rss_before_kib=rss_before,
        peak_kib=peak, peak_is_fit_only=reset, backend=m.backend)))


def run_child(model: str, tmp: str) -> dict:
    out = os.path.join(tmp, f"{model}.json")
    proc = subprocess.run([sys.executable, __file__, "--child", model, "--child-out", out],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(out):
        return dict(error=f"child failed: {last_line(proc.stderr)}")
    return json.loads(Path(out).read_text())


def run_peer(model: str, tmp: str, timeout: float) -> dict:
    from sparsereml.datasets import trial_network

    df, _ = trial_network(**NETWORKS["default"])
    csv = os.path.join(tmp, "default.csv")
    out = df[["Trial", "Block", "Mother", "dbh"]].copy()
    for col in ("Trial", "Block", "Mother"):
        out[col] = out[col].astype("int64")
    out.to_csv(csv, index=False)
    res = os.path.join(tmp, f"peer_{model}.json")
    try:
        proc = subprocess.run(["Rscript", str(HERE / "peers.R"), csv, model, res], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f"did not finish in {timeout:.0f} s")
    if proc.returncode != 0 or not os.path.exists(res):
        return dict(error=f"Rscript failed: {last_line(proc.stderr)}")
    return json.loads(Path(res).read_text())


def row(model: str, tool: str, r: dict) -> str:
    if "error" in r:
        return f"{model:8s} {tool:10s} {r['error']}"
    mem = r["peak_kib"] / MIB
    value = r.get("loglik", r.get("logLik"))
    ll = (f"{value:.4f}" if isinstance(value, (int, float)) else str(value)) + ("" if r["converged"] else "*")
    it = r.get("iterations")
    per = r.get("per_iteration")
    return (f"{model:8s} {tool:10s} {r['seconds']:9.2f} {it if it is not None else '-':>5} "
            f"{per if per is not None else float('nan'):8.3f} {r.get('setup', float('nan')):8.2f} "
            f"{r.get('parameters', '-'):>6} {mem:9.0f} {ll:>16}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="fa2,spatial")
    ap.add_argument("--nugget", action="store_true", help="also fit the spatial model with a nugget")
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True, help="run glmmTMB for fa2")
    ap.add_argument("--peer-timeout", type=float, default=3600.0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.child_out)
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()] + (["nugget"] if args.nugget else [])
    versions = r_versions() if args.peers else None
    info = machine(versions)
    print(f"sparsereml structures benchmark, {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"command: {shlex.join(getattr(sys, 'orig_argv', [sys.executable] + sys.argv))}")
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM; Python {info['python']}, "
          f"numpy {info['numpy']}, sparsereml {info['sparsereml']} (backend {info['backend']})\n")
    head = f"{'model':8s} {'tool':10s} {'wall s':>9} {'iter':>5} {'s/iter':>8} {'setup s':>8} {'params':>6} " \
           f"{'peak MiB':>9} {'logL':>16}"
    print(head + "\n" + "-" * len(head), flush=True)
    results, lines = {}, []
    with tempfile.TemporaryDirectory(prefix="sparsereml_structures_") as tmp:
        for model in models:
            r = run_child(model, tmp)
            results[model] = r
            print(row(model, "sparsereml", r), flush=True)
            if model == "fa2" and args.peers:
                peer = run_peer(model, tmp, args.peer_timeout) if versions else dict(error="glmmTMB not installed")
                print(row(model, "glmmTMB", peer), flush=True)
                if peer.get("warnings"):
                    lines.append("info  glmmTMB said: " + "; ".join(map(str, peer["warnings"]))[:300])
                if "error" not in peer and "error" not in r and isinstance(peer.get("logLik"), (int, float)):
                    lines.append(f"info  fa2: glmmTMB / sparsereml time {peer['seconds'] / r['seconds']:.1f}x, "
                                 f"logL difference {r['loglik'] - peer['logLik']:+.2e}")
    print("\nwall s: the sr.fit call; s/iter: iteration seconds / (iterations + 1); setup: design, data pass and "
          "analysis; peak MiB: peak RSS during the fit, data included; * = not converged.")
    for model, goal in TARGETS.items():
        r = results.get(model)
        if r is None or "error" in r:
            lines.append(f"n/a   {model} <= {goal:.0f} s and < 4 GB: not measured")
            continue
        gb = r["peak_kib"] * 1024 / 1e9
        ok = r["seconds"] <= goal and gb < 4 and r["converged"]
        lines.append(f"{'PASS' if ok else 'FAIL'}  {model} converges in <= {goal:.0f} s with peak memory < 4 GB: "
                     f"{r['seconds']:.1f} s, {gb:.2f} GB, {r['iterations']} iterations ({r['message'][:60]})")
    print("\ntargets:\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
