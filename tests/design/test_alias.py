"""Aliasing of wide fixed designs without a dense X'X (design/alias.py).

Reference: the dense column-order check (``find_aliased``, itself checked against lm/lme4 in
test_fixed.py) for the dropped columns, numpy's least squares on the dense X for the OLS
coefficients, and, for the nested factor, the dependencies known by construction."""
import warnings

import numpy as np
import pandas as pd
import pytest

import sparsereml.design.alias as alias
import sparsereml.design.fixed as fixed
from sparsereml.design import build_design
from sparsereml.errors import ModelError
from sparsereml.formula import model_spec

FORMULAS = ["y ~ A*C(B) + x", "y ~ A + A2 + x:A", "y ~ C(B) + G + A", "y ~ G + C(B) + x + z + x2",
            "y ~ 0 + A + A2:G", "y ~ A:C(B) + G", "y ~ C(B)*A + x:G"]


@pytest.fixture(scope="module")
def df():
    rng = np.random.default_rng(1)
    n = 400
    out = pd.DataFrame({"y": rng.normal(size=n), "A": rng.choice(list("abcdefg"), n), "B": rng.integers(0, 30, n),
                        "x": rng.normal(size=n), "z": rng.normal(size=n)})
    out["A2"] = out.A.map(lambda a: "p" if a in "abc" else "q")
    out["G"] = (out.B // 3).astype(str)
    out["x2"] = 2 * out.x - out.z  # aliased with x and z
    return out


def _build(formula, data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = build_design(model_spec(formula), data)
    return d.fixed, [str(w.message) for w in caught]


@pytest.mark.parametrize("formula", FORMULAS)
def test_sparse_check_drops_what_the_dense_check_drops(df, formula, monkeypatch):
    dense, dense_msgs = _build(formula, df)
    monkeypatch.setattr(fixed, "DENSE_MAX", 0)  # every design through the sparse check
    sparse, sparse_msgs = _build(formula, df)
    assert sparse.names == dense.names and sparse.aliased == dense.aliased
    assert sparse_msgs == dense_msgs
    np.testing.assert_allclose(sparse.ols, dense.ols, rtol=1e-9, atol=1e-10)


def test_wide_nested_factor():
    """1,200 groups nested in 12 classes, y ~ A + G: the last group of every class but the first
    is its class's column less the class's other groups: those 11 columns are dropped."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(1, 1201), 3)
    data = pd.DataFrame({"G": pd.Categorical(g), "A": pd.Categorical((g - 1) // 100),
                         "y": rng.normal(size=g.size) + g % 7})
    fx, msgs = _build("y ~ A + G", data)
    assert len(fx.names) + len(fx.aliased) > fixed.DENSE_MAX  # the sparse path
    assert fx.aliased == [f"G_{100 * a}" for a in range(2, 13)]
    assert len(msgs) == 1 and msgs[0].endswith("G_1000, G_1100 and 1 more")
    X = fx.X.toarray()
    np.testing.assert_allclose(fx.ols, np.linalg.lstsq(X, data.y.to_numpy(), rcond=None)[0], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n", [60, 30_000])
def test_one_level_per_record_is_refused(n):
    """A saturated fixed part is a ModelError naming the term (30,000 columns: the sparse check,
    where a dense X'X alone would take 7 GB)."""
    data = pd.DataFrame({"id": np.arange(n), "y": np.arange(n) % 11 * 1.0})
    with pytest.raises(ModelError, match=rf"rank\(X\) = {n:,} on {n:,} records.*'C\(id\)'"):
        build_design(model_spec("y ~ C(id)"), data)


def test_a_factor_too_large_to_check_is_refused_before_it_is_formed(df, monkeypatch):
    """Past the size limit of L the check stops before allocating it, naming the widest term."""
    monkeypatch.setattr(fixed, "DENSE_MAX", 0)
    monkeypatch.setattr(alias, "_MAX_FACTOR", 50)
    with pytest.raises(ModelError, match=r"too entangled.*largest term 'A:C\(B\)'"):
        build_design(model_spec("y ~ A:C(B) + G"), df)
