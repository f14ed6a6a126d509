"""and() overlays (ASReml's ``Mother + and(Father)``, sommer's ``overlay(Mother, Father)``) and
covariate-scaled random terms (``comb:lin(dr)``, ASReml's ``comb:dr``)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.errors import FormulaError

from ..conftest import refdata


def _z(m, term: str) -> pd.DataFrame:
    """The term's columns of W = [X Z], labelled by level."""
    k = m.random_terms.index(term)
    off, rb = m.design.offsets[k], m.design.random[k]
    Z = m.design.W()[:, off:off + rb.size].toarray()
    return pd.DataFrame(Z, columns=list(rb.levels))


def _known(father) -> bool:
    return not pd.isna(father) and father != "0"


@pytest.fixture(scope="module")
def crosses():
    rng = np.random.default_rng(3)
    n = 400
    mother = rng.choice([f"P{i}" for i in range(1, 16)], n)
    father = rng.choice([f"P{i}" for i in range(5, 21)] + ["0"] * 10, n).astype(object)
    father[:5] = mother[:5]  # selfs
    father[5:10] = None  # unknown, as missing values
    y = rng.normal(size=n) + (pd.Series(mother).str[1:].astype(int).to_numpy() % 3)
    return pd.DataFrame({"y": y, "Mother": mother, "Father": father, "Trial": np.repeat(["A", "B"], n // 2)})


def test_overlay_design_shares_the_parents_levels(crosses):
    m = sr.fit("y ~ Trial", "~ Mother + and(Father)", data=crosses)
    Z = _z(m, "Mother")
    parents = set(crosses.Mother) | {f for f in crosses.Father if _known(f)}
    assert set(Z.columns) == parents  # P16..P20 are only ever fathers: they have effects too
    for i, (mo, fa) in enumerate(zip(crosses.Mother, crosses.Father)):
        want = pd.Series(0.0, index=Z.columns)
        want[mo] += 1
        if _known(fa):
            want[fa] += 1  # a self gets 2
        assert Z.iloc[i].equals(want), i
    assert Z.iloc[:5].max(axis=1).eq(2).all() and Z.iloc[5:10].sum(axis=1).eq(1).all()
    w = _z(sr.fit("y ~ Trial", "~ Mother + and(Father, 0.5)", data=crosses), "Mother")
    row = next(i for i in range(10, len(crosses)) if _known(crosses.Father[i]))
    assert w.iloc[row][crosses.Father[row]] == 0.5 and w.iloc[row][crosses.Mother[row]] == 1.0
    assert crosses.Father.isna().sum() == 5  # the data are not touched


def test_overlay_and_sommers_overlay_are_one_model(crosses):
    a = sr.fit("y ~ Trial", "~ Mother + and(Father)", data=crosses)
    b = sr.fit("y ~ Trial", "~ overlay(Mother, Father)", data=crosses)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-9)
    np.testing.assert_allclose(a.varcomp["component"], b.varcomp["component"], rtol=1e-8)


def test_interaction_overlay_and_per_level_structures(crosses):
    m = sr.fit("y ~ Trial", "~ Mother + and(Father) + Trial:Mother + and(Trial:Father)", data=crosses)
    Z = _z(m, "Trial:Mother")
    i = next(i for i in range(10, len(crosses)) if _known(crosses.Father[i]))
    t, mo, fa = crosses.Trial[i], crosses.Mother[i], crosses.Father[i]
    assert Z.iloc[i][f"{t}:{mo}"] == 1 and Z.iloc[i][f"{t}:{fa}"] == 1 and Z.iloc[i].sum() == 2
    at = sr.fit("y ~ Trial", "~ at(Trial):Mother + at(Trial):and(Father)", data=crosses)
    diag = sr.fit("y ~ Trial", "~ diag(Trial):Mother + diag(Trial):and(Father)", data=crosses)
    assert at.loglik == pytest.approx(diag.loglik, abs=1e-7)  # one variance per trial either way
    us = sr.fit("y ~ Trial", "~ us(Trial):Mother + us(Trial):and(Father)", data=crosses)
    assert us.loglik >= diag.loglik - 1e-6  # us() nests diag()


def test_vm_overlay_with_unrelated_parents_is_the_plain_overlay(crosses):
    parents = sorted(set(crosses.Mother) | {f for f in crosses.Father if _known(f)})
    ped = sr.Pedigree(pd.DataFrame({"id": parents, "sire": "0", "dam": "0"}))
    a = sr.fit("y ~ Trial", "~ vm(Mother, ped) + and(vm(Father, ped))", data=crosses, matrices={"ped": ped})
    b = sr.fit("y ~ Trial", "~ Mother + and(Father)", data=crosses)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-7)


def test_lonnquist_maize_half_diallel_published():
    # agridat lonnquist.maize Rd L103-107 (Mohring, Melchinger & Piepho 2011, Crop Sci 51:470,
    # Table 3): asreml(yield ~ 1, random = ~ p1 + and(p2)) on the 6-parent subset:
    # p1 3.865 (SE 3.774), R 15.93 (5.817); reproduced values and logL_asreml -41.9007 in
    # shared/reference/REFERENCE.md
    d = refdata("agridat_lonnquist.maize.csv")
    keep = ["M", "H", "G", "B", "K", "K2"]
    d = d[d.p1.isin(keep) & d.p2.isin(keep)]
    m = sr.fit("yield ~ 1", "~ p1 + and(p2)", data=d)
    vc = m.varcomp
    assert vc.loc["p1", "component"] == pytest.approx(3.86457, rel=1e-5)
    assert vc.loc["units", "component"] == pytest.approx(15.9294, rel=1e-5)
    assert vc.loc["p1", "std.error"] == pytest.approx(3.774, abs=6e-4)
    assert m.loglik_asreml == pytest.approx(-41.9007, abs=1e-4)


def test_hayman_tobacco_diallel_with_reciprocals_published():
    # agridat hayman.tobacco Rd L120-150 (Mohring et al. 2011, supplement): 1951 data,
    # asreml(day ~ 1, random = ~ male + and(female) + comb + comb:dr): GCA 12.77 (SE 7.502),
    # SCA 11.11 (3.353), reciprocal SCA 0.6603 (0.4926), R 4.185 (0.7449); reproduced values and
    # logL_asreml -212.6486 in shared/reference/REFERENCE.md.  comb:dr (dr a covariate) is comb:lin(dr)
    h = refdata("agridat_hayman.tobacco.csv")
    h = h[h.year == 1951].copy()
    num = {g: int(g[1:]) for g in set(h.male) | set(h.female)}
    h["comb"] = ["x".join(sorted([a, b])) for a, b in zip(h.male, h.female)]
    h["dr"] = np.sign([num[a] - num[b] for a, b in zip(h.male, h.female)]).astype(float)
    m = sr.fit("day ~ 1", "~ male + and(female) + comb + comb:lin(dr)", data=h)
    vc = m.varcomp["component"]
    np.testing.assert_allclose(vc[["male", "comb", "comb:lin(dr)", "units"]],
                               [12.7676, 11.1109, 0.660266, 4.18465], rtol=5e-5)
    np.testing.assert_allclose(m.varcomp["std.error"], [7.502, 3.353, 0.4926, 0.7449], atol=6e-4)
    assert m.loglik_asreml == pytest.approx(-212.6486, abs=1e-4)


@pytest.mark.parametrize("random, match", [
    ("~ and(Father)", "comes first"),
    ("~ Mother + and(Trial:Father)", "must match the term before it"),
    ("~ Mother + and(Father, 0)", "non-zero number"),
    ("~ Mother + and(Father) + Mother", "more than once"),
    ("~ comb:lin(dr):lin(x)", "one covariate"),
])
def test_overlay_formulas_refused_by_name(random, match):
    with pytest.raises(FormulaError, match=match):
        sr.model_spec("y ~ 1", random)


def test_cli_fits_an_overlay(crosses, tmp_path, capsys):
    from sparsereml.cli import main

    path = tmp_path / "crosses.csv"
    crosses.to_csv(path, index=False)
    assert main(["fit", str(path), "--fixed", "y ~ Trial", "--random", "~ Mother + and(Father)", "--quiet",
                 "--out", str(tmp_path / "out")]) == 0
    blups = pd.read_csv(tmp_path / "out" / "blup_Mother.csv")
    assert "P20" in set(blups.iloc[:, 0])  # a parent that is only ever a father
    assert "Mother + and(Father)" in (tmp_path / "out" / "summary.txt").read_text()


@pytest.mark.parametrize("case, random, overlay_terms", [
    ("network_a", "~ Trial:Block + Mother + and(Father)", {"Mother": "Mother"}),
    ("network_b", "~ Trial:Block + Mother + and(Father) + Trial:Mother + and(Trial:Father)",
     {"Mother": "Mother", "Trial_parent": "Trial:Mother"}),
    ("network_c", "~ Trial:Block + Mother + and(Father, 0.5)", {"Mother": "Mother"}),
])
def test_overlays_against_lme4_with_a_hand_built_z(case, random, overlay_terms, backend):
    # tests/reference/overlay.R: lme4 1.1.31 with the overlay Z put into Zt by hand (checked
    # there against a dense REML logLik to 1e-13), on its simulated half-sib/full-sib/self data
    from ..conftest import REFERENCE, reference

    ref = reference("overlay.json")[case]
    df = pd.read_csv(REFERENCE / "overlay_network.csv", dtype={"Father": str, "Mother": str, "Block": str})
    m = sr.fit("y ~ Trial", random, data=df, backend=backend)
    assert m.loglik == pytest.approx(ref["logLik_REML_lme4"], abs=1e-4)
    vc = m.varcomp["component"]
    for r_name, ours in {**overlay_terms, "Trial:Block": "Trial:Block", "Residual": "units"}.items():
        assert vc[ours] == pytest.approx(ref["variances"][r_name], rel=1e-5), r_name
    for r_name, ours in overlay_terms.items():
        b = m.blups(ours)["BLUP"]
        for level, value in ref["blup"][r_name].items():
            assert b[level] == pytest.approx(value, rel=1e-4, abs=1e-6), (r_name, level)


def test_overlay_in_summary_and_predictions(crosses):
    m = sr.fit("y ~ Trial", "~ Mother + and(Father)", data=crosses)
    assert "Mother + and(Father): one effect per level of the parts together" in m.summary()
    selfs = int((crosses.Mother == crosses.Father).sum())
    assert selfs >= 5 and f"; {selfs} records name one level twice (selfs: entry 2)" in m.summary()  # allowed, and said
    p = m.predict("Mother").table.set_index("Mother")["predicted.value"]
    b = m.blups("Mother")["BLUP"]
    assert set(p.index) == set(b.index)  # P16..P20, only ever fathers, are predicted too
    assert p["P20"] - p["P1"] == pytest.approx(b["P20"] - b["P1"], abs=1e-10)
    with pytest.raises(sr.ModelError, match="'P99' is not a level of 'Mother'"):
        m.predict("Mother", levels={"Mother": ["P1", "P99"]})
    with pytest.raises(sr.ModelError, match="several entries"):
        m.predict("Trial", use=["Mother"])


def test_sca_is_the_unordered_cross(crosses):
    m = sr.fit("y ~ Trial", "~ Mother + and(Father) + sca(Mother, Father)", data=crosses)
    Z = _z(m, "sca(Mother, Father)")
    for i, (mo, fa) in enumerate(zip(crosses.Mother, crosses.Father)):
        if not _known(fa):
            assert Z.iloc[i].sum() == 0  # open pollination: no cross, no SCA effect
            continue
        a, b = sorted([mo, fa])  # the parents' common level order: text, as R's factor()
        assert Z.iloc[i][f"{a} x {b}"] == 1 and Z.iloc[i].sum() == 1
    assert any(c.split(" x ")[0] == c.split(" x ")[1] for c in Z.columns)  # selfs: A x A


def test_hayman_sca_term_is_the_published_comb():
    # the same published analysis as test_hayman_tobacco_diallel_with_reciprocals_published, with
    # the unordered cross made by sca(male, female) instead of the derived column comb
    h = refdata("agridat_hayman.tobacco.csv")
    h = h[h.year == 1951].copy()
    num = {g: int(g[1:]) for g in set(h.male) | set(h.female)}
    h["dr"] = np.sign([num[a] - num[b] for a, b in zip(h.male, h.female)]).astype(float)
    m = sr.fit("day ~ 1", "~ male + and(female) + sca(male, female) + sca(male, female):lin(dr)", data=h)
    vc = m.varcomp["component"]
    np.testing.assert_allclose(vc.to_numpy(), [12.7676, 11.1109, 0.660266, 4.18465], rtol=5e-5)
    assert m.loglik_asreml == pytest.approx(-212.6486, abs=1e-4)
