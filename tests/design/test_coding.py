"""Factor coding (design/coding.py): interactions against pandas' own factorisation of the
pairs (levels in order of the first factor, then the second, as R's interaction() with
lex.order = TRUE and unused levels dropped)."""
import numpy as np
import pandas as pd
import pytest

from sparsereml.design.coding import PairLabels, combine, encode


def _reference(a: pd.Series, b: pd.Series):
    """Codes and labels of a:b from pandas alone (rows with a missing value get -1)."""
    fa, la = pd.factorize(a, sort=True)
    fb, lb = pd.factorize(b, sort=True)
    key = pd.Series(list(zip(fa, fb)))
    ok = (fa >= 0) & (fb >= 0)
    pairs = sorted(set(key[ok]))
    where = {p: i for i, p in enumerate(pairs)}
    codes = np.array([where[k] if good else -1 for k, good in zip(key, ok)])
    name = lambda v: str(int(v)) if isinstance(v, float) else str(v)  # noqa: E731 (encode's labels)
    return codes, tuple(f"{name(la[i])}:{name(lb[j])}" for i, j in pairs)


@pytest.mark.parametrize("n_a, n_b, missing", [(5, 7, False), (5, 7, True), (3, 4000, False), (3, 4000, True)])
def test_interaction_codes_and_labels(n_a, n_b, missing):
    # n_b = 4000 with 300 rows: the key range is too large to count, so pandas factorises
    rng = np.random.default_rng(n_b)
    n = 300
    a = pd.Series(rng.integers(1, n_a + 1, n).astype(float))
    b = pd.Series(rng.integers(1, n_b + 1, n).astype(float))
    if missing:
        a[rng.choice(n, 20, replace=False)] = np.nan
        b[rng.choice(n, 20, replace=False)] = np.nan
        b[(a == 1) & b.notna()] = 1.0  # key 0 (first levels) on complete rows too
    codes, labels = _reference(a, b)
    f = combine([encode(a, "a"), encode(b, "b")])
    np.testing.assert_array_equal(f.codes, codes)
    assert isinstance(f.levels, PairLabels)
    assert f.n_levels == len(labels)
    assert f.levels[0] == labels[0] and f.levels[-1] == labels[-1] and f.levels[2:5] == labels[2:5]
    assert tuple(f.levels) == labels and f.levels == labels
    assert labels[3] in f.levels and f.levels.index(labels[3]) == 3


def test_interaction_without_the_first_pair_of_levels():
    """Key 0 (first level of both) occurs only on rows with a missing value: not a level."""
    a = pd.Series(["x", "x", "y", None])
    b = pd.Series(["p", "q", "p", "p"])
    b[0] = None
    f = combine([encode(a, "a"), encode(b, "b")])
    assert tuple(f.levels) == ("x:q", "y:p")
    np.testing.assert_array_equal(f.codes, [-1, 0, 1, -1])
