"""Per-group cross-products against W_g'W_g formed directly."""
import numpy as np
import pytest
import scipy.sparse as sp

from sparsereml.crossprod import cross_products


@pytest.mark.parametrize("values", ["covariates", "factors"])
@pytest.mark.parametrize("n_groups", [1, 3, 7])
def test_per_group_products_match_direct_ones(n_groups, values):
    rng = np.random.default_rng(n_groups)
    n, ncol = 400, 61
    rows = np.repeat(np.arange(n), 4)
    if values == "factors":  # an intercept and three factors: every value of W is 1 (own code path)
        codes = rng.integers(0, 20, (n, 3)) + np.array([1, 21, 41])
        cols = np.concatenate([np.zeros((n, 1), int), codes], axis=1).ravel()
        vals = np.ones(cols.size)
    else:
        cols = np.concatenate([np.zeros((n, 1), int), rng.integers(1, ncol, (n, 3))], axis=1).ravel()
        vals = np.where(cols == 0, 1.0, rng.normal(size=cols.size))  # covariates with both signs
    W = sp.csr_matrix((vals, (rows, cols)), shape=(n, ncol))
    W.sum_duplicates()
    # groups: some columns occur in one group only, others in several
    groups = np.minimum(rows[::4] * n_groups // n, n_groups - 1)
    y = rng.normal(size=n)
    cp = cross_products(W, y, groups, n_groups)
    low = cp.lower
    r = low.indices
    # rows strictly increasing within each column (the MME and the factor search them)
    for a, b in zip(low.indptr[:-1], low.indptr[1:]):
        assert np.all(np.diff(r[a:b]) > 0)
    c = np.repeat(np.arange(ncol), np.diff(low.indptr))
    for g in range(n_groups):
        Wg = W[groups == g]
        direct = (Wg.T @ Wg).toarray()
        np.testing.assert_allclose(cp.WtW[:, g].toarray().ravel(), direct[r, c], atol=1e-12)
        np.testing.assert_allclose(cp.Wty[:, g].toarray().ravel(), Wg.T @ y[groups == g], atol=1e-12)
        assert cp.yty[g] == pytest.approx(float(y[groups == g] @ y[groups == g]))
        assert cp.counts[g] == (groups == g).sum()
    np.testing.assert_allclose(cp.total, (W.T @ W).toarray()[r, c], atol=1e-12)


@pytest.mark.parametrize("ones", [True, False])
def test_lower_gram_same_for_any_number_of_chunks(ones):
    """W'W's lower triangle is formed by ranges of records and of columns on threads; the number
    of ranges must change nothing, not even the rounding (reference: scipy's W'W)."""
    from sparsereml.crossprod import _lower_gram

    rng = np.random.default_rng(5)
    n, ncol = 300, 40
    W = sp.random(n, ncol, density=0.1, format="csr", random_state=rng)
    if ones:
        W.data[:] = 1.0
    W.sort_indices()
    args = (W.indptr.astype(np.int64), W.indices.astype(np.int64), W.data.astype(float), ncol)
    first = _lower_gram(*args, 1, ones)
    ref = sp.tril(W.T @ W).tocsc()
    got = sp.csc_matrix((first[2], first[1], first[0]), shape=(ncol, ncol))
    np.testing.assert_allclose(got.toarray(), ref.toarray(), atol=1e-12)
    for nchunk in (2, 5, 400):
        for a, b in zip(first, _lower_gram(*args, nchunk, ones)):
            np.testing.assert_array_equal(a, b)
