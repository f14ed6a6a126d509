"""BLAS threads around the dense root (linalg/threads.py)."""
import os
import threading

import numpy as np
import pytest
from scipy.linalg import lapack
from threadpoolctl import threadpool_info

from sparsereml.linalg import threads


def _openblas_paths():
    return {os.path.realpath(i["filepath"]): i for i in threadpool_info() if i["internal_api"] == "openblas"}


def test_lapack_library_is_the_openblas_scipy_loaded():
    path = threads.lapack_library()
    if path is None:
        pytest.skip("SciPy does not use OpenBLAS here")
    assert path in _openblas_paths()


@pytest.fixture
def lapack_openblas():
    """(path, threadpoolctl controller) of the OpenBLAS behind scipy.linalg.lapack."""
    path = threads.lapack_library()
    if path is None or threads._openblas(path) is None:
        pytest.skip("no OpenBLAS with a pool to control")
    return path, threads._openblas(path)[0]


def test_dense_threads_raises_and_restores_the_thread_count(monkeypatch, lapack_openblas):
    path, lc = lapack_openblas
    monkeypatch.setenv("SPARSEREML_DENSE_THREADS", "2")
    before = lc.get_num_threads()
    with threads.single_threaded():
        assert lc.get_num_threads() == 1
        with threads.dense_threads(path):
            assert lc.get_num_threads() == 2
            A = np.eye(300) * 4.0 + 0.01
            c, info = lapack.dpotrf(A, lower=1)
            inv, info = lapack.dpotri(c, lower=1)
        assert lc.get_num_threads() == 1
        # the inverse is right with the threaded call
        full = np.tril(inv) + np.tril(inv, -1).T
        assert np.allclose(full @ A, np.eye(300), atol=1e-10)
    assert lc.get_num_threads() == before


def test_one_thread_wanted_leaves_blas_alone(monkeypatch, lapack_openblas):
    path, lc = lapack_openblas
    monkeypatch.setenv("SPARSEREML_DENSE_THREADS", "1")
    with threads.single_threaded():
        with threads.dense_threads(path):
            assert lc.get_num_threads() == 1


def test_unknown_library_is_a_no_op():
    with threads.dense_threads(None):
        pass
    with threads.dense_threads("/no/such/libopenblas.so"):
        pass


def test_a_bad_thread_count_is_named(monkeypatch):
    from sparsereml.errors import ModelError

    monkeypatch.setenv("SPARSEREML_DENSE_THREADS", "two")
    with pytest.raises(ModelError, match="SPARSEREML_DENSE_THREADS"):
        with threads.single_threaded():
            pass


def test_in_parallel_keeps_the_order_of_the_chunks():
    import numba

    from sparsereml.linalg.threads import in_parallel

    chunks = [(k, k + 1) for k in range(5)]
    assert in_parallel(lambda a, b: (a, b, threading.current_thread().name), chunks)[2][:2] == (2, 3)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)  # no worker threads: all chunks on the caller's thread
        names = {r[2] for r in in_parallel(lambda a, b: (a, b, threading.current_thread().name), chunks)}
        assert names == {threading.current_thread().name}
    finally:
        numba.set_num_threads(before)
    assert [r[0] for r in in_parallel(lambda a, b: (a, b), chunks)] == [0, 1, 2, 3, 4]


def test_work_ranges_cover_every_item_once_in_balanced_ranges():
    from sparsereml.linalg.threads import work_ranges

    work = np.array([5.0, 1, 1, 1, 1, 1, 0, 0, 1, 4])
    ranges = work_ranges(work, 2)
    assert ranges[0][0] == 0 and ranges[-1][1] == work.size
    assert all(b > a for a, b in ranges) and all(r[1] == s[0] for r, s in zip(ranges, ranges[1:]))
    sums = [work[a:b].sum() for a, b in ranges]
    assert len(ranges) == 2 and max(sums) <= 0.5 * work.sum() + work.max()
    cum = np.concatenate([[0.0], np.cumsum(work)])
    assert work_ranges(cum, 2, cumulative=True) == ranges
    assert work_ranges(np.zeros(4), 3) == [(0, 4)]  # no work at all: one range
    assert work_ranges(work, 1) == [(0, work.size)]


# ---- the thread budget: how many threads a parallel step takes (fair sharing, issue 13 item 6)


@pytest.mark.parametrize("cores, busy, fixed, expected", [
    (2, 0, None, 2),    # a quiet machine: every usable core
    (2, 1, None, 1),    # another fit (or any busy thread) beside: one thread each
    (2, 3, None, 1),    # overloaded: never fewer than one
    (8, 2.4, None, 6),  # the others' share rounds to nearest
    (8, 2.5, None, 6),
    (4, 0, 1, 1),       # a fixed count wins over the load ...
    (2, 3, 4, 4),       # ... and over the cores (the user asked for it)
])
def test_choose_threads_is_the_cores_less_the_busy_threads(cores, busy, fixed, expected):
    assert threads.choose_threads(cores, busy, fixed) == expected


def _fake_proc(tmp_path, running: int, states: str):
    """A /proc/loadavg with ``running`` runnable threads and a task directory with one thread
    per letter of ``states`` (R runnable, S sleeping)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    loadavg = tmp_path / "loadavg"
    loadavg.write_text(f"3.10 2.00 1.50 {running}/321 4242\n")
    tasks = tmp_path / "task"
    for i, state in enumerate(states):
        (tasks / str(100 + i)).mkdir(parents=True)
        # the command name may hold ") " and spaces: the state follows the last ")"
        (tasks / str(100 + i) / "stat").write_text(f"{100 + i} (python ) x) {state} 1 2 3 4\n")
    return str(loadavg), str(tasks)


def test_runnable_elsewhere_leaves_out_this_process(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    loadavg, tasks = _fake_proc(tmp_path, 4, "RRSS")  # the caller and a spinning worker of ours
    assert threads.runnable_elsewhere(loadavg, tasks) == 2
    loadavg, tasks = _fake_proc(tmp_path / "b", 1, "")
    assert threads.runnable_elsewhere(loadavg, tasks) == 0  # only the caller: the task list is not read


def test_runnable_elsewhere_counts_the_share_of_the_machine_this_process_may_use(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 16)
    loadavg, tasks = _fake_proc(tmp_path, 9, "R")
    assert threads.runnable_elsewhere(loadavg, tasks) == pytest.approx(8 * 4 / 16)


def test_an_unreadable_load_counts_as_no_load(tmp_path):
    assert threads.runnable_elsewhere(str(tmp_path / "missing")) == 0
    (tmp_path / "odd").write_text("not a load average")
    assert threads.runnable_elsewhere(str(tmp_path / "odd")) == 0


def test_cgroup_quota_in_cores(tmp_path):
    v2, q, p = tmp_path / "cpu.max", tmp_path / "quota", tmp_path / "period"
    missing = str(tmp_path / "none")
    v2.write_text("150000 100000\n")
    assert threads.cgroup_cpus((str(v2), missing, missing)) == 1.5
    v2.write_text("max 100000\n")
    assert threads.cgroup_cpus((str(v2), missing, missing)) is None
    q.write_text("200000\n")
    p.write_text("100000\n")
    assert threads.cgroup_cpus((missing, str(q), str(p))) == 2.0  # cgroup v1
    q.write_text("-1\n")
    assert threads.cgroup_cpus((missing, str(q), str(p))) is None
    assert threads.cgroup_cpus((missing, missing, missing)) is None


def test_usable_cores_follow_affinity_quota_and_launcher_variables(monkeypatch):
    import numba

    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 64)
    monkeypatch.setitem(threads._CACHE, "quota", None)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert threads.usable_cores() == 6
    monkeypatch.setitem(threads._CACHE, "quota", 2.5)  # a container with 2.5 CPUs
    assert threads.usable_cores() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2,1")  # as joblib's workers have it (a list per nesting level)
    assert threads.usable_cores() == 2
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert threads.usable_cores() == 1
    monkeypatch.setitem(threads._CACHE, "quota", None)
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 4)
    assert threads.usable_cores() == 4


def test_thread_budget_fixed_by_argument_or_variable_else_by_load(monkeypatch):
    monkeypatch.delenv("SPARSEREML_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 3.0)
    assert threads.thread_budget() == 1
    assert threads.thread_budget(3) == 3
    monkeypatch.setenv("SPARSEREML_THREADS", "2")
    assert threads.thread_budget() == 2
    assert threads.thread_budget(4) == 4  # the argument wins over the variable
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 0.0)
    monkeypatch.delenv("SPARSEREML_THREADS")
    assert threads.thread_budget() == 4


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", "two", True])
def test_a_bad_threads_argument_is_refused(bad):
    from sparsereml.errors import ModelError

    with pytest.raises(ModelError, match="threads must be a positive whole number"):
        with threads.single_threaded(threads=bad):
            pass


@pytest.mark.parametrize("name", ["SPARSEREML_THREADS", "SPARSEREML_DENSE_THREADS"])
def test_a_bad_thread_variable_is_refused_before_the_fit(monkeypatch, name):
    from sparsereml.errors import ModelError

    monkeypatch.setenv(name, "all")
    with pytest.raises(ModelError, match=f"{name} must be a positive whole number.*unset it"):
        with threads.single_threaded():
            pass


def _thread_names(n_chunks: int = 6) -> set:
    out = threads.in_parallel(lambda i: threading.current_thread().name, [(i,) for i in range(n_chunks)])
    return set(out)


def test_a_fit_beside_busy_threads_runs_its_steps_on_one_thread(monkeypatch, lapack_openblas):
    import numba

    path, lc = lapack_openblas
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba runs one thread here")
    for name in ("SPARSEREML_THREADS", "SPARSEREML_DENSE_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    busy = {"threads": 1.0}
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: busy["threads"])
    with threads.single_threaded():
        assert numba.get_num_threads() == 2  # numba's kernels: the usable cores
        assert _thread_names() == {threading.current_thread().name}
        with threads.dense_threads(path):
            assert lc.get_num_threads() == 1
        busy["threads"] = 0.0  # the other process has finished: decided again at the next step
        assert len(_thread_names()) == 2
        with threads.dense_threads(path):
            assert lc.get_num_threads() == 2


def test_a_fixed_count_holds_whatever_the_load(monkeypatch):
    import numba

    monkeypatch.delenv("SPARSEREML_THREADS", raising=False)
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 10.0)
    before = numba.get_num_threads()
    with threads.single_threaded(threads=1):
        assert numba.get_num_threads() == 1 and threads.thread_budget() == 1
    if numba.config.NUMBA_NUM_THREADS >= 2:
        with threads.single_threaded(threads=2):
            assert numba.get_num_threads() == 2 and threads.thread_budget() == 2
            assert len(_thread_names()) == 2
    assert numba.get_num_threads() == before and threads._FIT["threads"] is None
