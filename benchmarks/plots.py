"""Benchmark: the overview plot (issue 16: "on the 1.8M-record network within 10 s and 1 GB").

What it measures
  ``sparsereml.plots.overview(df, "dbh", "Trial")`` (every record a jittered, transparent point of
  one rasterized scatter, each trial's mean marked) followed by ``fig.savefig(path, dpi=100)``,
  to a PNG and to an SVG (vector, the points rasterized), on the networks of
  ``benchmarks/trial_network.py``: "default" (184,413 records, 31 trials) and "large" (1,843,692
  records, 310 trials).  ``overview(model)`` is not measured: it needs a fit, and draws the same
  scatter from the model's records.

  The networks are simulated once in this process (not timed) and written to a temporary parquet
  file.  Every measurement runs in a fresh child process that imports pandas, matplotlib and
  sparsereml.plots, reads the parquet file (categorical columns restored), and then:
    build s    overview(df, "dbh", "Trial") -> a Figure (no pyplot; the Agg canvas)
    save s     fig.savefig(path, dpi=100)
    total s    build + save
    peak +MiB  the criterion: peak RSS of the child during build + save minus its RSS just after
               the data were loaded (the kernel's peak mark is reset there: echo 5 >
               /proc/self/clear_refs, then VmHWM is read at the end)
    maxrss +MiB  ru_maxrss at the end minus the same RSS after loading; ru_maxrss is not reset, so
               this is at least the data loading's own peak (a cross-check, an upper bound)
    traced MiB tracemalloc's peak during build + save, in a second fresh child (tracemalloc slows
               allocation, so that child is not timed); it sees numpy and Python allocations,
               not the C++ buffers of the Agg renderer
    file MB    size of the written file
  The target line: large network, PNG: total <= 10 s and peak +MiB <= 1 GB (953.7 MiB).

Run (from the repository root):
  PYTHONPATH=src .venv/bin/python benchmarks/plots.py                  # default and large, PNG and SVG
  PYTHONPATH=src .venv/bin/python benchmarks/plots.py --sizes large --formats png --repeat 3
  PYTHONPATH=src .venv/bin/python benchmarks/plots.py --no-tracemalloc
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NETWORKS = {"default": dict(seed=2011, trials=31, trees=198_000, mothers=1100),
            "large": dict(seed=2011, trials=310, trees=1_980_000, mothers=2000)}
FORMATS = ("png", "svg")
RESPONSE, BY = "dbh", "Trial"
MIB = 1024.0  # KiB per MiB
GB_IN_MIB = 1e9 / 2**20


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    """Reset VmHWM so that it covers only what follows (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ---- child process: one overview + savefig ---------------------------------------------------
def child(parquet: str, categorical: list, fmt: str, traced: bool, out: str) -> None:
    import pandas as pd
    import matplotlib
    from sparsereml.plots import overview

    df = pd.read_parquet(parquet)
    for col in categorical:                   # parquet gives the integer codes back as int64
        df[col] = df[col].astype("category")
    gc.collect()
    reset = reset_peak_rss()
    rss_data = status_kib("VmRSS")
    path = os.path.join(os.path.dirname(out), f"overview_{os.getpid()}.{fmt}")
    if traced:
        import tracemalloc
        tracemalloc.start()
    t0 = time.perf_counter()
    fig = overview(df, RESPONSE, BY)
    t1 = time.perf_counter()
    fig.savefig(path, dpi=100)
    t2 = time.perf_counter()
    r = dict(nobs=len(df), build=t1 - t0, save=t2 - t1, total=t2 - t0, rss_data_kib=rss_data,
             peak_kib=status_kib("VmHWM") if reset else None,
             ru_maxrss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
             bytes=os.path.getsize(path), backend=matplotlib.get_backend(), traced=traced)
    if traced:
        r["traced_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    os.remove(path)
    Path(out).write_text(json.dumps(r))


def run_child(parquet: str, categorical: list, fmt: str, traced: bool, tmp: str) -> dict:
    out = os.path.join(tmp, f"child_{fmt}_{int(traced)}.json")
    cmd = [sys.executable, __file__, "--child", parquet, fmt, "--categorical", ",".join(categorical),
           "--child-out", out] + (["--child-traced"] if traced else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(out):
        tail = (proc.stderr.strip().splitlines() or [""])[-1][:200]
        return dict(error=f"child failed: {tail}")
    r = json.loads(Path(out).read_text())
    os.remove(out)
    return r


# ---- report ------------------------------------------------------------------------------------
COLS = [("network", 8, "s"), ("records", 9, "d"), ("format", 6, "s"), ("build s", 7, ".2f"),
        ("save s", 7, ".2f"), ("total s", 7, ".2f"), ("peak +MiB", 9, ".0f"), ("maxrss +MiB", 11, ".0f"),
        ("traced MiB", 10, ".0f"), ("file MB", 7, ".2f")]


def fmt_row(values: list) -> str:
    cells = []
    for (_, width, spec), v in zip(COLS, values):
        text = "-" if v is None else (v if isinstance(v, str) else format(v, spec))
        cells.append(text.ljust(width) if spec == "s" else text.rjust(width))
    return "  ".join(cells)


def row(network: str, fmt: str, r: dict) -> list:
    if "error" in r:
        return [network, r.get("nobs"), fmt, r["error"][:80]]
    base = r["rss_data_kib"]
    peak = None if r["peak_kib"] is None else (r["peak_kib"] - base) / MIB
    traced = r.get("traced_peak_bytes")
    return [network, r["nobs"], fmt, r["build"], r["save"], r["total"], peak,
            (r["ru_maxrss_kib"] - base) / MIB, None if traced is None else traced / 2**20, r["bytes"] / 1e6]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="default,large", help="networks: default, large (comma-separated)")
    ap.add_argument("--formats", default="png,svg", help="png, svg (comma-separated)")
    ap.add_argument("--repeat", type=int, default=1, help="timed children per network and format (one row each)")
    ap.add_argument("--tracemalloc", action=argparse.BooleanOptionalAction, default=True,
                    help="one more (untimed) child per network and format for tracemalloc's peak")
    ap.add_argument("--child", nargs=2, metavar=("PARQUET", "FORMAT"), help=argparse.SUPPRESS)
    ap.add_argument("--categorical", default="", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--child-traced", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], [c for c in args.categorical.split(",") if c], args.child[1],
              args.child_traced, args.child_out)
        return 0

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    bad = [s for s in sizes if s not in NETWORKS] + [f for f in formats if f not in FORMATS]
    if bad:
        ap.error(f"unknown network or format: {', '.join(bad)}")

    import matplotlib
    import numpy
    import pandas
    import pyarrow
    import sparsereml as sr
    from sparsereml.datasets import trial_network

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable] + sys.argv))
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    print(f"sparsereml overview-plot benchmark, {date}\ncommand: {command}")
    print(f"machine: {cpu}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"Python {platform.python_version()}, numpy {numpy.__version__}, pandas {pandas.__version__}, "
          f"pyarrow {pyarrow.__version__}, matplotlib {matplotlib.__version__}, sparsereml {sr.__version__}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    header = fmt_row([c[0] for c in COLS])
    rows = []
    with tempfile.TemporaryDirectory(prefix="sparsereml_plots_") as tmp:
        for network in sizes:
            t0 = time.perf_counter()
            df, _ = trial_network(**NETWORKS[network])
            categorical = [c for c in df.columns if isinstance(df[c].dtype, pandas.CategoricalDtype)]
            parquet = os.path.join(tmp, f"{network}.parquet")
            df.to_parquet(parquet)
            print(f"{network}: {len(df):,} records simulated and written to parquet in "
                  f"{time.perf_counter() - t0:.1f} s (not timed)", flush=True)
            del df
            gc.collect()
            for fmt in formats:
                traced = run_child(parquet, categorical, fmt, True, tmp) if args.tracemalloc else {}
                for _ in range(max(1, args.repeat)):
                    r = run_child(parquet, categorical, fmt, False, tmp)
                    if "traced_peak_bytes" in traced:
                        r["traced_peak_bytes"] = traced["traced_peak_bytes"]
                    rows.append((network, fmt, r))
            os.remove(parquet)
    print("\n" + header + "\n" + "-" * len(header))
    for network, fmt, r in rows:
        print(fmt_row(row(network, fmt, r)))
    print("\nbuild s: overview(df, 'dbh', 'Trial'); save s: fig.savefig(path, dpi=100); each row a fresh process.")
    print("peak +MiB (the criterion): peak RSS during build + save minus the RSS after loading the data;")
    print("maxrss +MiB: ru_maxrss minus the same (includes the data loading's own peak: an upper bound);")
    print("traced MiB: tracemalloc's peak in a separate untimed process (numpy/Python memory, not Agg's buffers).")
    large_png = [r for n, f, r in rows if (n, f) == ("large", "png") and "error" not in r]
    if large_png:
        best = min(large_png, key=lambda r: r["total"])
        worst_peak = max((r["peak_kib"] or r["ru_maxrss_kib"]) - r["rss_data_kib"] for r in large_png) / MIB
        ok = best["total"] <= 10 and worst_peak <= GB_IN_MIB
        print(f"\n{'PASS' if ok else 'FAIL'}  large, PNG: total <= 10 s and peak <= 1 GB ({GB_IN_MIB:.1f} MiB): "
              f"{best['total']:.2f} s{' (best of %d)' % len(large_png) if len(large_png) > 1 else ''}, "
              f"{worst_peak:.0f} MiB")
    else:
        print("\nn/a   large, PNG: total <= 10 s and peak <= 1 GB: not measured")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
