"""Star-shaped factors (linalg/star.py): dense leaf blocks around a dense root, factorised with
dense kernels and LAPACK.  Reference: numpy's dense inverse and log-determinant of the same
matrix, and the sparse backends (CHOLMOD, QDLDL) on the same equations."""
import numpy as np
import pytest
import scipy.sparse as sp

from sparsereml.linalg import NotPositiveDefinite, SparseLDL, available_backends
from sparsereml.linalg.star import StarFactor

from .test_selinv import assert_matches_dense


def _star_matrix(n_leaves=6, width=5, n_root=60, seed=0):
    """Leaves of ``width`` unknowns, each a clique tied to a random subset of a root whose
    unknowns are all coupled (the shape of blocks within trials and crossed mothers)."""
    rng = np.random.default_rng(seed)
    n = n_leaves * width + n_root
    M = np.zeros((n, n))
    r0 = n_leaves * width
    M[r0:, r0:] = rng.normal(size=(n_root, n_root)) * 0.1
    for k in range(n_leaves):
        a = k * width
        M[a:a + width, a:a + width] = rng.normal(size=(width, width))
        nb = r0 + rng.choice(n_root, size=n_root // 3, replace=False)
        M[np.ix_(nb, np.arange(a, a + width))] = rng.normal(size=(nb.size, width))
    A = M + M.T
    A += np.diag(np.abs(A).sum(axis=1) + 1.0)
    return sp.csc_matrix(A)


def _lower(A):
    low = sp.tril(A).tocsc()
    low.sort_indices()
    return low


def test_detects_the_star_and_keeps_sparse_matrices_out():
    low = _lower(_star_matrix())
    star, post = StarFactor.detect(low)
    assert star is not None and star.dense_start <= 30 and sorted(post) == list(range(low.shape[0]))
    rng = np.random.default_rng(1)  # a sparse random matrix: no dense root
    R = sp.random(400, 400, density=0.005, random_state=rng)
    R = R + R.T + sp.eye(400) * 10
    assert StarFactor.detect(_lower(R)) == (None, None)


@pytest.mark.parametrize("seed, in_place", [(0, False), (1, False), (2, False), (0, True)])
def test_star_matches_dense_linear_algebra(seed, in_place, monkeypatch):
    if in_place:  # a root too wide to copy is inverted in place, and factorised again for solves
        monkeypatch.setattr("sparsereml.linalg.factor._DENSE_COPY_MAX", 0)
    A = _star_matrix(seed=seed)
    low = _lower(A)
    f = SparseLDL(low, star=True, absorb=False)
    assert f.method.startswith("leaves")
    f.factorize(2.0 * low.data)  # the first factorisation writes every column of the joined factor
    f.factorize(low.data)  # later ones leave the root's unit-L columns unwritten until asked for
    assert not f._dense_lx
    b = np.random.default_rng(seed).standard_normal((A.shape[0], 2))
    # a vector is solved with the root's Cholesky factor, before and after the selected inverse
    # (which inverts a copy of it); a block of vectors with the joined unit-L factor
    assert f._dense_factor() is not None
    np.testing.assert_allclose(A @ f.solve(b[:, 0]), b[:, 0], atol=1e-9)
    assert_matches_dense(f, A, low)
    assert f._dense_spent == in_place
    np.testing.assert_allclose(A @ f.solve(b), b, atol=1e-9)
    assert f._dense_factor() is not None
    np.testing.assert_allclose(A @ f.solve(b[:, 0]), b[:, 0], atol=1e-9)
    assert f._dense_lx
    for density in (0.1, 0.9):  # sparse and dense paths
        T = sp.random(A.shape[0], 4, density=density, random_state=np.random.default_rng(seed)).tocsc()
        np.testing.assert_allclose(f.inverse_quadratic(T), (T.T @ np.linalg.solve(A.toarray(), T.toarray())),
                                   rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", available_backends())
def test_star_equals_the_sparse_backend_on_mixed_model_equations(backend):
    from sparsereml.datasets import trial_network
    from sparsereml.design import build_design
    from sparsereml.formula import model_spec
    from sparsereml.reml.problem import REMLProblem

    df, _ = trial_network(seed=5, trials=8, trees=14000, mothers=150)
    design = build_design(model_spec("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", None), df)
    problems = []
    for star in (True, False):
        prob = REMLProblem(design, backend=backend)
        groups = np.full(prob.mme.N, len(prob.structures), dtype=np.int64)
        for k, (off, st) in enumerate(zip(design.offsets, prob.structures)):
            groups[off: off + st.size] = k
        prob.factor = SparseLDL(prob.mme.lower, backend, groups=groups, star=star)
        problems.append(prob)
    assert problems[0].factor.method.startswith("leaves") and problems[1].factor.method == backend
    theta = np.array([80.0, 30.0, 20.0, 900.0])
    a, b = (p.derivatives(p.evaluate(theta)) for p in problems)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
    np.testing.assert_allclose(a.zc, b.zc, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(a.score, b.score, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(a.ai, b.ai, rtol=1e-9)


def _with_leaf_effects(seed=6, n_leaves=6, width=5, n_root=60):
    """_star_matrix plus one root unknown per leaf (like a trial's fixed effect) tied to that
    leaf's columns and to root unknowns among the leaf's neighbours, and one more unknown tied to
    every leaf (like the intercept)."""
    rng = np.random.default_rng(seed)
    A = _star_matrix(n_leaves, width, n_root, seed).toarray()
    n0 = A.shape[0]
    n = n0 + n_leaves + 1
    M = np.zeros((n, n))
    M[:n0, :n0] = A
    r0 = n_leaves * width
    for k in range(n_leaves):
        cols = np.arange(k * width, (k + 1) * width)
        nb = r0 + np.flatnonzero(A[r0:n0, cols].any(axis=1))  # the leaf's root neighbours
        e = n0 + k
        M[e, cols] = M[cols, e] = rng.normal(size=width)
        M[e, nb[:3]] = M[nb[:3], e] = rng.normal(size=3)
        M[n - 1, cols] = M[cols, n - 1] = rng.normal(size=width)
    M[n - 1, n0:n - 1] = M[n0:n - 1, n - 1] = 0.3
    M += np.diag(np.abs(M).sum(axis=1) + 1.0)
    return sp.csc_matrix(M)


def test_root_unknowns_bordering_one_leaf_join_it():
    """An unknown of the root that borders one leaf only, its root neighbours among the leaf's,
    is eliminated with that leaf (star._sink_dense_columns): the root narrows by one per leaf,
    one more column per leaf, and the factor still gives numpy's inverse."""
    A = _with_leaf_effects()
    low = _lower(A)
    star, post = StarFactor.detect(low)
    n = A.shape[0]
    assert star is not None and n - star.dense_start == 60 + 1  # the leaf effects left the root
    assert list(np.diff(star.leaf_start)) == [6] * 6
    assert sorted(post[star.dense_start:]) == list(range(30, 90)) + [n - 1]
    f = SparseLDL(low, star=True, absorb=False)
    f.factorize(low.data)
    assert_matches_dense(f, A, low)


def test_not_positive_definite_in_a_leaf_and_in_the_root():
    A = _star_matrix().tolil()
    low = _lower(sp.csc_matrix(A))
    f = SparseLDL(low, star=True, absorb=False)
    bad = low.copy()
    bad.data[bad.indptr[0]] = -1.0  # the first diagonal entry (a leaf)
    with pytest.raises(NotPositiveDefinite):
        f.factorize(bad.data)
    bad = low.copy()
    last = low.shape[0] - 1
    bad.data[bad.indptr[last]] = -1.0  # the last diagonal entry (the root)
    with pytest.raises(NotPositiveDefinite):
        f.factorize(bad.data)
    f.factorize(low.data)  # and it recovers
    assert np.isfinite(f.logdet())


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_leaves_split_between_threads_give_the_same_factor(threads):
    """The leaves' columns and their updates of the root are split into ranges, one per thread
    (StarFactor._chunks); any split gives the same factor as one thread."""
    low = _lower(_star_matrix(n_leaves=7, width=4, n_root=70, seed=3))
    star, post = StarFactor.detect(low)
    data = permute_data(low, post)
    one = star.factorize(data)
    Lx, d = one.Lx.copy(), one.d.copy()
    star._leaf_chunks, star._dense_chunks = star._chunks(threads)
    assert len(star._leaf_chunks) == min(threads, 7) and star._leaf_chunks[-1][1] == 7
    assert star._dense_chunks[0][0] == 0 and star._dense_chunks[-1][1] == star.n - star.dense_start
    other = star.factorize(data)
    np.testing.assert_allclose(other.Lx, Lx, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(other.d, d, rtol=1e-13)


def permute_data(low, post):
    """Lower-triangle data of P A P' on the pattern StarFactor.detect built (rows sorted)."""
    A = (low + sp.tril(low, -1).T).tocsr()[post][:, post]
    out = sp.tril(A).tocsc()
    out.sort_indices()
    return out.data


@pytest.mark.parametrize("in_place", [False, True])
def test_rough_selected_inverse_inverts_the_root_in_single_precision(in_place, monkeypatch):
    """``selected_inverse(single=True)`` inverts the star's root through float32 (LAPACK spotri):
    within float32's rounding of numpy's inverse, not equal to the double-precision one, and the
    factor stays usable (solves, and an exact selected inverse afterwards)."""
    monkeypatch.setattr("sparsereml.linalg.factor.SINGLE_DENSE_MIN", 16)
    if in_place:
        monkeypatch.setattr("sparsereml.linalg.factor._DENSE_COPY_MAX", 0)
    A = _star_matrix(seed=3)
    low = _lower(A)
    f = SparseLDL(low, star=True, absorb=False)
    f.factorize(low.data)
    inv = np.linalg.inv(A.toarray())
    want = inv[low.indices, np.repeat(np.arange(A.shape[0]), np.diff(low.indptr))]
    rough = f.selected_inverse(single=True)
    np.testing.assert_allclose(rough, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    assert np.abs(rough - want).max() > 1e-12 * np.abs(want).max()  # the float32 path was taken
    assert f._dense_spent == in_place
    b = np.random.default_rng(3).standard_normal(A.shape[0])
    np.testing.assert_allclose(A @ f.solve(b), b, atol=1e-9)
    assert_matches_dense(f, A, low)


def test_rough_selected_inverse_stays_double_for_an_ill_conditioned_root(monkeypatch):
    """A root whose Cholesky factor LAPACK estimates to have a condition number above 100 (the
    root's above 1e4) is not trusted to float32."""
    monkeypatch.setattr("sparsereml.linalg.factor.SINGLE_DENSE_MIN", 16)
    A = _star_matrix(seed=4)
    scale = np.ones(A.shape[0])
    scale[-5:] = 1e4  # five root unknowns in other units
    A = sp.csc_matrix(sp.diags(scale) @ A @ sp.diags(scale))
    low = _lower(A)
    f = SparseLDL(low, star=True, absorb=False)
    f.factorize(low.data)
    exact = f.selected_inverse().copy()
    np.testing.assert_array_equal(f.selected_inverse(single=True), exact)
    assert not f.single_used


@pytest.mark.parametrize("in_place", [False, True])
def test_rough_selected_inverse_falls_back_when_float32_fails(in_place, monkeypatch):
    """spotri reporting a singular factor (float32 underflow, say) leaves the factor intact and
    the inverse is taken in double precision."""
    from sparsereml.linalg import factor

    monkeypatch.setattr(factor, "SINGLE_DENSE_MIN", 16)
    if in_place:
        monkeypatch.setattr(factor, "_DENSE_COPY_MAX", 0)
    A = _star_matrix(seed=5)
    low = _lower(A)
    f = SparseLDL(low, star=True, absorb=False)
    f.factorize(low.data)

    real = factor.lapack

    class Failing:
        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def spotri(c, lower=1, overwrite_c=1):
            return c, 3

    monkeypatch.setattr(factor, "lapack", Failing())
    zc = f.selected_inverse(single=True)
    assert not f.single_used
    inv = np.linalg.inv(A.toarray())
    np.testing.assert_allclose(zc, inv[low.indices, np.repeat(np.arange(A.shape[0]), np.diff(low.indptr))],
                               rtol=1e-9, atol=1e-13)
