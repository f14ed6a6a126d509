"""Small compiled helpers shared by the data pass and the linear algebra."""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["counting_sort", "find_sorted", "gallop", "grow_triplets", "sort_rows"]


@njit(cache=True, nogil=True)
def find_sorted(a, lo, hi, v):
    """Position of v in the sorted slice a[lo:hi], or -1 when absent."""
    while lo < hi:
        mid = (lo + hi) // 2
        x = a[mid]
        if x < v:
            lo = mid + 1
        elif x > v:
            hi = mid
        else:
            return mid
    return -1


@njit(cache=True, nogil=True)
def gallop(a, lo, hi, v):
    """find_sorted for a search that starts near ``lo`` (successive values increase)."""
    step = 1
    while lo + step < hi and a[lo + step] < v:
        step *= 2
    return find_sorted(a, lo, min(lo + step + 1, hi), v)


@njit(cache=True, nogil=True)
def grow_triplets(i, j, v, used, need):
    """Make room for ``need`` more triplets after the first ``used`` (doubling the arrays)."""
    if used + need <= i.shape[0]:
        return i, j, v
    cap = 2 * (used + need)
    return (np.concatenate((i[:used], np.empty(cap - used, dtype=np.int64))),
            np.concatenate((j[:used], np.empty(cap - used, dtype=np.int64))),
            np.concatenate((v[:used], np.empty(cap - used))))


@njit(cache=True, nogil=True)
def counting_sort(keys, n_keys):
    """Stable counting sort of small integer keys (0..n_keys-1): the pointers of each key's run
    and the positions in key order (``order[ptr[k]:ptr[k+1]]`` are the positions with key k)."""
    ptr = np.zeros(n_keys + 1, dtype=np.int64)
    for k in keys:
        ptr[k + 1] += 1
    for k in range(n_keys):
        ptr[k + 1] += ptr[k]
    fill = ptr[:-1].copy()
    order = np.empty(keys.shape[0], dtype=np.int64)
    for i in range(keys.shape[0]):
        order[fill[keys[i]]] = i
        fill[keys[i]] += 1
    return ptr, order


@njit(cache=True)
def sort_rows(Cp, Ci, Cx):
    """Sort the rows within every column of a CSC matrix in place, values ``Cx`` carried along
    (for a pattern alone, any array of the same length), by transposing it twice with counting
    sorts: each transpose lists entries in the order of the columns it scans.  Linear in the
    entries, where sorting each column on its own costs m log m for a column of m rows: the
    columns of W'W of widely crossed levels (a mother met in many trials) hold thousands of rows,
    and sorting them one by one dominated the time of forming W'W."""
    n = Cp.shape[0] - 1
    nnz = Cp[n]
    Rp = np.zeros(n + 1, dtype=np.int64)
    for q in range(nnz):
        Rp[Ci[q] + 1] += 1
    for a in range(n):
        Rp[a + 1] += Rp[a]
    Rj = np.empty(nnz, dtype=np.int64)
    Rx = np.empty(nnz)
    fill = Rp[:n].copy()
    for b in range(n):
        for q in range(Cp[b], Cp[b + 1]):
            k = fill[Ci[q]]
            Rj[k] = b
            Rx[k] = Cx[q]
            fill[Ci[q]] = k + 1
    fill = Cp[:n].copy()
    for a in range(n):  # rows in increasing order: each column receives its rows sorted
        for k in range(Rp[a], Rp[a + 1]):
            q = fill[Rj[k]]
            Ci[q] = a
            Cx[q] = Rx[k]
            fill[Rj[k]] = q + 1
