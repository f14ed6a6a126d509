"""The first fit after installing: compile the kernels a fit needs, in parallel, and say so.

numba compiles each kernel on its first call and keeps the machine code in its on-disk cache
(``cache=True``), so only the first fit after an install (or an upgrade) pays for compiling.
That fit compiles dozens of kernels one after the other on one core.  :func:`prepare` looks up,
before the fit starts, which of the kernels a fit of this kind needs (``_kernel_list.py``,
recorded from real fits) are in neither memory nor the cache, and compiles them split between
this process and worker processes, one per core idle at that moment, which write them to the
cache; the fit then loads them from there.  When anything has to be compiled a line on stderr
says so.

Kernels outside the list (a structure or pedigree kernel, a type the list does not hold) are
compiled on first call as before; a numba event listener prints the same line when such
compiling runs for more than a second.  Nothing here changes what is computed: a kernel the
workers did not provide is compiled by the fit itself.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
import time

from numba.core import event


__all__ = ["prepare", "prepare_all", "kind_of", "kernel_entries", "missing_entries"]

LINE = "sparsereml: compiling kernels for first use (once per install)"
ANNOUNCE_AFTER = 1.0  # seconds of compiling before the line is printed
IMPORT_SECONDS = 1.5  # a worker's import of sparsereml, counted against its share of the work

_STATE = {"prepared": set(), "announced": False}


def _say(text: str, end: str = "\n") -> None:
    if sys.stderr is not None:  # None under pythonw
        print(text, end=end, file=sys.stderr, flush=True)


# ---- the list of kernels ---------------------------------------------------------------------
def _parse_signature(text: str) -> tuple:
    """A signature as benchmarks/record_kernels.py writes it (numba type reprs) back to numba types."""
    from numba.core import types

    return tuple(eval(text, {"__builtins__": {}}, vars(types)))  # noqa: S307 - our own list


def kernel_entries(kind: str, backend: str) -> list[tuple]:
    """(dispatcher, signature, seconds) of the listed kernels a fit of this kind (``one``: one
    residual group, ``groups``: several) needs with this backend.  An entry whose module,
    function or types cannot be found is left out (the fit then compiles it on first call)."""
    from ._kernel_list import KERNELS

    out = []
    for module, name, sig, seconds, tags in KERNELS:
        if f"{kind}-{backend}" not in tags:
            continue
        try:
            disp = getattr(importlib.import_module(module), name)
            out.append((disp, _parse_signature(sig), seconds))
        except Exception:  # pragma: no cover - a list older than the code
            continue
    return out


def _in_cache(disp, sig) -> bool:
    """Whether numba's on-disk cache holds ``disp`` for ``sig`` (what its dispatcher would load).
    Reads numba's index file; any surprise in numba's internals counts as cached, so the fit
    falls back to numba's own compile-on-first-call."""
    try:
        cache = disp._cache
        key = cache._index_key(sig, disp.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # pragma: no cover - another numba
        return True


def missing_entries(entries: list[tuple]) -> list[tuple]:
    """The entries neither compiled in this process nor in the cache."""
    return [e for e in entries if tuple(e[1]) not in e[0].overloads and not _in_cache(e[0], e[1])]


# ---- compiling ---------------------------------------------------------------------------------
def _processes(busy: float | None = None) -> int:
    """Processes to compile in: ``SPARSEREML_COMPILE_PROCESSES``, else this one plus a worker per
    idle core: the threads policy's count (:func:`sparsereml.linalg.threads.choose_threads`) of
    the usable cores less the threads other processes are running now (``busy``; read from
    /proc/loadavg when None).  On a machine already busy a worker only adds its import and the
    kernels both compile; the 1-minute load average lags a minute behind an idle machine."""
    from .linalg.threads import (choose_threads, count_from_env, fixed_threads, runnable_elsewhere,
                                 usable_cores)

    given = count_from_env("SPARSEREML_COMPILE_PROCESSES", "processes")
    if given is not None:
        return given
    fixed = fixed_threads()  # Control(threads=n) or SPARSEREML_THREADS: n processes at most
    if fixed is not None and busy is None:
        return fixed
    if busy is None:  # a one-off decision worth seconds: the least of a few samples, not one that
        busy = min(_sampled(runnable_elsewhere, 5, 0.01))  # caught a passing thread elsewhere
    return choose_threads(usable_cores(), busy)


def _sampled(read, k: int, pause: float) -> list:
    out = [read()]
    for _ in range(k - 1):
        time.sleep(pause)
        out.append(read())
    return out


def _split(entries: list[tuple], parts: int) -> list[list[int]]:
    """Indices of ``entries`` in ``parts`` shares of about equal compile time, longest first
    (part 0 is this process's; the workers' shares start with their import time)."""
    load = [0.0] + [IMPORT_SECONDS] * (parts - 1)
    shares: list[list[int]] = [[] for _ in range(parts)]
    for i in sorted(range(len(entries)), key=lambda i: -entries[i][2]):
        p = min(range(parts), key=load.__getitem__)
        shares[p].append(i)
        load[p] += entries[i][2]
    return shares


def _worker_command() -> list[str]:
    return [sys.executable, "-c", "from sparsereml._warmup import _worker; _worker()"]


def _worker() -> None:
    """Worker process: compile the (module, function, signature) triples read from stdin as JSON;
    cache=True writes each to numba's cache."""
    for module, name, sig in json.load(sys.stdin):
        _compile_one(getattr(importlib.import_module(module), name), _parse_signature(sig))


def _compile_one(disp, sig) -> None:
    try:
        disp.compile(sig)
    except Exception:  # a list older than the code: the fit compiles what it calls, as it would anyway
        pass


def _compile(entries: list[tuple], processes: int) -> None:
    shares = _split(entries, max(1, min(processes, len(entries))))
    workers = []
    for share in (s for s in shares[1:] if s):
        jobs = [(e[0].py_func.__module__, e[0].py_func.__name__, repr(tuple(e[1]))) for e in (entries[i] for i in share)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        try:
            proc = subprocess.Popen(_worker_command(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env=env)
        except OSError:  # no interpreter to start (embedded Python): this process compiles it all
            shares[0] += share
            continue
        try:
            proc.stdin.write(json.dumps(jobs).encode())
            proc.stdin.close()
        except OSError:  # pragma: no cover - the worker died at once; the fit compiles its share
            pass
        workers.append(proc)
    try:
        for i in shares[0]:
            _compile_one(entries[i][0], entries[i][1])
    finally:
        for proc in workers:
            proc.wait()  # a failed worker only means that the fit compiles its share itself


def prepare(kind: str = "one", backend: str | None = None) -> None:
    """Compile, in parallel, the listed kernels a fit of this kind needs and neither memory nor
    numba's cache holds, with a line on stderr while it runs; once per process and kind.

    Parameters
    ----------
    kind : {"one", "groups", "glmm"}
        A model with one residual group, or with several (``at(F):units`` and the like); or what
        a GLMM adds to the first.
    backend : str, optional
        The factorisation backend (default: what the fit would choose).
    """
    from .linalg.backends import resolve_backend

    backend = resolve_backend(backend)
    if (kind, backend) in _STATE["prepared"]:
        return
    todo = missing_entries(kernel_entries(kind, backend))
    if todo:
        processes = _processes()
        t0 = time.perf_counter()
        n = max(1, min(processes, len(todo)))
        if not _STATE["announced"] and sum(e[2] for e in todo) > ANNOUNCE_AFTER:
            _STATE["announced"] = True
            _say(f"{LINE}, {n} process{'es' if n > 1 else ''} ...", end="")
            _STATE["finish"] = True
        _compile(todo, processes)
        if _STATE.pop("finish", False):
            _say(f" done ({time.perf_counter() - t0:.1f} s)")
    _STATE["prepared"].add((kind, backend))


def kind_of(spec) -> str:
    """``groups`` for a model whose residual is split by a factor (``at(F):units``), else ``one``."""
    return "groups" if spec.residual.at is not None else "one"


# ---- a line for compiling outside prepare() ----------------------------------------------------
class _Announcer(event.Listener):
    """numba listener: prints :data:`LINE` once per process when sparsereml kernels compile for
    more than :data:`ANNOUNCE_AFTER` seconds (a compile outside the list, e.g. a structure's)."""

    def __init__(self):
        self.depth = 0
        self.timer = None
        self.last_end = 0.0

    def on_start(self, ev) -> None:
        if _STATE["announced"] or not _ours(ev):
            return
        self.depth += 1
        if self.timer is None:
            self.timer = threading.Timer(ANNOUNCE_AFTER, self.fire)
            self.timer.daemon = True
            self.timer.start()

    def on_end(self, ev) -> None:
        if _ours(ev) and self.depth > 0:
            self.depth -= 1
            self.last_end = time.perf_counter()

    def fire(self) -> None:
        if _STATE["announced"]:
            self.timer = None
        elif self.depth > 0:
            _STATE["announced"] = True
            self.timer = None
            _say(f"{LINE} ...")
        elif time.perf_counter() - self.last_end < 0.25:  # between two kernels of one stage
            self.timer = threading.Timer(0.25, self.fire)
            self.timer.daemon = True
            self.timer.start()
        else:
            self.timer = None


def _ours(ev) -> bool:
    disp = ev.data.get("dispatcher") if isinstance(ev.data, dict) else None
    return getattr(getattr(disp, "py_func", None), "__module__", "").startswith("sparsereml")


def prepare_all() -> None:
    """Compile the listed kernels of every kind of fit and installed backend (``make setup``)."""
    from .linalg.backends import available_backends

    for backend in available_backends():
        for kind in ("one", "groups", "glmm"):
            prepare(kind, backend)


event.register("numba:compile", _Announcer())
