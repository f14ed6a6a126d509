"""Compiled pedigree kernels: inbreeding (Meuwissen and Luo 1992), A-inverse triplets
(Henderson's rules with Quaas' inbreeding correction) and the tabular A of a small set.

Individuals are coded 1..n in an order where parents precede offspring; 0 is an unknown parent.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["inbreeding", "ainverse_triplets", "tabular_a", "generations"]


@njit(cache=True)
def _heap_push(heap, size, x):
    heap[size] = x
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if heap[p] >= heap[i]:
            break
        heap[p], heap[i] = heap[i], heap[p]
        i = p
    return size + 1


@njit(cache=True)
def _heap_pop(heap, size):
    top = heap[0]
    size -= 1
    heap[0] = heap[size]
    i = 0
    while True:
        left, right, big = 2 * i + 1, 2 * i + 2, i
        if left < size and heap[left] > heap[big]:
            big = left
        if right < size and heap[right] > heap[big]:
            big = right
        if big == i:
            break
        heap[big], heap[i] = heap[i], heap[big]
        i = big
    return top, size


@njit(cache=True)
def inbreeding(sire, dam):
    """Inbreeding coefficients F[1..n] (F[0] = -1 stands for an unknown parent) and the
    Mendelian-sampling variances D (A = T D T').

    Meuwissen and Luo (1992): a_ii = sum_j L_ij^2 D_j over i's ancestors j, visited from the
    youngest (largest code) with a max-heap; L_ij accumulates halves along the paths.  Full sibs
    listed one after another reuse the previous coefficient.
    """
    n = sire.shape[0] - 1
    F = np.zeros(n + 1)
    F[0] = -1.0
    D = np.zeros(n + 1)
    L = np.zeros(n + 1)
    inheap = np.zeros(n + 1, dtype=np.bool_)
    heap = np.empty(n + 1, dtype=np.int64)
    for i in range(1, n + 1):
        s, d = sire[i], dam[i]
        D[i] = 0.5 - 0.25 * (F[s] + F[d])
        if s == 0 or d == 0:
            F[i] = 0.0
            continue
        if i > 1 and s == sire[i - 1] and d == dam[i - 1]:
            F[i] = F[i - 1]
            continue
        size = 0
        L[i] = 1.0
        size = _heap_push(heap, size, i)
        inheap[i] = True
        aii = 0.0
        while size > 0:
            j, size = _heap_pop(heap, size)
            inheap[j] = False
            lj = L[j]
            L[j] = 0.0
            aii += lj * lj * D[j]
            for p in (sire[j], dam[j]):
                if p != 0:
                    L[p] += 0.5 * lj
                    if not inheap[p]:
                        inheap[p] = True
                        size = _heap_push(heap, size, p)
        F[i] = aii - 1.0
    return F, D


@njit(cache=True)
def ainverse_triplets(sire, dam, D):
    """Lower-triangle triplets (row >= col, 0-based) of A^-1 by Henderson's rules with D from
    inbreeding (Quaas 1976); duplicates are to be summed."""
    n = sire.shape[0] - 1
    m = 0
    for i in range(1, n + 1):
        k = 1 + (sire[i] != 0) + (dam[i] != 0)
        m += k * (k + 1) // 2
    rows = np.empty(m, dtype=np.int64)
    cols = np.empty(m, dtype=np.int64)
    vals = np.empty(m)
    q = 0
    idx = np.empty(3, dtype=np.int64)
    coef = np.empty(3)
    for i in range(1, n + 1):
        b = 1.0 / D[i]
        k = 0
        idx[k] = i
        coef[k] = 1.0
        k += 1
        for p in (sire[i], dam[i]):
            if p != 0:
                idx[k] = p
                coef[k] = -0.5
                k += 1
        for a in range(k):
            for c in range(a + 1):
                r, cc = idx[a], idx[c]
                if r < cc:
                    r, cc = cc, r
                rows[q] = r - 1
                cols[q] = cc - 1
                # a selfed individual has its parent twice: the cross term lands on the diagonal
                vals[q] = b * coef[a] * coef[c] * (2.0 if a != c and r == cc else 1.0)
                q += 1
    return rows, cols, vals


@njit(cache=True)
def tabular_a(sire, dam):
    """Dense A by the tabular (recursive) method for individuals 1..n (parents first)."""
    n = sire.shape[0] - 1
    A = np.zeros((n + 1, n + 1))
    for i in range(1, n + 1):
        s, d = sire[i], dam[i]
        for j in range(1, i):
            v = 0.0
            if s != 0:
                v += 0.5 * A[j, s]
            if d != 0:
                v += 0.5 * A[j, d]
            A[i, j] = v
            A[j, i] = v
        A[i, i] = 1.0 + (0.5 * A[s, d] if s != 0 and d != 0 else 0.0)
    return A[1:, 1:]


@njit(cache=True)
def generations(s_idx, d_idx):
    """Generation number of each individual (0 for founders) by Kahn's algorithm on 0-based
    parent indices (-1 unknown); individuals on or below a loop keep a positive in-degree."""
    n = s_idx.shape[0]
    indeg = np.zeros(n, dtype=np.int64)
    nchild = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        for p in (s_idx[i], d_idx[i]):
            if p >= 0:
                indeg[i] += 1
                nchild[p + 1] += 1
    for i in range(n):
        nchild[i + 1] += nchild[i]
    child = np.empty(nchild[n], dtype=np.int64)
    fill = nchild[:-1].copy()
    for i in range(n):
        for p in (s_idx[i], d_idx[i]):
            if p >= 0:
                child[fill[p]] = i
                fill[p] += 1
    gen = np.zeros(n, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    head = tail = 0
    for i in range(n):
        if indeg[i] == 0:
            queue[tail] = i
            tail += 1
    while head < tail:
        j = queue[head]
        head += 1
        for q in range(nchild[j], nchild[j + 1]):
            c = child[q]
            if gen[j] + 1 > gen[c]:
                gen[c] = gen[j] + 1
            indeg[c] -= 1
            if indeg[c] == 0:
                queue[tail] = c
                tail += 1
    return gen, indeg
