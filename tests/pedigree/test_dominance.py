"""Dominance relationships: D against a direct computation from dense A (Cockerham's
d_ij = 1/4 (a_{s_i s_j} a_{d_i d_j} + a_{s_i d_j} a_{d_i s_j}) for non-inbred individuals),
its block-diagonal inverse for unrelated families, and its use in vm()."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr


def _textbook_d(ped: sr.Pedigree, ids: list) -> np.ndarray:
    """D by the definition, pair by pair, from the dense A of the whole pedigree."""
    A = ped.A().to_numpy()
    at = {k: i for i, k in enumerate(ped.ids)}
    par = ped.to_frame().set_index("id")
    D = np.eye(len(ids))
    for a, i in enumerate(ids):
        for b, j in enumerate(ids):
            si, di, sj, dj = par.sire[i], par.dam[i], par.sire[j], par.dam[j]
            if a == b or "0" in (si, di, sj, dj):
                continue
            D[a, b] = 0.25 * (A[at[si], at[sj]] * A[at[di], at[dj]] + A[at[si], at[dj]] * A[at[di], at[sj]])
    return D


def _random_pedigree(seed: int, related: bool) -> pd.DataFrame:
    """Founders, parents (related through grandparents when ``related``), and full-sib, half-sib
    and reciprocal-cross offspring; no inbreeding among the offspring."""
    rng = np.random.default_rng(seed)
    rows = [(f"G{k}", "0", "0") for k in range(6)]
    for p in range(12):  # males (even) related among themselves, females (odd) too, never across
        sire, dam = ("G0", f"G{1 + p % 4 // 2}") if p % 2 == 0 else ("G3", f"G{4 + p % 4 // 2}")
        rows.append((f"P{p}", sire if related else "0", dam if related else "0"))
    males, females = [f"P{p}" for p in range(0, 12, 2)], [f"P{p}" for p in range(1, 12, 2)]
    for t in range(60):
        s, d = rng.choice(males), rng.choice(females)
        if t % 7 == 0:
            s, d = d, s  # reciprocal: the same family
        rows.append((f"T{t}", "0" if t % 5 == 0 else s, d))
    return pd.DataFrame(rows, columns=["id", "sire", "dam"])


@pytest.mark.parametrize("seed, related", [(1, True), (2, True), (3, False)])
def test_d_is_the_textbook_matrix(seed, related):
    ped = sr.Pedigree(_random_pedigree(seed, related))
    ids = [i for i in ped.ids if i.startswith("T")]
    want = _textbook_d(ped, ids)
    assert np.abs(want - np.eye(len(ids))).max() > 0.2  # full-sibs: 1/4 and more
    np.testing.assert_allclose(sr.dominance_matrix(ped, ids).to_numpy(), want, atol=1e-14)
    inv = sr.dominance(ped, ids)
    np.testing.assert_allclose(inv.matrix.toarray() @ want, np.eye(len(ids)), atol=1e-10)
    assert -inv.logdet_inverse == pytest.approx(np.linalg.slogdet(want)[1], abs=1e-9)


def test_unrelated_families_give_the_block_inverse_of_the_dense_one():
    ped = sr.Pedigree(_random_pedigree(3, related=False))
    ids = [i for i in ped.ids if i.startswith("T")]
    blocks = sr.dominance(ped, ids, method="families")
    dense = sr.dominance(ped, ids, method="dense")
    np.testing.assert_allclose(blocks.matrix.toarray(), dense.matrix.toarray(), atol=1e-12)
    assert blocks.logdet_inverse == pytest.approx(dense.logdet_inverse, abs=1e-10)
    related = sr.Pedigree(_random_pedigree(1, related=True))
    with pytest.raises(sr.ModelError, match="related"):
        sr.dominance(related, [i for i in related.ids if i.startswith("T")], method="families")
    with pytest.raises(sr.ModelError, match="exceed max_dense=10"):
        sr.dominance(related, [i for i in related.ids if i.startswith("T")], max_dense=10)


def test_inbred_individuals_are_refused_by_name():
    ped = sr.Pedigree(pd.DataFrame({"id": ["a", "b", "c", "x"], "sire": ["0", "0", "a", "a"],
                                    "dam": ["0", "0", "b", "c"]}))
    with pytest.raises(sr.DataError, match="'x' is inbred"):
        sr.dominance(ped, ["c", "x"])


def test_dominance_in_a_fit_equals_the_dense_matrix(backend):
    ped = sr.Pedigree(_random_pedigree(4, related=True))
    ids = [i for i in ped.ids if i.startswith("T")]
    rng = np.random.default_rng(5)
    trees = pd.DataFrame({"Tree": np.repeat(ids, 4)})
    trees["y"] = rng.normal(size=len(trees)) + np.repeat(rng.normal(size=len(ids)), 4)
    a = sr.fit("y ~ 1", "~ vm(Tree, dom)", data=trees, matrices={"dom": sr.dominance(ped, ids)}, backend=backend)
    b = sr.fit("y ~ 1", "~ vm(Tree, dom)", data=trees, matrices={"dom": sr.dominance_matrix(ped, ids)},
               backend=backend)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
    np.testing.assert_allclose(a.varcomp["component"], b.varcomp["component"], rtol=1e-7)
