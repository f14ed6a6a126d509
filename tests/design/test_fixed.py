"""Fixed-effect coding follows R's model.matrix (treatment contrasts, the marginality rule for
interactions without main effects) and drops aliased columns like lm/lme4."""
import warnings

import numpy as np
import pandas as pd
import pytest

from sparsereml.design import build_design, find_aliased
from sparsereml.design.fixed import _row_gram
from sparsereml.errors import AliasWarning
from sparsereml.formula import model_spec


@pytest.fixture
def df():
    return pd.DataFrame({"y": np.arange(12.0) ** 1.3, "A": list("aabbccaabbcc"), "B": [1, 2] * 6,
                         "x": np.linspace(0, 1, 12)})


def test_treatment_contrasts_and_covariates(df):
    d = build_design(model_spec("y ~ A*C(B) + x"), df)
    # R: colnames(model.matrix(~ A*factor(B) + x)) with the same order of terms
    assert d.fixed.names == ["(Intercept)", "A_b", "A_c", "B_2", "x", "A_b:B_2", "A_c:B_2"]
    X = d.fixed.X.toarray()
    assert np.array_equal(X[:, 1], (df.A == "b").to_numpy(float))
    assert np.array_equal(X[:, 4], df.x.to_numpy())


def test_interaction_without_main_effect_gets_full_coding(df):
    # R: model.matrix(~ A:x) has (Intercept), Aa:x, Ab:x, Ac:x
    d = build_design(model_spec("y ~ A:x"), df)
    assert d.fixed.names == ["(Intercept)", "A_a:x", "A_b:x", "A_c:x"]
    d = build_design(model_spec("y ~ 0 + A"), df)
    assert d.fixed.names == ["A_a", "A_b", "A_c"]


def test_aliased_columns_are_named_and_dropped(df):
    df = df.assign(A2=df.A.map({"a": "p", "b": "q", "c": "q"}))
    with pytest.warns(AliasWarning, match="A2_q"):
        d = build_design(model_spec("y ~ A + A2"), df)
    assert d.fixed.names == ["(Intercept)", "A_b", "A_c"] and d.fixed.aliased == ["A2_q"]


def test_find_aliased_keeps_earlier_columns():
    X = np.column_stack([np.ones(6), [0, 1, 0, 1, 0, 1], [1, 0, 1, 0, 1, 0], np.arange(6.0)])
    assert find_aliased(X.T @ X).tolist() == [False, False, True, False]


def test_categorical_keeps_its_level_order_and_drops_unused(df):
    df = df.assign(A=pd.Categorical(df.A, categories=["c", "z", "a", "b"]))
    d = build_design(model_spec("y ~ A"), df)
    assert d.fixed.names == ["(Intercept)", "A_a", "A_b"]


@pytest.mark.parametrize("formula", ["y ~ A*C(B) + x", "y ~ A + A2 + x:A"])
def test_row_form_and_cross_product_of_x(df, formula):
    """X is kept in both forms (CSC for users, CSR rows for W), and the X'X that the aliasing
    check factorises equals numpy's dense product, with covariates and after dropped columns."""
    df = df.assign(A2=df.A.map({"a": "p", "b": "q", "c": "q"}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AliasWarning)
        fx = build_design(model_spec(formula), df).fixed
    X = fx.X.toarray()
    np.testing.assert_array_equal(fx.rows.toarray(), X)
    R = fx.rows
    np.testing.assert_allclose(_row_gram(R.indptr.astype(np.int64), R.indices.astype(np.int64), R.data, X.shape[1]),
                               X.T @ X, rtol=1e-14)
