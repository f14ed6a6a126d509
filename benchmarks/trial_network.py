"""Benchmark: models m2, m2b and m2c on simulated progeny-trial networks, sparsereml against R.

What it measures
  Networks from ``sparsereml.datasets.trial_network``: "default" (seed 2011, 31 trials, 198,000
  trees, 1,100 mothers; 184,413 half-sib records), "deep" (the same trials and mothers with
  990,000 trees: more records, equations of the same size), "large" (310 trials, 1,980,000 trees, 2,000
  mothers; about 1.8M records) and, with --small, a quick one (6 trials, 8,000 trees, 80 mothers).
    m2   dbh ~ Trial, random ~ Trial:Block + Mother + Trial:Mother
    m2b  m2 with residual ~ at(Trial):units                    (peer: glmmTMB, dispformula = ~ 0 + Trial)
    m2c  random ~ at(Trial):Block + Mother + Trial:Mother, residual ~ at(Trial):units   (no peer)
  The peer of m2 is lme4::lmer (REML).  Peers run through benchmarks/peers.R, only on the
  default and small networks unless --peers-on-large (deep and large take R very long).

  sparsereml: every fit runs in a fresh child process that simulates the data, does one warm-up
  fit on a tiny network (so numba's compiled-code cache is loaded), then times ``sr.fit(...)``
  alone, best of --repeat.  "wall s" is that time; "s/iter" is seconds['iterations'] /
  (iterations + 1) (one more factorisation than iterations); "setup s" is design + data pass +
  analyse + start values.  Memory: just before the timed fit the kernel's peak-RSS mark is reset (echo 5 >
  /proc/self/clear_refs), so "peak MiB" is the peak resident memory during the fit(s), data in
  memory included (not the simulator's own peak), and "fit +MiB" is that peak minus the RSS just
  before the fit.  R peers are measured the same way (reading the CSV and a warm-up fit excluded).
  "speedup" = peer wall seconds / sparsereml wall seconds (same model and data).
  With --rounds N everything runs N times, one round after the other, and each tool (sparsereml
  and each peer alike) is reported by its fastest round: the machine's speed drifts by 10-20%
  over minutes, and a 0.25 s fit lands inside one phase while a 13 s peer fit averages over them.

Run (from the repository root):
  .venv/bin/python benchmarks/trial_network.py                 # default and large networks, with peers
  .venv/bin/python benchmarks/trial_network.py --small         # smoke test, a few seconds plus R
  .venv/bin/python benchmarks/trial_network.py --sizes default --models m2,m2b --repeat 3 --json out.json
  .venv/bin/python benchmarks/trial_network.py --repeat 3 --rounds 2       # each tool's best of two rounds
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETWORKS = {"default": dict(seed=2011, trials=31, trees=198_000, mothers=1100),
            "large": dict(seed=2011, trials=310, trees=1_980_000, mothers=2000),
            # the default network's trials, blocks and mothers with five times the trees: the
            # mixed-model equations keep their size, so time per iteration should not change
            "deep": dict(seed=2011, trials=31, trees=990_000, mothers=1100),
            "small": dict(seed=2011, trials=6, trees=8000, mothers=80)}
WARMUP = dict(seed=1, trials=6, trees=12000, mothers=200)  # big enough to reach every compiled code path
BASE = "~ Trial:Block + Mother + Trial:Mother"
MODELS = {"m2": (BASE, None), "m2b": (BASE, "~ at(Trial):units"),
          "m2c": ("~ at(Trial):Block + Mother + Trial:Mother", "~ at(Trial):units")}
PEERS = {"m2": "lme4", "m2b": "glmmTMB"}
MIB = 1024.0  # KiB per MiB


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def last_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[-1][:200]


def reset_peak_rss() -> bool:
    """Reset VmHWM so that it covers only what follows (Linux >= 4.0).  ru_maxrss is not always
    reset with it (it keeps the peak of exited threads), so VmHWM is what is read afterwards."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ---- child process: one sparsereml fit ------------------------------------------------------
def child(network: str, model: str, repeat: int, out: str) -> None:
    import sparsereml as sr
    from sparsereml.datasets import trial_network

    random, residual = MODELS[model]
    df, _ = trial_network(**NETWORKS[network])
    sr.fit("dbh ~ Trial", random=random, residual=residual, data=trial_network(**WARMUP)[0])
    gc.collect()
    before_fit_peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reset = reset_peak_rss()
    rss_before = status_kib("VmRSS")
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        m = sr.fit("dbh ~ Trial", random=random, residual=residual, data=df)
        wall = time.perf_counter() - t0
        if best is None or wall < best["seconds"]:
            s = m.seconds
            best = dict(seconds=wall, iterations=m.n_iterations, converged=m.converged, loglik=m.loglik,
                        per_iteration=s["iterations"] / (m.n_iterations + 1),
                        setup=s["design"] + s["data_pass"] + s["analyse"] + s.get("start", 0.0), fit_seconds=s,
                        backend=m.backend, n_varcomp=len(m.varcomp), equations=m.equations.to_dict())
        del m
        gc.collect()
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    peak = status_kib("VmHWM") if reset else ru_maxrss
    best.update(nobs=len(df), rss_before_kib=rss_before, peak_kib=peak, ru_maxrss_kib=ru_maxrss,
                peak_is_fit_only=reset, simulation_peak_kib=before_fit_peak_kib, repeat=repeat)
    Path(out).write_text(json.dumps(best))


def run_sparsereml(network: str, model: str, repeat: int, tmp: str) -> dict:
    out = os.path.join(tmp, f"{network}_{model}.json")
    cmd = [sys.executable, __file__, "--child", network, model, "--repeat", str(repeat), "--child-out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(out):
        return dict(error=f"child failed: {last_line(proc.stderr)}", stderr=proc.stderr[-2000:])
    return json.loads(Path(out).read_text())


# ---- R peers -------------------------------------------------------------------------------
def r_versions() -> dict | None:
    """R, lme4 and glmmTMB versions, or None if Rscript or a package is missing."""
    if not shutil.which("Rscript"):
        return None
    code = ('suppressPackageStartupMessages({library(lme4); library(glmmTMB); library(jsonlite)}); '
            'cat(R.version$major, R.version$minor, as.character(packageVersion("lme4")), '
            'as.character(packageVersion("glmmTMB")))')
    proc = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    major, minor, lme4, glmmtmb = proc.stdout.split()
    return {"R": f"{major}.{minor}", "lme4": lme4, "glmmTMB": glmmtmb}


def write_csv(network: str, path: str) -> None:
    from sparsereml.datasets import trial_network

    df, _ = trial_network(**NETWORKS[network])
    out = df[["Trial", "Block", "Mother", "dbh"]].copy()
    for col in ("Trial", "Block", "Mother"):
        out[col] = out[col].astype("int64")
    out.to_csv(path, index=False)


def run_peer(csv: str, model: str, tmp: str, timeout: float) -> dict:
    out = os.path.join(tmp, f"peer_{model}.json")
    try:
        proc = subprocess.run(["Rscript", str(HERE / "peers.R"), csv, model, out],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f"timeout after {timeout:.0f} s")
    if proc.returncode != 0 or not os.path.exists(out):
        return dict(error=f"Rscript failed: {last_line(proc.stderr)}", stderr=proc.stderr[-2000:])
    r = json.loads(Path(out).read_text())
    os.remove(out)
    return r


# ---- report --------------------------------------------------------------------------------
def machine(versions: dict | None) -> dict:
    import numpy
    import sparsereml as sr
    from sparsereml.datasets import trial_network

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    ram = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    backend = sr.fit("dbh ~ Trial", random=BASE, data=trial_network(**WARMUP)[0]).backend
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(ram / MIB**2, 1),
            "os": platform.platform(), "python": platform.python_version(), "numpy": numpy.__version__,
            "sparsereml": sr.__version__, "backend": backend, "peers": versions,
            "load_average": os.getloadavg()}


COLS = [("network", 8, "s"), ("records", 9, "d"), ("model", 5, "s"), ("tool", 10, "s"), ("wall s", 8, ".3f"),
        ("iter", 4, "d"), ("s/iter", 7, ".4f"), ("setup s", 7, ".3f"), ("peak MiB", 8, ".0f"),
        ("fit +MiB", 8, ".0f"), ("logL", 14, ".4f"), ("speedup", 8, ".1f")]


def fmt_row(values: list) -> str:
    cells = []
    for (_, width, spec), v in zip(COLS, values):
        text = "-" if v is None else (v if isinstance(v, str) else format(v, spec))
        cells.append(text.ljust(width) if spec == "s" else text.rjust(width))
    return "  ".join(cells)


def table_row(r: dict) -> str:
    if "error" in r:
        return fmt_row([r["network"], r.get("nobs"), r["model"], r["tool"], r["error"][:60]])
    mem = r["peak_kib"] / MIB, (r["peak_kib"] - r["rss_before_kib"]) / MIB
    ll = f"{r['logLik'] if 'logLik' in r else r['loglik']:.4f}" + ("" if r["converged"] else "*")
    return fmt_row([r["network"], r["nobs"], r["model"], r["tool"], r["seconds"], r.get("iterations"),
                    r.get("per_iteration"), r.get("setup"), mem[0], mem[1], ll, r.get("speedup")])


def targets(rows: list) -> list:
    def get(network, model, tool):
        return next((r for r in rows if (r["network"], r["model"], r["tool"]) == (network, model, tool)
                     and "error" not in r), None)

    def verdict(ok):
        return "PASS" if ok else "FAIL"
    out = []
    m2 = get("default", "m2", "sparsereml")
    out.append(f"{verdict(m2['seconds'] <= 0.5)}  m2 on the default network <= 0.5 s: {m2['seconds']:.3f} s"
               if m2 else "n/a   m2 on the default network <= 0.5 s: not measured")
    for model, tool, goal in (("m2", "lme4", 50), ("m2b", "glmmTMB", 100)):
        peer = get("default", model, tool)
        text = f"{model} >= {goal}x faster than {tool} (default network)"
        out.append(f"{verdict(peer['speedup'] >= goal)}  {text}: {peer['speedup']:.1f}x" if peer and
                   peer.get("speedup") else f"n/a   {text}: not measured")
    big = get("large", "m2b", "sparsereml")
    if big:
        gb = big["peak_kib"] * 1024 / 1e9
        out.append(f"{verdict(big['seconds'] <= 10 and gb < 4)}  m2b on the large network <= 10 s with peak "
                   f"memory < 4 GB: {big['seconds']:.2f} s, {gb:.2f} GB")
    else:
        out.append("n/a   m2b on the large network <= 10 s with peak memory < 4 GB: not measured")
    base = get("default", "m2b", "sparsereml")
    if base and big:
        out.append(f"info  m2b time per iteration, large / default: {big['per_iteration'] / base['per_iteration']:.2f}"
                   f" (records ratio {big['nobs'] / base['nobs']:.1f}; the equations grow too)")
    deep = get("deep", "m2b", "sparsereml")
    if base and deep:
        ratio = deep["per_iteration"] / base["per_iteration"]
        eq = [r.get("equations") or {} for r in (deep, base)]
        size = (f"; equations {eq[0].get('unknowns', 0):,} vs {eq[1].get('unknowns', 0):,} unknowns, factor "
                f"{eq[0].get('factor_nonzeros', 0) / 1e6:.2f}M vs {eq[1].get('factor_nonzeros', 0) / 1e6:.2f}M nonzeros"
                if eq[0] and eq[1] else "")
        out.append(f"{verdict(ratio < 1.5)}  m2b time per iteration independent of the number of records (same "
                   f"trials, blocks and mothers, {deep['nobs'] / base['nobs']:.1f}x the records{size}): ratio {ratio:.2f}")
    else:
        out.append("n/a   time per iteration independent of the number of records: needs the default and deep networks")
    return out


def run_round(sizes: list, models: list, args, versions: dict | None, tmp: str) -> list:
    """Every network and model once: sparsereml, then its R peer on the same data."""
    rows = []
    for network in sizes:
        csv = None
        for model in models:
            ours = dict(network=network, model=model, tool="sparsereml",
                        **run_sparsereml(network, model, args.repeat, tmp))
            rows.append(ours)
            print(table_row(ours), flush=True)
            tool = PEERS.get(model)
            if not args.peers or tool is None or (network in ("large", "deep") and not args.peers_on_large):
                continue
            if versions is None:
                peer = dict(network=network, model=model, tool=tool, nobs=ours.get("nobs"), error="not installed")
            else:
                if csv is None:
                    csv = os.path.join(tmp, f"{network}.csv")
                    write_csv(network, csv)
                peer = {"nobs": ours.get("nobs"), **run_peer(csv, model, tmp, args.peer_timeout),
                        "network": network, "model": model, "tool": tool}
            rows.append(peer)
            print(table_row(with_speedup(peer, ours)), flush=True)
        if csv:
            os.remove(csv)
    return rows


def with_speedup(peer: dict, ours: dict) -> dict:
    """The peer's row with its speedup (peer seconds / sparsereml seconds) and logL difference."""
    if "error" not in peer and "error" not in ours:
        peer["speedup"] = peer["seconds"] / ours["seconds"]
        peer["loglik_difference"] = ours["loglik"] - peer["logLik"]
    return peer


def best_rows(rounds: list) -> list:
    """Each (network, model, tool)'s fastest round (every tool treated alike); speedups from
    those."""
    best: dict = {}
    for rows in rounds:
        for r in rows:
            key = (r["network"], r["model"], r["tool"])
            if key not in best or ("error" in best[key] and "error" not in r) or (
                    "error" not in r and r["seconds"] < best[key]["seconds"]):
                best[key] = dict(r)
    out = list(best.values())
    for r in out:
        ours = best.get((r["network"], r["model"], "sparsereml"))
        if r["tool"] != "sparsereml" and ours is not None:
            r.pop("speedup", None)
            with_speedup(r, ours)
    return out


def agreement_lines(rows: list) -> list:
    out = []
    for r in rows:
        if r["tool"] == "sparsereml" or "loglik_difference" not in r:
            continue
        diff = r["loglik_difference"]
        out.append(f"{'OK   ' if abs(diff) <= 1e-3 else 'CHECK'} {r['model']} on {r['network']}: "
                   f"logL sparsereml - {r['tool']} = {diff:+.2e} (tolerance 1e-3)")
        if r.get("warnings"):
            out.append(f"      {r['tool']} said: " + "; ".join(r["warnings"])[:300])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="default,deep,large",
                    help="networks: default, deep (5x the trees, same equations), large (comma-separated)")
    ap.add_argument("--models", default="m2,m2b,m2c")
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True, help="run lme4/glmmTMB")
    ap.add_argument("--peers-on-large", action="store_true", help="also run the R peers on the deep and large networks")
    ap.add_argument("--peer-timeout", type=float, default=3600.0, help="seconds per R fit")
    ap.add_argument("--repeat", type=int, default=1, help="sparsereml: best of N fits")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run everything N times, one round after the other, and report each tool's best round")
    ap.add_argument("--small", action="store_true", help="only a quick network (6 trials, 8000 trees, 80 mothers)")
    ap.add_argument("--json", help="also save every number to this file")
    ap.add_argument("--child", nargs=2, metavar=("NETWORK", "MODEL"), help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child, max(1, args.repeat), args.child_out)
        return 0

    sizes = ["small"] if args.small else [s.strip() for s in args.sizes.split(",") if s.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [s for s in sizes if s not in NETWORKS] + [m for m in models if m not in MODELS]
    if bad:
        ap.error(f"unknown network or model: {', '.join(bad)}")
    versions = r_versions() if args.peers else None
    info = machine(versions)
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable] + sys.argv))
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    print(f"sparsereml trial-network benchmark, {date}\ncommand: {command}")
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['os']}")
    print(f"Python {info['python']}, numpy {info['numpy']}, sparsereml {info['sparsereml']} "
          f"(backend {info['backend']}); load average {' '.join(f'{x:.2f}' for x in info['load_average'])}")
    if args.peers:
        print("peers: " + (f"R {versions['R']}, lme4 {versions['lme4']}, glmmTMB {versions['glmmTMB']}"
                           if versions else "not installed (Rscript with lme4, glmmTMB and jsonlite)"))
    print()
    header = fmt_row([c[0] for c in COLS])
    print(header + "\n" + "-" * len(header), flush=True)

    rounds = []
    with tempfile.TemporaryDirectory(prefix="sparsereml_bench_") as tmp:
        for rnd in range(max(1, args.rounds)):
            if args.rounds > 1:
                print(f"round {rnd + 1} of {args.rounds}", flush=True)
            rounds.append(run_round(sizes, models, args, versions, tmp))
    rows = best_rows(rounds)
    agreement = agreement_lines(rows)
    if args.rounds > 1:
        print(f"\nbest of {args.rounds} rounds for each tool (speedups from these)\n" + header + "\n" + "-" * len(header))
        for r in rows:
            print(table_row(r))

    print(f"\nwall s: sparsereml.fit (best of {args.repeat}) or the R fit call"
          + (f", each tool's best of {args.rounds} rounds" if args.rounds > 1 else "")
          + "; s/iter = iteration s / (iterations + 1);")
    print("peak MiB: peak RSS during the fit, data included; fit +MiB: peak minus RSS just before the fit;")
    print("speedup: peer wall s / sparsereml wall s; * = not converged; iterations are not shown for R peers.")
    if agreement:
        print("\nlogL agreement (REML, lme4 convention):\n" + "\n".join(agreement))
    lines = targets(rows)
    print("\ntargets:\n" + "\n".join(lines))
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        record = dict(date=date, command=command, machine=info, networks={s: NETWORKS[s] for s in sizes},
                      rows=rows, targets=lines, rounds=rounds)
        Path(args.json).write_text(json.dumps(record, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
