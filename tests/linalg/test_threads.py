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
