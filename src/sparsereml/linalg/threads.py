"""BLAS threads for the few large dense kernels of an iteration.

A fit runs with one BLAS thread: the many small dense blocks of a sparse factorisation are far
slower multithreaded on small machines.  The dense block of the factor (often a thousand columns
or more) does gain from every core, so its factorisation (in CHOLMOD) and its inverse (LAPACK
through SciPy) run inside :func:`dense_threads`, which raises the thread count of exactly the
OpenBLAS that serves the call (found through the calling module's own dependencies).

OpenBLAS keeps its worker threads spinning for a while after a threaded call, which starves the
numba kernels that follow (benchmarks/RESULTS.md), so on leaving, the worker pool is
shut down; OpenBLAS starts it again on its next threaded call.  Any other BLAS, or an OpenBLAS
that cannot be identified, is left alone: the call then runs with the caller's setting.

How many threads (:func:`thread_budget`): by default the cores this process may use
(:func:`usable_cores`: its CPU affinity, a cgroup CPU quota, and ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS`` or ``NUMBA_NUM_THREADS`` when set, as joblib's workers have them) less the
threads of other processes that are runnable at that moment (:func:`runnable_elsewhere`), decided
again at every parallel step (each dense call and each split between plain threads).  A waiting
OpenBLAS thread spins instead of sleeping, so two fits that each ran two threads on two cores
spent most of their time spinning while the thread they waited for was not scheduled; with the
budget, two fits on two cores run one thread each.  ``SPARSEREML_THREADS=n`` (or the
``threads`` argument of :func:`single_threaded`) fixes the count at n, with no regard to load.
"""
from __future__ import annotations

import ctypes
import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from ..errors import ModelError

__all__ = ["single_threaded", "dense_threads", "lapack_library", "cholmod_library", "in_parallel", "work_ranges",
           "thread_budget", "fixed_threads", "count_from_env", "choose_threads", "usable_cores", "runnable_elsewhere"]

_CACHE: dict = {}


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _library_of(address: int | None) -> str | None:
    """Real path of the shared library that holds ``address`` (dladdr), or None."""
    if not address:
        return None
    try:
        dladdr = ctypes.CDLL(None).dladdr
    except Exception:  # pragma: no cover - a platform without dladdr (Windows)
        return None
    info = _DlInfo()
    if not dladdr(ctypes.c_void_p(address), ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.path.realpath(info.dli_fname.decode())


_GET_THREADS = ("openblas_get_num_threads", "openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                "scipy_openblas_get_num_threads64_")


def _openblas_behind(module_file: str) -> str | None:
    """Path of the OpenBLAS that an extension module calls: an OpenBLAS-only symbol looked up
    through the module's own dependencies (dlsym on its handle), then located with dladdr.
    None when the module does not use OpenBLAS."""
    try:
        handle = ctypes.CDLL(module_file)
    except OSError:  # pragma: no cover
        return None
    for name in _GET_THREADS:
        fn = getattr(handle, name, None)
        if fn is not None:
            return _library_of(ctypes.cast(fn, ctypes.c_void_p).value)
    return None


def lapack_library() -> str | None:
    """The OpenBLAS behind ``scipy.linalg.lapack``, or None."""
    if "lapack" not in _CACHE:
        from scipy.linalg import _flapack

        _CACHE["lapack"] = _openblas_behind(_flapack.__file__)
    return _CACHE["lapack"]


def cholmod_library() -> str | None:
    """The OpenBLAS that CHOLMOD (scikit-sparse) calls, or None."""
    if "cholmod" not in _CACHE:
        try:
            import sksparse.cholmod as cm
        except ImportError:
            _CACHE["cholmod"] = None
        else:
            _CACHE["cholmod"] = _openblas_behind(cm.__file__)
    return _CACHE["cholmod"]


def _controller():
    """A threadpoolctl controller of the loaded libraries, made again only when modules were
    imported since (making one inspects every loaded library: a few milliseconds)."""
    from threadpoolctl import ThreadpoolController

    key = len(sys.modules)
    if _CACHE.get("ctl_key") != key:
        _CACHE["ctl"], _CACHE["ctl_key"] = ThreadpoolController(), key
    return _CACHE["ctl"]


def _pools() -> list:
    """(threadpoolctl controller, shutdown function) of every loaded OpenBLAS that has one."""
    out = []
    for lc in _controller().lib_controllers:
        shutdown = getattr(lc.dynlib, "blas_thread_shutdown_", None) if lc.internal_api == "openblas" else None
        if shutdown is not None:
            out.append((lc, shutdown))
    return out


def _openblas(path: str | None):
    """(controller, shutdown function) of the OpenBLAS at ``path``, or None."""
    if path is None:
        return None
    if ("ctl", path) not in _CACHE:
        found = [p for p in _pools() if os.path.realpath(p[0].filepath) == path]
        _CACHE[("ctl", path)] = found[0] if found else None
    return _CACHE[("ctl", path)]


def count_from_env(name: str, what: str = "threads") -> int | None:
    """A positive whole number (of threads, or ``what``) from environment variable ``name``; None
    when unset; anything else is a ModelError naming the variable."""
    env = os.environ.get(name, "").strip()
    if not env:
        return None
    if not env.isdigit() or int(env) < 1:
        raise ModelError(f"{name} must be a positive whole number of {what}, got {env!r}; "
                         f"unset it to let sparsereml choose")
    return int(env)


_CGROUP = ("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def cgroup_cpus(paths: tuple = _CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in cores (cgroup v2 ``cpu.max``: "quota period" or
    "max period"; else v1 ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``, -1 for none), or None
    when there is none or it cannot be read."""
    v2, v1_quota, v1_period = paths
    try:
        with open(v2) as f:
            fields = f.read().split()
    except OSError:
        try:
            with open(v1_quota) as f, open(v1_period) as g:
                fields = [f.read().strip(), g.read().strip()]
        except OSError:
            return None
    try:
        quota, period = float(fields[0]), float(fields[1])
    except (IndexError, ValueError):  # "max": no quota
        return None
    return quota / period if quota > 0 and period > 0 else None


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (rounded
    up) and by ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and numba's ``NUMBA_NUM_THREADS``
    when those are set (parallel launchers such as joblib's set them in their workers)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    if "quota" not in _CACHE:  # read once: a quota does not change under a running process
        _CACHE["quota"] = cgroup_cpus()
    quota = _CACHE["quota"]
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env = os.environ.get(name, "").strip().split(",")[0]  # OpenMP allows a list per nesting level
        if env.isdigit() and int(env) >= 1:
            cores = min(cores, int(env))
    from numba import config

    return max(1, min(cores, config.NUMBA_NUM_THREADS))


def _own_runnable(tasks: str = "/proc/self/task") -> int:
    """Threads of this process that are runnable now (at least 1: the caller)."""
    n = 0
    try:
        names = os.listdir(tasks)
    except OSError:
        return 1
    for tid in names:
        try:
            with open(f"{tasks}/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended
            continue
        n += stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] == b"R"
    return max(1, n)


def runnable_elsewhere(loadavg: str = "/proc/loadavg", tasks: str = "/proc/self/task") -> float:
    """Threads of other processes that are runnable on this process's share of the machine right
    now: the kernel's count of runnable threads (4th field of /proc/loadavg) less this process's
    own (numba's OpenMP workers keep running for a moment after a kernel), scaled by the
    fraction of the machine's CPUs this process may use.  0 when the count cannot be read (then
    every usable core is taken)."""
    try:
        with open(loadavg) as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return 0.0
    if running <= 1:  # only the caller: the common case of a lone fit costs one small read
        return 0.0
    online = os.cpu_count() or 1
    return max(0, running - _own_runnable(tasks)) * min(1.0, usable_cores() / online)


def choose_threads(cores: int, busy: float, fixed: int | None = None) -> int:
    """The policy: ``fixed`` threads when given, else the usable ``cores`` less the ``busy``
    threads of others (rounded to nearest), at least one.

    >>> choose_threads(2, 0), choose_threads(2, 1), choose_threads(8, 2.4), choose_threads(2, 3, fixed=4)
    (2, 1, 6, 4)
    """
    if fixed is not None:
        return fixed
    return max(1, min(cores, int(math.floor(cores - busy + 0.5))))


# the thread counts of the running fit (None: by load); "set" once a fit's own counts rule, so
# that an explicit None is not replaced by the environment's value
_FIT: dict = {"set": False, "threads": None, "dense": None}


def thread_budget(threads: int | None = None) -> int:
    """Threads for the next parallel step: ``threads`` when given, else the count fixed for the
    running fit (:func:`single_threaded`), else ``SPARSEREML_THREADS``, else
    :func:`choose_threads` of :func:`usable_cores` and :func:`runnable_elsewhere` now."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                or threads < 1):
        raise ModelError(f"threads must be a positive whole number (or None to follow the machine's load), "
                         f"got {threads!r}")
    fixed = threads if threads is not None else fixed_threads()
    if fixed is not None:
        return int(fixed)
    return choose_threads(usable_cores(), runnable_elsewhere())


def fixed_threads() -> int | None:
    """The thread count fixed for the running fit (``Control.threads``), outside a fit by
    ``SPARSEREML_THREADS``; None when the count follows the machine's load."""
    return _FIT["threads"] if _FIT["set"] else count_from_env("SPARSEREML_THREADS")


def _dense_budget() -> int:
    dense = _FIT["dense"] if _FIT["set"] else count_from_env("SPARSEREML_DENSE_THREADS")
    return dense if dense is not None else thread_budget()


_LOCK = threading.RLock()


@contextmanager
def single_threaded(threads: int | None = None, dense_threads: int | None = None, env: bool = True):
    """One BLAS/OpenMP thread for everything inside (restored on leaving); numba's kernels get
    :func:`usable_cores` threads (or ``threads``), and the parallel steps inside take
    :func:`thread_budget` threads each, decided when they start; the dense LAPACK calls take
    ``dense_threads`` (None: as the parallel steps).

    With ``env`` (the default, for use outside a fit) a count given as None is read from
    ``SPARSEREML_THREADS`` / ``SPARSEREML_DENSE_THREADS``; a fit passes its
    :class:`~sparsereml.Control`'s counts with ``env=False``, None then meaning "by load".

    The worker pools of the OpenBLAS libraries that :func:`dense_threads` drives are stopped too:
    a pool stopped by an earlier fit is started again, spinning, when its thread count is set,
    and a spinning worker takes a core from the numba kernels of the data pass.  Fits in several
    threads of one process run one at a time (BLAS thread counts are process-wide)."""
    import numba

    for count in (threads, dense_threads):
        if count is not None:
            thread_budget(count)  # refuses a bad count
    if env:  # a bad value is refused before the fit, not in its middle
        threads = threads if threads is not None else count_from_env("SPARSEREML_THREADS")
        dense_threads = dense_threads if dense_threads is not None else count_from_env("SPARSEREML_DENSE_THREADS")
    fixed = threads
    me = threading.get_ident()
    if _FIT["set"] and _FIT.get("owner") == me and (_FIT["threads"], _FIT["dense"]) == (fixed, dense_threads):
        yield  # inside the same setting already, in this thread: nothing to set, nothing to restore
        return
    with _LOCK, _controller().limit(limits=1):
        before = (dict(_FIT), numba.get_num_threads())
        _FIT.update(set=True, threads=fixed, dense=dense_threads, owner=me)
        numba.set_num_threads(max(1, min(fixed or usable_cores(), numba.config.NUMBA_NUM_THREADS)))
        try:
            for path in {lapack_library(), cholmod_library()}:
                lib = _openblas(path)
                if lib is not None:
                    lib[1]()
            yield
        finally:
            _FIT.update(before[0])
            numba.set_num_threads(before[1])


@contextmanager
def dense_threads(library: str | None):
    """Run the enclosed dense calls with :func:`thread_budget` threads (or
    ``SPARSEREML_DENSE_THREADS``) in the OpenBLAS at path ``library``; afterwards restore its
    thread count and stop its pool.

    Nothing happens for another BLAS, when ``library`` is None, or when the budget is one thread."""
    n = _dense_budget()
    lib = _openblas(library) if n > 1 else None
    if lib is None:
        yield
        return
    lc, shutdown = lib
    with _LOCK:
        before = lc.get_num_threads()
        lc.set_num_threads(n)
        try:
            yield
        finally:
            lc.set_num_threads(before)  # before the shutdown: setting it starts the workers again
            shutdown()


_POOL: dict = {}  # worker threads kept for reuse, by count


def in_parallel(fn, chunks: list) -> list:
    """``[fn(*args) for args in chunks]`` with the chunks after the first on worker threads (fn
    must release the GIL, e.g. a numba kernel compiled with ``nogil=True``), as many threads as
    numba is allowed (``numba.get_num_threads()``) and :func:`thread_budget` gives now.  Plain
    threads, unlike numba's OpenMP workers, do not spin after the work: a LAPACK call right
    after keeps every core."""
    from numba import get_num_threads

    if len(chunks) <= 1 or get_num_threads() <= 1:
        return [fn(*args) for args in chunks]
    t = min(len(chunks), get_num_threads(), thread_budget())
    if t <= 1:
        return [fn(*args) for args in chunks]
    k = t - 1
    if k not in _POOL:
        _POOL[k] = ThreadPoolExecutor(k, thread_name_prefix="sparsereml")
    # thread i takes chunks i, i + t, i + 2t, ... (the calling thread is thread 0)
    rest = [_POOL[k].submit(_run_each, fn, chunks[i::t]) for i in range(1, t)]
    parts = [_run_each(fn, chunks[0::t])] + [r.result() for r in rest]
    out = [None] * len(chunks)
    for i, part in enumerate(parts):
        out[i::t] = part
    return out


def work_ranges(work, parts: int, cumulative: bool = False) -> list:
    """Split items 0..n-1 with these amounts of work into at most ``parts`` consecutive ranges
    (a, b) of about equal work, empty ranges left out.  With ``cumulative``, ``work`` is the
    running total from 0 (length n + 1)."""
    cum = np.asarray(work, dtype=float) if cumulative else np.concatenate([[0.0], np.cumsum(work, dtype=float)])
    n = cum.size - 1
    cut = np.searchsorted(cum, cum[-1] * np.arange(parts + 1) / parts)
    cut[0], cut[-1] = 0, n
    return [(int(a), int(b)) for a, b in zip(cut[:-1], cut[1:]) if b > a]


def _run_each(fn, chunks: list) -> list:
    return [fn(*args) for args in chunks]
