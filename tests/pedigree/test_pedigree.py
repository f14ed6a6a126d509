"""Pedigree reading, inbreeding and A-inverse against textbook examples and the tabular method."""
import numpy as np
import pandas as pd
import pytest

from sparsereml.errors import DataError
from sparsereml.pedigree import Pedigree, PedigreeWarning
from sparsereml.pedigree._kernels import tabular_a

# Mrode (2014), Linear Models for the Prediction of Animal Breeding Values, 3rd ed., Table 2.1
MRODE = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6], "sire": [0, 0, 1, 1, 4, 5], "dam": [0, 0, 2, 0, 3, 2]})
MRODE_A = np.array([  # Section 2.2
    [1.0, 0.0, 0.5, 0.5, 0.5, 0.25], [0.0, 1.0, 0.5, 0.0, 0.25, 0.625], [0.5, 0.5, 1.0, 0.25, 0.625, 0.5625],
    [0.5, 0.0, 0.25, 1.0, 0.625, 0.3125], [0.5, 0.25, 0.625, 0.625, 1.125, 0.6875],
    [0.25, 0.625, 0.5625, 0.3125, 0.6875, 1.125]])


def test_mrode_table_2_1():
    """A (Section 2.2), D = diag(1, 1, 0.5, 0.75, 0.5, 0.469) (Section 2.3), F5 = 0.125 (Appendix
    B.1.1); A^-1 by Henderson's rules with inbreeding equals the inverse of A."""
    p = Pedigree(MRODE)
    np.testing.assert_allclose(p.A().to_numpy(), MRODE_A)
    np.testing.assert_allclose(p.mendelian_variances, [1, 1, 0.5, 0.75, 0.5, 0.46875])
    np.testing.assert_allclose(p.inbreeding.to_numpy(), [0, 0, 0, 0, 0.125, 0.125])
    np.testing.assert_allclose(p.ainverse().toarray(), np.linalg.inv(MRODE_A), atol=1e-12)
    assert p.logdet() == pytest.approx(np.linalg.slogdet(MRODE_A)[1])
    assert list(p.A(["5", "2"]).index) == ["5", "2"] and p.A(["5", "2"]).iloc[0, 1] == 0.25


def test_kvl_tabular_example():
    """ihh.kvl.dk popgen applet 4.4 (tabular method): 2, 3, 4 offspring of 1; 5 = 2 x 3, 6 = 4 x 3,
    7 = 5 x 6: F5 = F6 = 0.125, F7 = 0.21875 (printed 0.218)."""
    df = pd.DataFrame({"id": range(1, 8), "sire": [0, 1, 1, 1, 2, 4, 5], "dam": [0, 0, 0, 0, 3, 3, 6]})
    np.testing.assert_allclose(Pedigree(df).inbreeding.to_numpy(), [0, 0, 0, 0, 0.125, 0.125, 0.21875])


def random_pedigree(seed=1, founders=20, generations=6, size=40, selfing=0.05):
    """Overlapping generations with random parents, some unknown, some selfed (monoecious)."""
    rng = np.random.default_rng(seed)
    rows = [(f"f{i}", "0", "0") for i in range(founders)]
    pool = [r[0] for r in rows]
    for g in range(generations):
        new = []
        for k in range(size):
            s = pool[rng.integers(len(pool))] if rng.random() > 0.1 else "0"
            d = s if (s != "0" and rng.random() < selfing) else (pool[rng.integers(len(pool))] if rng.random() > 0.1 else "0")
            new.append((f"g{g}_{k}", s, d))
        rows += new
        pool = pool[-60:] + [r[0] for r in new]
    return pd.DataFrame(rows, columns=["id", "sire", "dam"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_against_the_tabular_method(seed):
    df = random_pedigree(seed)
    p = Pedigree(df)
    s = np.concatenate([[0], p.sire]).astype(np.int64)
    d = np.concatenate([[0], p.dam]).astype(np.int64)
    A = tabular_a(s, d)
    np.testing.assert_allclose(p.inbreeding.to_numpy(), np.diag(A) - 1.0, atol=1e-12)
    np.testing.assert_allclose(p.ainverse().toarray(), np.linalg.inv(A), atol=1e-9)
    assert p.logdet() == pytest.approx(np.linalg.slogdet(A)[1], abs=1e-9)
    assert p.inbreeding.max() > 0.2  # the test means something: selfing and close matings


def test_unknown_parent_spellings_and_added_founders():
    df = pd.DataFrame({"id": ["c", "d", "e", "f"], "sire": ["a", "0", ".", None], "dam": ["b", "", "NA", "c"]})
    p = Pedigree(df)
    assert p.added == ["a", "b"] and p.ids[:2] == ("a", "b")
    assert p.sire[p.index(["d"])[0]] == 0 and p.dam[p.index(["e"])[0]] == 0
    assert p.dam[p.index(["f"])[0]] == p.index(["c"])[0] + 1


def test_reordering_and_strict_order():
    df = pd.DataFrame({"id": ["kid", "mum", "dad"], "sire": ["dad", "0", "0"], "dam": ["mum", "0", "0"]})
    with pytest.warns(PedigreeWarning, match="reordered"):
        p = Pedigree(df)
    assert p.ids.index("kid") > max(p.ids.index("mum"), p.ids.index("dad"))
    with pytest.raises(DataError, match="parent 'dad' is listed after its offspring 'kid'"):
        Pedigree(df, sort=False)


def test_bad_pedigrees_name_the_individuals():
    loop = pd.DataFrame({"id": ["a", "b", "c"], "sire": ["c", "a", "b"], "dam": ["0", "0", "0"]})
    with pytest.raises(DataError, match=r"loop: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)"):
        Pedigree(loop)
    with pytest.raises(DataError, match="'x' appears with different parents"):
        Pedigree(pd.DataFrame({"id": ["x", "x"], "sire": ["a", "b"], "dam": ["0", "0"]}))
    with pytest.raises(DataError, match="'x' is listed as its own parent"):
        Pedigree(pd.DataFrame({"id": ["x"], "sire": ["x"], "dam": ["0"]}))
    with pytest.raises(DataError, match="no column 'mother'"):
        Pedigree(MRODE, dam="mother")
    same = Pedigree(pd.DataFrame({"id": ["x", "x"], "sire": ["a", "a"], "dam": ["0", "0"]}))
    assert len(same) == 2  # a repeated identical row is kept once (and a added)


def test_monoecious_ids_are_reported():
    df = pd.DataFrame({"id": ["a", "b", "c", "d"], "sire": ["0", "0", "a", "b"], "dam": ["0", "0", "b", "a"]})
    p = Pedigree(df)
    assert p.monoecious == ["a", "b"]
    assert "both sire and dam" in repr(p)


def test_numeric_ids_with_text_parents_are_the_same_ids():
    df = pd.DataFrame({"id": [1, 2, 3], "sire": ["0", "0", "1"], "dam": [".", "", "2.0"]})
    p = Pedigree(df)
    assert p.ids == ("1", "2", "3") and p.added == []
    np.testing.assert_array_equal(p.sire, [0, 0, 1])
    np.testing.assert_array_equal(p.dam, [0, 0, 2])


def test_an_individual_named_like_an_unknown_parent():
    with pytest.raises(DataError, match=r"pedigree rows \[1\] have no id, or an id that reads as an unknown"):
        Pedigree(pd.DataFrame({"id": ["0", "1"], "sire": ["0", "0"], "dam": ["0", "0"]}))
