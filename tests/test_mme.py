"""MME stage (mme.py): products with C held as its lower triangle, against dense numpy."""
import numpy as np
import scipy.sparse as sp

from sparsereml.datasets import trial_network
from sparsereml.design import build_design
from sparsereml.formula import model_spec
from sparsereml.reml.problem import REMLProblem


def test_matvec_equals_the_dense_product_for_vectors_dense_and_sparse_matrices():
    df, _ = trial_network(seed=4, trials=6, trees=8000, mothers=90)
    prob = REMLProblem(build_design(model_spec("dbh ~ Trial", "~ at(Trial):Block + Mother + Trial:Mother",
                                               "~ at(Trial):units"), df))
    mme = prob.mme
    rng = np.random.default_rng(0)
    data = rng.standard_normal(mme.lower.nnz)
    low = sp.csc_matrix((data, mme.lower.indices, mme.lower.indptr), shape=(mme.N, mme.N)).toarray()
    A = low + np.tril(low, -1).T
    x = rng.standard_normal(mme.N)
    np.testing.assert_allclose(mme.matvec(data, x), A @ x, rtol=1e-12, atol=1e-12)
    X = rng.standard_normal((mme.N, 3))
    np.testing.assert_allclose(mme.matvec(data, X), A @ X, rtol=1e-12, atol=1e-12)
    dense_cols = sp.random(mme.N, 3, density=0.5, random_state=1, format="csc")  # the dense kernel
    sparse_cols = sp.random(mme.N, 40, density=0.01, random_state=2, format="csc")  # scipy's products
    for S in (dense_cols, sparse_cols):
        out = mme.matvec(data, S)
        assert sp.issparse(out)
        np.testing.assert_allclose(out.toarray(), A @ S.toarray(), rtol=1e-12, atol=1e-12)
