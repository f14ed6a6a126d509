"""vm() with a pedigree, the same matrix given dense or as its inverse, a genomic matrix, and the
errors for ids that do not match."""
import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.errors import DataError, FormulaError, ModelError

from .test_pedigree import random_pedigree


@pytest.fixture(scope="module")
def family():
    """Half-sib families of related mothers (from a random pedigree with selfing)."""
    ped_df = random_pedigree(seed=4, founders=30, generations=4, size=50)
    ped = sr.Pedigree(ped_df)
    rng = np.random.default_rng(9)
    mothers = np.array(ped.ids[-120:])
    A = ped.A(mothers).to_numpy()
    u = np.linalg.cholesky(A + 1e-9 * np.eye(len(A))) @ rng.standard_normal(len(A)) * np.sqrt(6.0)
    k = rng.integers(0, len(mothers), 2400)
    df = pd.DataFrame({"Mother": mothers[k], "Block": rng.integers(0, 8, 2400).astype(str)})
    df["y"] = 20 + u[k] + rng.normal(0, 5, 2400)
    return ped, df


def test_same_fit_from_pedigree_dense_a_and_its_inverse(family, backend):
    ped, df = family
    m = sr.fit("y ~ 1", "~ Block + vm(Mother, K)", data=df, matrices={"K": ped}, backend=backend)
    A = ped.A()
    d = sr.fit("y ~ 1", "~ Block + vm(Mother, K)", data=df, matrices={"K": A}, backend=backend)
    i = sr.fit("y ~ 1", "~ Block + vm(Mother, K)", data=df, backend=backend,
               matrices={"K": sr.Inverse(ped.ainverse(), ped.ids)})
    for other in (d, i):
        assert other.loglik == pytest.approx(m.loglik, abs=1e-6)
        np.testing.assert_allclose(other.varcomp["component"], m.varcomp["component"], rtol=1e-6)


def test_relationships_change_the_fit(family):
    ped, df = family
    related = sr.fit("y ~ 1", "~ Block + vm(Mother, K)", data=df, matrices={"K": ped})
    unrelated = sr.fit("y ~ 1", "~ Block + Mother", data=df)
    assert related.loglik != pytest.approx(unrelated.loglik, abs=1e-3)


def test_grm_is_vanraden(family):
    rng = np.random.default_rng(3)
    ids = [f"i{k}" for k in range(40)]
    M = rng.integers(0, 3, (40, 300)).astype(float)
    M[0, 0] = np.nan
    G = sr.grm(pd.DataFrame(M, index=ids), blend=0.0)
    p = np.nanmean(M, axis=0) / 2
    Mf = np.where(np.isnan(M), 2 * p, M)
    Z = Mf - 2 * p
    np.testing.assert_allclose(G.to_numpy(), Z @ Z.T / (2 * np.sum(p * (1 - p))))
    Gb = sr.grm(pd.DataFrame(M, index=ids), blend=0.05)
    np.testing.assert_allclose(Gb.to_numpy(), 0.95 * G.to_numpy() + 0.05 * np.eye(40))
    with pytest.raises(DataError, match="0, 1 or 2"):
        sr.grm(pd.DataFrame(M + 0.5, index=ids))


def test_ids_missing_from_the_pedigree(family):
    ped, df = family
    bad = df.copy()
    bad.loc[:2, "Mother"] = ["zz1", "zz2", "zz1"]
    with pytest.raises(DataError, match=r"2 id\(s\) of 'Mother' are not in the pedigree 'K', e.g. 'zz1', 'zz2'"):
        sr.fit("y ~ 1", "~ vm(Mother, K)", data=bad, matrices={"K": ped})
    loose = sr.Pedigree(ped.to_frame(), add_missing=True)
    m = sr.fit("y ~ 1", "~ vm(Mother, K)", data=bad, matrices={"K": loose})
    assert len(m.breeding_values("vm(Mother, K)")) == len(ped) + 2


def test_numeric_data_ids_against_text_pedigree_ids_say_so():
    ped = sr.Pedigree(pd.DataFrame({"id": ["a1", "a2", "a3"], "sire": ["0", "0", "a1"], "dam": ["0", "0", "a2"]}))
    df = pd.DataFrame({"Mother": [1, 2, 3, 1, 2, 3], "y": [1.0, 2.0, 3.0, 2.0, 1.0, 5.0]})
    with pytest.raises(DataError, match="the data's 'Mother' holds numbers but the pedigree's ids are names"):
        sr.fit("y ~ 1", "~ vm(Mother, K)", data=df, matrices={"K": ped})


def test_bad_vm_terms():
    with pytest.raises(FormulaError, match="vm\\(\\) takes the id column"):
        sr.model_spec("y ~ 1", "~ vm(Mother)")
    with pytest.raises(FormulaError, match="stands alone"):
        sr.model_spec("y ~ 1", "~ Trial:vm(Mother, K)")
    df = pd.DataFrame({"Mother": ["a", "b", "a", "b"], "y": [1.0, 2, 3, 4]})
    with pytest.raises(ModelError, match="no matrix named 'K'"):
        sr.fit("y ~ 1", "~ vm(Mother, K)", data=df)
    with pytest.raises(ModelError, match="not positive definite"):
        K = pd.DataFrame([[1.0, 1.0], [1.0, 1.0]], index=["a", "b"], columns=["a", "b"])
        sr.fit("y ~ 1", "~ vm(Mother, K)", data=df, matrices={"K": K})


def test_vpredict_errors_name_the_component(family):
    ped, df = family
    m = sr.fit("y ~ 1", "~ vm(Mother, K)", data=df, matrices={"K": ped})
    with pytest.raises(ModelError, match="'Mother' in .* is not a variance component"):
        m.vpredict({"h2": "4 * Mother / (Mother + units)"})
    with pytest.raises(ModelError, match="not allowed"):
        m.vpredict("__import__('os')")
    est = m.vpredict("`vm(Mother, K)` + units")
    assert est.iloc[0]["estimate"] == pytest.approx(m.varcomp["component"].sum())


@pytest.mark.parametrize("term", ["vm(Mother, K)", "us(Block):vm(Mother, K)", "fa(Block, 1):vm(Mother, K)"])
def test_related_terms_match_dense_formulas(family, term, backend):
    """G = Sigma (x) A with A^-1 sparse: logL, scores and AI against the dense textbook formulas
    built from the structure's G^-1 (tests/reml/dense_reml.py)."""
    from sparsereml.design import build_design

    from ..reml.dense_reml import assert_matches_dense

    ped, df = family
    small = df[df.Block.isin(["0", "1", "2"])].iloc[:300]
    design = build_design(sr.model_spec("y ~ Block", f"~ {term}"), small, matrices={"K": ped})
    assert_matches_dense(design, backend, (0.9, 1.1))


def test_vpredict_messages_point_at_the_expression(family):
    ped, df = family
    m = sr.fit("y ~ 1", "~ Block + vm(Mother, K)", data=df, matrices={"K": ped})
    with pytest.raises(ModelError, match="'Blockk' in .* is not a variance component"):
        m.vpredict("Blockk / units")
    with pytest.raises(ModelError, match="quote labels such as `vm\\(Mother, ped\\)` or `Trial:Mother`"):
        m.vpredict("Block / (Block + vm(Mother, K))")
    assert sr.vpredict(m, "Block + units").iloc[0]["estimate"] == pytest.approx(
        m.varcomp.loc["Block", "component"] + m.varcomp.loc["units", "component"])
