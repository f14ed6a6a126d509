"""Compiling the kernels before a first fit (sparsereml._warmup).

Fresh numba caches are made in temporary directories (NUMBA_CACHE_DIR) of child processes,
so that nothing here depends on, or disturbs, the cache the rest of the suite uses.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparsereml import _warmup
from sparsereml._kernel_list import KERNELS
from sparsereml.errors import ModelError

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run(code: str, cache: str, **env) -> subprocess.CompletedProcess:
    full = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
                **env)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_split_balances_the_work_and_charges_workers_their_import():
    entries = [(None, None, s) for s in (4.0, 3.0, 2.0, 2.0, 1.0)]
    shares = _warmup._split(entries, 2)
    assert sorted(i for s in shares for i in s) == [0, 1, 2, 3, 4]
    load = [sum(entries[i][2] for i in s) + (_warmup.IMPORT_SECONDS if p else 0.0) for p, s in enumerate(shares)]
    assert abs(load[0] - load[1]) <= 2.0  # longest first onto the least loaded share
    assert shares[0][0] == 0  # this process (no import to pay) starts with the longest kernel


def test_every_listed_signature_reads_back():
    for module, name, sig, seconds, tags in KERNELS:
        types = _warmup._parse_signature(sig)
        assert repr(types) == sig, (module, name)
        assert seconds >= 0 and tags


def test_workers_only_for_idle_cores(monkeypatch):
    monkeypatch.delenv("SPARSEREML_COMPILE_PROCESSES", raising=False)
    from sparsereml.linalg import threads

    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert _warmup._processes(busy=0.0) == 2  # idle: this process and a worker
    assert _warmup._processes(busy=0.4) == 2
    assert _warmup._processes(busy=0.8) == 1
    assert _warmup._processes(busy=6.0) == 1  # busy: workers would only add their import
    monkeypatch.setenv("SPARSEREML_COMPILE_PROCESSES", "3")
    assert _warmup._processes(busy=6.0) == 3


def test_compile_processes_must_be_a_positive_number(monkeypatch):
    monkeypatch.setenv("SPARSEREML_COMPILE_PROCESSES", "two")
    with pytest.raises(ModelError, match="SPARSEREML_COMPILE_PROCESSES"):
        _warmup._processes()


SMALL_LIST = """
import sparsereml._kernel_list as kl
kl.KERNELS = [
    ("sparsereml._compiled", "find_sorted", "(Array(int64, 1, 'C', False, aligned=True), int64, int64, int64)",
     3.0, ("one-cholmod", "one-qdldl")),
    ("sparsereml._compiled", "counting_sort", "(Array(int64, 1, 'C', False, aligned=True), int64)",
     2.0, ("one-cholmod", "one-qdldl")),
]
from sparsereml import _warmup
"""


def test_cold_cache_is_filled_by_workers_with_one_line_then_silent(tmp_path):
    code = SMALL_LIST + ("from sparsereml.linalg.backends import resolve_backend\n_warmup.prepare('one')\n"
                         "entries = _warmup.kernel_entries('one', resolve_backend())\n"
                         "print(len(_warmup.missing_entries(entries)), [len(d.overloads) for d, _, _ in entries])")
    cold = run(code, str(tmp_path), SPARSEREML_COMPILE_PROCESSES="2")
    assert cold.stderr.count(_warmup.LINE) == 1
    # the longer kernel compiled here, the other in the worker: in the cache, not in this process
    assert cold.stdout.strip() == "0 [1, 0]"
    warm = run(code, str(tmp_path), SPARSEREML_COMPILE_PROCESSES="2")
    assert _warmup.LINE not in warm.stderr
    assert warm.stdout.strip() == "0 [0, 0]"


def test_compiling_outside_the_list_is_announced_once_and_not_when_cached(tmp_path):
    code = ("from sparsereml import _warmup\n_warmup.ANNOUNCE_AFTER = 0.0\n"
            "import numpy as np\nfrom sparsereml._compiled import counting_sort, gallop\n"
            "counting_sort(np.zeros(3, dtype=np.int64), 2)\ngallop(np.arange(3), 0, 3, 1)\n"
            "import time\ntime.sleep(0.5)\n")
    cold = run(code, str(tmp_path))
    assert cold.stderr.count(_warmup.LINE) == 1
    warm = run(code, str(tmp_path))
    assert _warmup.LINE not in warm.stderr


FIT = """
import json, sys
from numba.core import event
from numba.core.registry import CPUDispatcher
import sparsereml as sr
from sparsereml import _warmup
from sparsereml._kernel_list import KERNELS
nested, stack = set(), []
class Nested(event.Listener):
    def on_start(self, ev):
        stack.append(ev)
    def on_end(self, ev):
        stack.pop()
        if stack:
            d = ev.data["dispatcher"]
            nested.add((d.py_func.__module__, d.py_func.__name__, repr(tuple(ev.data["args"]))))
event.register("numba:compile", Nested())
model = sys.argv[1]
random = "~ Trial:Block + Mother + Trial:Mother"
residual = None if model == "m2" else "~ at(Trial):units"
df, _ = sr.datasets.trial_network()
sr.fit("dbh ~ Trial", random, residual, data=df)
# kernels called from Python hold their signature, whether compiled here or loaded from the cache;
# kernels only called from other kernels hold one only when compiled here (as callees: left out)
used = set()
for name, mod in list(sys.modules.items()):
    if name.startswith("sparsereml"):
        for fn in vars(mod).values():
            if isinstance(fn, CPUDispatcher) and fn.py_func.__module__ == name:
                used |= {(name, fn.py_func.__name__, repr(tuple(sig))) for sig in fn.overloads}
listed = {(m, n, s) for m, n, s, _, _ in KERNELS}
print(json.dumps(sorted(used - nested - listed)))
"""


@pytest.mark.slow
@pytest.mark.parametrize("model", ["m2", "m2b"])
def test_the_list_holds_every_kernel_the_trial_network_fits_call(model):
    """Every kernel the README's fits call from Python is in the list that prepare() compiles
    (run benchmarks/record_kernels.py after adding or retyping a kernel)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", FIT, model], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_a_fixed_thread_count_caps_the_compile_processes(monkeypatch):
    monkeypatch.delenv("SPARSEREML_COMPILE_PROCESSES", raising=False)
    monkeypatch.setenv("SPARSEREML_THREADS", "1")
    assert _warmup._processes() == 1  # a shared cluster's one core: no compile workers
