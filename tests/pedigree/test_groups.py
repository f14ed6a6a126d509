"""Genetic groups: Q by hand on a small pedigree, A*^-1 by Quaas' rules against its block form
[[A^-1, -A^-1 Q], [-Q'A^-1, Q'A^-1 Q]] computed densely, and the refusals."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.pedigree.groups import ainverse_with_groups, group_contributions


def _ped(groups=("N", "S")):
    return pd.DataFrame({"id": ["a", "b", "c", "d", "e", "f"],
                         "sire": ["N", "N", "a", "a", "c", "c"],
                         "dam": ["S", "N", "b", "S", "d", "b"]})


def test_group_contributions_by_hand():
    ped = sr.Pedigree(_ped(), groups=["N", "S"])
    Q = group_contributions(ped)
    np.testing.assert_allclose(Q.loc["a"], [0.5, 0.5])
    np.testing.assert_allclose(Q.loc["b"], [1.0, 0.0])
    np.testing.assert_allclose(Q.loc["c"], [0.75, 0.25])  # (a + b) / 2
    np.testing.assert_allclose(Q.loc["d"], [0.25, 0.75])  # (a + S) / 2
    np.testing.assert_allclose(Q.loc["e"], [0.5, 0.5])
    assert np.allclose(Q.sum(axis=1), 1.0) and "N" not in ped.ids and ped.added == []


@pytest.mark.parametrize("seed", [1, 2])
def test_ainverse_with_groups_is_quaas_block_form(seed):
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(40):  # random parents among earlier individuals (inbreeding happens), else a group
        s = f"i{rng.integers(k)}" if k > 3 and rng.random() < 0.7 else rng.choice(["G1", "G2", "G3"])
        d = f"i{rng.integers(k)}" if k > 3 and rng.random() < 0.7 else rng.choice(["G1", "G2", "G3"])
        rows.append((f"i{k}", s, d))
    ped = sr.Pedigree(pd.DataFrame(rows, columns=["id", "sire", "dam"]), groups=["G1", "G2", "G3"])
    assert ped.inbreeding.max() > 0
    Ainv = ped.ainverse().toarray()
    Q = group_contributions(ped).to_numpy()
    want = np.block([[Ainv, -Ainv @ Q], [-Q.T @ Ainv, Q.T @ Ainv @ Q]])
    np.testing.assert_allclose(ainverse_with_groups(ped).toarray(), want, atol=1e-12)


def test_group_refusals():
    with pytest.raises(sr.DataError, match="group 'a' is also an individual"):
        sr.Pedigree(_ped(), groups=["a", "N", "S"])
    with pytest.raises(sr.DataError, match="group 'W' is no individual's parent"):
        sr.Pedigree(_ped(), groups=["N", "S", "W"])
    with pytest.raises(sr.ModelError, match="groups="):
        group_contributions(sr.Pedigree(_ped().replace({"N": "0", "S": "0"})))


def test_fixed_groups_recover_the_simulated_group_difference(backend):
    # founders of group N have genetic mean 0, of group S mean 12; every later individual
    # inherits the mean of its parents; y = genetic mean + breeding value + e
    rng = np.random.default_rng(8)
    n_f, n = 60, 2500
    rows, mean, bv = [], [], []
    for k in range(n):
        if k < n_f:
            g = "N" if k % 2 else "S"
            rows.append((f"i{k}", g, g))
            mean.append(0.0 if g == "N" else 12.0)
            bv.append(rng.normal(0, 2.0))
        else:
            s, d = rng.integers(0, k, 2)
            rows.append((f"i{k}", f"i{s}", f"i{d}"))
            mean.append((mean[s] + mean[d]) / 2)
            bv.append((bv[s] + bv[d]) / 2 + rng.normal(0, np.sqrt(2.0)))
    ped = sr.Pedigree(pd.DataFrame(rows, columns=["id", "sire", "dam"]), groups=["N", "S"])
    data = pd.DataFrame({"id": [r[0] for r in rows][n_f:]})
    data["y"] = np.array(mean)[n_f:] + np.array(bv)[n_f:] + rng.normal(0, 2.0, len(data))
    data = data.join(group_contributions(ped, data["id"]).reset_index(drop=True))
    # the manual route: Q joined to the data, the pedigree's groups read as unknown parents
    m = sr.fit("y ~ lin(S)", "~ vm(id, ped)", data=data, matrices={"ped": ped.without_groups()}, backend=backend)
    est, se = m.fixed.loc["S", ["estimate", "std.error"]]
    assert abs(est - 12.0) < 3 * se, (est, se)
    # the groups() term fits the same model (N the base beside the intercept)
    with pytest.warns(sr.errors.AliasWarning, match="differences from the first, 'N'"):
        m2 = sr.fit("y ~ groups(id, ped)", "~ vm(id, ped)", data=data, matrices={"ped": ped}, backend=backend)
    assert m2.loglik == pytest.approx(m.loglik, abs=1e-6)
    np.testing.assert_allclose(m2.fixed.loc["groups(id, ped)_S"].to_numpy(), m.fixed.loc["S"].to_numpy(), rtol=1e-6)
