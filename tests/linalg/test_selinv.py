"""Selected inverse, log-determinant and solves against dense linear algebra (numpy)."""
import numpy as np
import pytest
import scipy.sparse as sp

from sparsereml.linalg import SparseLDL, available_backends, selinv


def _spd(n, density, seed, blocks=1):
    rng = np.random.default_rng(seed)
    parts = []
    for b in range(blocks):  # several disconnected components give several roots
        A = sp.random(n, n, density=density, random_state=rng)
        parts.append(A + A.T)
    A = sp.block_diag(parts).tocsc()
    A = A + sp.diags(np.abs(A).sum(axis=1).A1 + 1.0)
    return sp.csc_matrix(A)


def assert_matches_dense(f, A, low):
    """The factor's selected inverse and log-determinant equal numpy's dense ones."""
    dense = A.toarray()
    inv = np.linalg.inv(dense)
    rows = low.indices
    cols = np.repeat(np.arange(A.shape[0]), np.diff(low.indptr))
    np.testing.assert_allclose(f.selected_inverse(), inv[rows, cols], rtol=1e-9, atol=1e-13)
    assert f.logdet() == pytest.approx(np.linalg.slogdet(dense)[1], rel=1e-12)
    return inv


@pytest.mark.parametrize("name", available_backends())
@pytest.mark.parametrize("n,density,blocks", [(40, 0.08, 1), (300, 0.02, 2), (900, 0.01, 1)])
def test_selected_inverse_logdet_solve(name, n, density, blocks):
    A = _spd(n, density, n + blocks, blocks)
    low = sp.tril(A).tocsc()
    low.sort_indices()
    f = SparseLDL(low, backend=name)
    f.factorize(low.data)
    assert_matches_dense(f, A, low)
    # every level split between two threads, however little work it has, and every level in
    # one run on one thread: the same inverse
    ptr, order = f._levels
    wide = np.diff(ptr).max() >= 2  # some level has two supernodes or more
    for min_work, threads in ((0.0, 2), (np.inf, 2), (0.0, 1)):
        f._selinv_plan = selinv.selinv_plan(f._Lp, f.sn_start, f._skip, ptr, order, threads, min_work, f._kids)
        split = any(len(seg) > 1 for seg in f._selinv_plan)
        assert split == (wide and threads == 2 and min_work == 0.0)
        assert_matches_dense(f, A, low)
    b = np.random.default_rng(0).standard_normal((A.shape[0], 3))
    np.testing.assert_allclose(A @ f.solve(b), b, atol=1e-9)
    np.testing.assert_allclose(A @ f.solve(b[:, 0]), b[:, 0], atol=1e-9)


@pytest.mark.parametrize("name", available_backends())
def test_refactor_with_new_values_reuses_the_analysis(name):
    A = _spd(200, 0.03, 7)
    low = sp.tril(A).tocsc()
    low.sort_indices()
    f = SparseLDL(low, backend=name)
    for scale in (1.0, 3.0):
        data = low.data * np.where(low.indices == np.repeat(np.arange(200), np.diff(low.indptr)), scale, 1.0)
        f.factorize(data)
        M = sp.csc_matrix((data, low.indices, low.indptr), shape=low.shape)
        M = (M + M.T - sp.diags(M.diagonal())).toarray()
        assert f.logdet() == pytest.approx(np.linalg.slogdet(M)[1], rel=1e-12)


def test_not_positive_definite_is_reported():
    from sparsereml.linalg import NotPositiveDefinite

    A = sp.csc_matrix(np.array([[1.0, 2.0], [2.0, 1.0]]))
    low = sp.tril(A).tocsc()
    for name in available_backends():
        f = SparseLDL(low, backend=name)
        with pytest.raises(NotPositiveDefinite):
            f.factorize(low.data)


def _mme_like(seed=3, n_a=300, n_b=40, n_c=25):
    """A pattern like mixed-model equations: a large set A whose block is diagonal (absorbed),
    each unknown of A linked to a few of B and one of C; B and C denser."""
    rng = np.random.default_rng(seed)
    n = n_a + n_b + n_c
    rows, cols = [], []
    for j in range(n_a):
        nb = n_a + rng.choice(n_b, size=3, replace=False)
        nc = n_a + n_b + rng.integers(n_c)
        for r in list(nb) + [nc]:
            rows.append(r)
            cols.append(j)
    for _ in range(120):
        a, b = n_a + rng.integers(n_b + n_c, size=2)
        if a != b:
            rows.append(max(a, b))
            cols.append(min(a, b))
    A = sp.csc_matrix((rng.uniform(-1, 1, len(rows)), (rows, cols)), shape=(n, n))
    A = A + A.T
    A = A + sp.diags(np.abs(A).sum(axis=1).A1 + 0.5)
    groups = np.repeat([0, 1, 2], [n_a, n_b, n_c])
    return sp.csc_matrix(A), groups


@pytest.mark.parametrize("name", available_backends())
def test_absorption_and_grouped_ordering_are_exact(name):
    A, groups = _mme_like()
    low = sp.tril(A).tocsc()
    low.sort_indices()
    f = SparseLDL(low, backend=name, groups=groups)
    assert f.n_absorbed >= 250  # most of the diagonal block is eliminated before the backend
    f.factorize(low.data)
    inv = assert_matches_dense(f, A, low)
    # a sparse T (forward substitution along its elimination-tree paths) and a mostly nonzero
    # one (solved as a dense block)
    for density in (0.05, 0.9):
        T = sp.random(A.shape[0], 6, density=density, random_state=1, format="csc")
        np.testing.assert_allclose(f.inverse_quadratic(T), T.T.toarray() @ inv @ T.toarray(), rtol=1e-9, atol=1e-12)
    no = SparseLDL(low, backend=name, absorb=False)
    no.factorize(low.data)
    assert no.n_absorbed == 0 and no.logdet() == pytest.approx(f.logdet(), rel=1e-12)
    np.testing.assert_allclose(no.inverse_quadratic(T), T.T.toarray() @ inv @ T.toarray(), rtol=1e-9, atol=1e-12)


def _cells_on_leaves(seed=4, n_leaves=5, width=6, n_root=60, cells=30):
    """Leaves (cliques) tied to subsets of a dense root, and single unknowns ("cells") each tied
    to a few columns of one leaf and one root unknown: after absorption, the cells hang off the
    leaves' supernodes, as the Trial:Mother cells of the trial network hang off its blocks."""
    rng = np.random.default_rng(seed)
    n_cells = n_leaves * cells
    r0 = n_cells + n_leaves * width
    n = r0 + n_root
    M = np.zeros((n, n))
    M[r0:, r0:] = rng.normal(size=(n_root, n_root)) * 0.1
    for k in range(n_leaves):
        a = n_cells + k * width
        M[a:a + width, a:a + width] = rng.normal(size=(width, width))
        nb = r0 + rng.choice(n_root, size=n_root // 3, replace=False)
        M[np.ix_(nb, np.arange(a, a + width))] = rng.normal(size=(nb.size, width))
        for c in range(k * cells, (k + 1) * cells):
            M[a + rng.choice(width, size=rng.integers(1, width + 1), replace=False), c] = rng.normal()
            M[rng.choice(nb), c] = rng.normal()
    A = M + M.T
    A += np.diag(np.abs(A).sum(axis=1) + 1.0)
    return sp.csc_matrix(A)


@pytest.mark.parametrize("name", available_backends())
@pytest.mark.parametrize("star", [True, False])
def test_single_columns_done_with_their_parent_supernode(name, star):
    """Columns whose recursion reads their parent supernode's dense blocks of Z
    (selinv.fused_children) give numpy's inverse, whether the parents are a star's leaves or
    supernodes of the sparse backend's factor."""
    A = _cells_on_leaves()
    low = sp.tril(A).tocsc()
    low.sort_indices()
    groups = np.zeros(A.shape[0], dtype=np.int64)
    groups[150:180], groups[180:] = 1, 2
    f = SparseLDL(low, backend=name, groups=groups, star=star)
    f.factorize(low.data)
    assert f.n_absorbed >= 150
    assert f._kids[1].size >= 150  # every cell is done with its leaf
    assert_matches_dense(f, A, low)
    # a vector solve: below a star's root, the backward pass is split between threads by leaves,
    # then by absorbed columns (kernels.backward_plan)
    assert f.method.startswith("leaves") == star
    if star:
        assert [len(stage) for stage in f._backward] == [2, 2]
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    np.testing.assert_allclose(A @ f.solve(b), b, atol=1e-10)
