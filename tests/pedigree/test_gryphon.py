"""Animal models on the gryphon data against published ASReml-R 4.2 output (Wilson et al. 2010
data, the wam_tuto tutorial; numbers as listed in shared/reference/REFERENCE.md, tier A)."""
import numpy as np
import pytest

import sparsereml as sr

from ..conftest import refdata

VA = "vm(animal, ped)"


@pytest.fixture(scope="module")
def ped():
    return sr.Pedigree(refdata("wam_gryphonped.csv"), id="id", sire="father", dam="mother")


@pytest.fixture(scope="module")
def gryphon():
    df = refdata("wam_gryphon.csv")
    for c in ("animal", "mother", "byear", "sex"):
        df[c] = df[c].astype(str)
    return df


def test_pedigree_facts(ped):
    """1309 individuals, parents first; maximum inbreeding 0.25 (REFERENCE.md)."""
    assert len(ped) == 1309 and ped.added == []
    assert ped.inbreeding.max() == pytest.approx(0.25)


def test_model1_heritability(ped, gryphon, backend):
    """docs/02_01-univ_asreml.html model1 bwt ~ 1, vm(animal, ainv): VA 3.395398 (0.6349915),
    VR 3.828602 (0.5185919), logL -1247.183, h2 0.4700163 (0.07650881)."""
    m = sr.fit("bwt ~ 1", f"~ {VA}", data=gryphon, matrices={"ped": ped}, backend=backend)
    vc = m.varcomp
    assert vc.loc[VA, "component"] == pytest.approx(3.395398, rel=2e-5)
    assert vc.loc["units", "component"] == pytest.approx(3.828602, rel=2e-5)
    assert vc.loc[VA, "std.error"] == pytest.approx(0.6349915, rel=1e-3)
    assert vc.loc["units", "std.error"] == pytest.approx(0.5185919, rel=1e-3)
    assert m.loglik_asreml == pytest.approx(-1247.183, abs=1e-3)
    h2 = m.vpredict({"h2": f"`{VA}` / (`{VA}` + units)"}).loc["h2"]
    assert h2["estimate"] == pytest.approx(0.4700163, rel=1e-5)
    assert h2["std.error"] == pytest.approx(0.07650881, rel=1e-3)


def test_model4_maternal_and_birth_year(ped, gryphon, backend):
    """model4 bwt ~ 1 + sex, random vm(animal) + byear + mother: byear 0.8820313 (0.2632455),
    mother 1.1184698 (0.2386239), VA 2.2985320 (0.4962496), VR 1.6290034 (0.3714154), logL -1094.815."""
    m = sr.fit("bwt ~ 1 + sex", f"~ {VA} + byear + mother", data=gryphon, matrices={"ped": ped}, backend=backend)
    pub = {"byear": (0.8820313, 0.2632455), "mother": (1.1184698, 0.2386239), VA: (2.2985320, 0.4962496),
           "units": (1.6290034, 0.3714154)}
    for label, (value, se) in pub.items():
        assert m.varcomp.loc[label, "component"] == pytest.approx(value, rel=2e-5), label
        assert m.varcomp.loc[label, "std.error"] == pytest.approx(se, rel=1e-3), label
    assert m.loglik_asreml == pytest.approx(-1094.815, abs=1e-3)


def test_bivariate_genetic_correlation(ped, gryphon, backend):
    """docs/03_01-biv_asreml.html: us(trait):vm(animal) and id(units):us(trait): G 3.368397 (0.6348307),
    2.459809 (1.0732644), 12.345792 (3.0744285); R 3.849916 (0.5200101), 3.313282 (0.9129234),
    17.646432 (2.6670380); logL -2679.741; r_A 0.3814436 (0.1299759), r_res 0.4019799 (0.08607104),
    h2 bwt 0.466646 (0.07671533), h2 tarsus 0.4116331 (0.09305863)."""
    m = sr.fit("cbind(bwt, tarsus) ~ trait", f"~ us(trait):{VA}", "~ units:us(trait)", data=gryphon,
               matrices={"ped": ped}, backend=backend)
    g, r = f"us(trait):{VA}!", "units!us(trait)!"
    pub = {g + "bwt:bwt": (3.368397, 0.6348307), g + "tarsus:bwt": (2.459809, 1.0732644),
           g + "tarsus:tarsus": (12.345792, 3.0744285), r + "bwt:bwt": (3.849916, 0.5200101),
           r + "tarsus:bwt": (3.313282, 0.9129234), r + "tarsus:tarsus": (17.646432, 2.6670380)}
    for label, (value, se) in pub.items():
        assert m.varcomp.loc[label, "component"] == pytest.approx(value, rel=3e-5), label
        assert m.varcomp.loc[label, "std.error"] == pytest.approx(se, rel=1e-3), label
    assert m.loglik_asreml == pytest.approx(-2679.741, abs=1e-3)
    est = m.vpredict({
        "rA": f"`{g}tarsus:bwt` / sqrt(`{g}bwt:bwt` * `{g}tarsus:tarsus`)",
        "rE": f"`{r}tarsus:bwt` / sqrt(`{r}bwt:bwt` * `{r}tarsus:tarsus`)",
        "h2_bwt": f"`{g}bwt:bwt` / (`{g}bwt:bwt` + `{r}bwt:bwt`)",
        "h2_tarsus": f"`{g}tarsus:tarsus` / (`{g}tarsus:tarsus` + `{r}tarsus:tarsus`)"})
    for name, (value, se) in {"rA": (0.3814436, 0.1299759), "rE": (0.4019799, 0.08607104),
                              "h2_bwt": (0.466646, 0.07671533), "h2_tarsus": (0.4116331, 0.09305863)}.items():
        assert est.loc[name, "estimate"] == pytest.approx(value, rel=3e-5), name
        assert est.loc[name, "std.error"] == pytest.approx(se, rel=1e-3), name


def test_repeated_measures_permanent_environment(ped, backend):
    """docs/04_01-rep_asreml.html modely laydate ~ age, vm(animal) + ide(animal): VA 4.876101
    (1.8087709), PE 7.400983 (1.7280113), R 16.380188 (0.6866189), logL -3340.679; h2 0.1701523
    (0.06073974), repeatability 0.4284108 (0.02741602)."""
    rm = refdata("wam_gryphonRM.csv")
    for c in ("animal", "byear", "age", "year"):
        rm[c] = rm[c].astype(str)
    m = sr.fit("laydate ~ age", f"~ {VA} + animal", data=rm, matrices={"ped": ped}, backend=backend)
    for label, (value, se) in {VA: (4.876101, 1.8087709), "animal": (7.400983, 1.7280113),
                               "units": (16.380188, 0.6866189)}.items():
        assert m.varcomp.loc[label, "component"] == pytest.approx(value, rel=2e-5), label
        assert m.varcomp.loc[label, "std.error"] == pytest.approx(se, rel=1e-3), label
    assert m.loglik_asreml == pytest.approx(-3340.679, abs=1e-3)
    est = m.vpredict({"h2": f"`{VA}` / (`{VA}` + animal + units)",
                      "rep": f"(`{VA}` + animal) / (`{VA}` + animal + units)"})
    assert est.loc["h2", "estimate"] == pytest.approx(0.1701523, rel=3e-5)
    assert est.loc["h2", "std.error"] == pytest.approx(0.06073974, rel=1e-3)
    assert est.loc["rep", "estimate"] == pytest.approx(0.4284108, rel=3e-5)
    assert est.loc["rep", "std.error"] == pytest.approx(0.02741602, rel=1e-3)


def test_breeding_values_cover_every_individual(ped, gryphon):
    m = sr.fit("bwt ~ 1", f"~ {VA}", data=gryphon, matrices={"ped": ped})
    bv = m.breeding_values(VA)
    assert len(bv) == len(ped) and list(bv.index[:3]) == list(ped.ids[:3])
    va = m.varcomp.loc[VA, "component"]
    F = ped.inbreeding.to_numpy()
    np.testing.assert_allclose(bv["reliability"], 1 - bv["PEV"] / ((1 + F) * va), atol=1e-12)
    np.testing.assert_allclose(bv["accuracy"] ** 2, bv["reliability"], atol=1e-12)
    assert bv["accuracy"].between(0, 1).all()
    # an ancestor without records is predicted from its relatives only: less accurate on average
    has = set(gryphon.loc[gryphon.bwt.notna(), "animal"])
    with_rec = bv.index.isin(list(has))
    assert bv.loc[with_rec, "accuracy"].mean() > bv.loc[~with_rec, "accuracy"].mean()
