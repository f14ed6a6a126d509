"""Record which compiled kernels the trial-network fits call, for ``src/sparsereml/_kernel_list.py``.

Every model (m2, m2b, m2c, and the survival GLMM) and installed backend runs in a fresh process with an empty numba
cache on the default network (184,413 trees); a numba event listener notes every kernel
compiled from Python (not from inside another kernel: compiling the outer one compiles those),
its argument types and its compile seconds.  The list written is what
``sparsereml._warmup.prepare`` compiles in parallel before a first fit; run this again after
adding or retyping a kernel (tests/test_warmup.py fails until then).

    .venv/bin/python benchmarks/record_kernels.py            # writes src/sparsereml/_kernel_list.py
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "src" / "sparsereml" / "_kernel_list.py"
MODELS = {"m2": ("~ Trial:Block + Mother + Trial:Mother", None, "one"),
          "m2b": ("~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units", "groups"),
          "m2c": ("~ at(Trial):Block + Mother + Trial:Mother", "~ at(Trial):units", "groups"),
          # survival (probit GLMM, Laplace): what a GLMM adds to the Gaussian fits' kernels
          "survival": ("~ Trial:Block + Mother + Trial:Mother", None, "glmm")}


def child(model: str, backend: str) -> None:
    """Fit one model with a listener on numba's compile events; print the roots as JSON."""
    from numba.core import event

    roots, stack = [], []

    class Listener(event.Listener):
        def on_start(self, ev):
            stack.append(time.perf_counter())

        def on_end(self, ev):
            t0 = stack.pop()
            disp = ev.data["dispatcher"]
            if not stack and disp.py_func.__module__.startswith("sparsereml"):
                roots.append((disp.py_func.__module__, disp.py_func.__name__, repr(tuple(ev.data["args"])),
                              round(time.perf_counter() - t0, 2)))

    event.register("numba:compile", Listener())
    import sparsereml as sr
    from sparsereml import _warmup

    for kind in ("one", "groups", "glmm"):  # record what the fit itself compiles
        _warmup._STATE["prepared"].add((kind, backend))
    random, residual, kind = MODELS[model]
    if kind == "glmm":
        df, _ = sr.datasets.trial_network(survival=True)
        sr.fit("survival ~ Trial", random=random, data=df, backend=backend, family=sr.glmm.Binomial("probit"))
    else:
        df, _ = sr.datasets.trial_network()
        sr.fit("dbh ~ Trial", random=random, residual=residual, data=df, backend=backend)
    print(json.dumps(roots))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "BACKEND"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    from sparsereml.linalg.backends import available_backends

    merged: dict = {}
    for backend in available_backends():
        for model, (_, _, kind) in MODELS.items():
            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, NUMBA_CACHE_DIR=cache)
                proc = subprocess.run([sys.executable, __file__, "--child", model, backend], env=env,
                                      capture_output=True, text=True, check=True)
            for module, name, sig, seconds in json.loads(proc.stdout.strip().splitlines()[-1]):
                entry = merged.setdefault((module, name, sig), {"seconds": 0.0, "tags": set()})
                entry["seconds"] = max(entry["seconds"], seconds)
                entry["tags"].add(f"{kind}-{backend}")
            print(f"{model} {backend}: {len(merged)} kernels so far", file=sys.stderr)
    lines = ['"""Kernels the trial-network fits compile, by argument types (benchmarks/record_kernels.py',
             'writes this file; sparsereml._warmup compiles them in parallel before a first fit).',
             '',
             'Each entry: module, function, argument types (numba reprs), compile seconds when recorded',
             '(to share the work out), and the fits that need it (kind of residual - backend)."""',
             "KERNELS = ["]
    for (module, name, sig), e in sorted(merged.items(), key=lambda kv: -kv[1]["seconds"]):
        lines.append(f"    ({module!r}, {name!r},\n     {sig!r},\n     {e['seconds']}, {tuple(sorted(e['tags']))!r}),")
    lines.append("]")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(merged)} kernels to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
