"""BLAS threads for the few large dense kernels of an iteration.

A fit runs with one BLAS thread: the many small dense blocks of a sparse factorisation are far
slower multithreaded on small machines.  The dense root of the factor (often a thousand columns
or more) does gain from every core, so its factorisation (in CHOLMOD) and its inverse (LAPACK
through SciPy) run inside :func:`dense_threads`, which raises the thread count of exactly the
OpenBLAS that serves the call (found through the calling module's own dependencies).

OpenBLAS keeps its worker threads spinning for a while after a threaded call, which starves the
numba kernels that follow (an iteration measured 40% slower), so on leaving, the worker pool is
shut down; OpenBLAS starts it again on its next threaded call.  Any other BLAS, or an OpenBLAS
that cannot be identified, is left alone: the call then runs with the caller's setting.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from ..errors import ModelError

__all__ = ["single_threaded", "dense_threads", "lapack_library", "cholmod_library", "in_parallel", "work_ranges"]

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


def _threads_wanted() -> int:
    env = os.environ.get("SPARSEREML_DENSE_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ModelError(f"SPARSEREML_DENSE_THREADS must be a positive whole number of threads, got {env!r}")
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_LOCK = threading.RLock()


@contextmanager
def single_threaded():
    """One BLAS/OpenMP thread for everything inside (restored on leaving).

    The worker pools of the OpenBLAS libraries that :func:`dense_threads` drives are stopped too:
    a pool stopped by an earlier fit is started again, spinning, when its thread count is set,
    and a spinning worker takes a core from the numba kernels of the data pass.  Fits in several
    threads of one process run one at a time (BLAS thread counts are process-wide)."""
    with _LOCK, _controller().limit(limits=1):
        if _threads_wanted() > 1:
            for path in {lapack_library(), cholmod_library()}:
                lib = _openblas(path)
                if lib is not None:
                    lib[1]()
        yield


@contextmanager
def dense_threads(library: str | None):
    """Run the enclosed dense calls with one thread per core (or ``SPARSEREML_DENSE_THREADS``)
    in the OpenBLAS at path ``library``; afterwards restore its thread count and stop its pool.

    Nothing happens for another BLAS, or when ``library`` is None."""
    n = _threads_wanted()
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
    numba is allowed (``numba.get_num_threads()``).  Plain threads, unlike numba's OpenMP
    workers, do not spin after the work: a LAPACK call right after keeps every core."""
    from numba import get_num_threads

    if len(chunks) <= 1 or get_num_threads() <= 1:
        return [fn(*args) for args in chunks]
    t = min(len(chunks), get_num_threads())
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
