"""Structured residuals (AR1 x AR1, ID x AR1 per site, us across a factor) against published
ASReml results.

Data: tests/refdata (agridat 1.27, see its README).  Every case cites the agridat Rd lines and
the publication they quote; "reproduced" values come from the project's reference collection
(shared/reference/REFERENCE.md, an independent dense REML evaluator).  ASReml's ar1(xf):ar1(yf)
with xf = factor(col), yf = factor(row) is R = s2 AR1(col) (x) AR1(row), written here as
``ar1(col):ar1(row)`` on the numeric columns.  logL is compared in ASReml's convention.
"""
import numpy as np
import pandas as pd
import pytest

import sparsereml as sr

from ..conftest import refdata


def comp(m, label):
    return m.varcomp.loc[label, "component"]


def se(m, label):
    return m.varcomp.loc[label, "std.error"]


def check(m, published: dict, rel: float, ses: dict | None = None, se_rel: float = 5e-3):
    for label, value in published.items():
        assert comp(m, label) == pytest.approx(value, rel=rel), label
    for label, value in (ses or {}).items():
        assert se(m, label) == pytest.approx(value, rel=se_rel), label


def test_kempton_barley_uniformity_ar1_x_ar1(backend):
    """asreml(yield ~ 1, resid = ~ ar1(xf):ar1(yf)): agridat kempton.barley.uniformity.Rd L67-72:
    R 0.1044 (SE 0.02197), xf cor 0.2458 (0.07484), yf cor 0.8186 (0.03821); reproduced 0.10442,
    0.24575, 0.81865, logL 231.4252."""
    m = sr.fit("yield ~ 1", residual="~ ar1(col):ar1(row)", data=refdata("agridat_kempton.barley.uniformity.csv"),
               backend=backend)
    check(m, {"units": 0.10442, "units!col:cor": 0.24575, "units!row:cor": 0.81865}, 1e-4,
          {"units": 0.02197, "units!col:cor": 0.07484, "units!row:cor": 0.03821})
    assert m.loglik_asreml == pytest.approx(231.4252, abs=1e-3)


def test_stroup_nin_missing_plots_are_missing_values(backend):
    """asreml(yield ~ gen, resid = ~ ar1(xf):ar1(yf)) on a 22 x 11 grid with 18 empty plots:
    agridat stroup.nin.Rd L189-200: R 48.7 (7.155), xf cor 0.6555 (0.05638), yf cor 0.4375
    (0.0806); reproduced 48.71281, 0.65552, 0.43746, logL -399.3238 (n = 224, p = 56)."""
    df = refdata("agridat_stroup.nin.csv")
    m = sr.fit("yield ~ gen", residual="~ ar1(col):ar1(row)", data=df, backend=backend)
    assert m.nobs == 224 and m.n_dropped == 18
    check(m, {"units": 48.71281, "units!col:cor": 0.65552, "units!row:cor": 0.43746}, 1e-4,
          {"units": 7.155, "units!col:cor": 0.05638, "units!row:cor": 0.0806})
    assert m.loglik_asreml == pytest.approx(-399.3238, abs=1e-3)
    # dropping the empty plots from the table instead changes nothing: the grid is the same
    m2 = sr.fit("yield ~ gen", residual="~ ar1(col):ar1(row)", data=df.dropna(subset=["yield"]), backend=backend)
    assert m2.loglik == pytest.approx(m.loglik, abs=1e-8)


def test_gilmour_slatehall_model4(backend):
    """Gilmour, Cullis & Verbyla (1997, JABES 2:269) Model 4, agridat gilmour.slatehall.Rd L65-80:
    asreml(yield ~ gen + lin(row), random = ~ dev(row) + dev(col), resid = ~ ar1(xf):ar1(yf)):
    dev(col) 2519 (SE 1959), dev(row) 20290 (10260), R 23950 (4616), xf cor 0.439 (0.113),
    yf cor 0.125 (0.117); reproduced 2518.90, 20292.79, 23945.43, 0.43914, 0.12455, logL -716.1663."""
    df = refdata("agridat_gilmour.slatehall.csv")
    m = sr.fit("yield ~ gen + lin(row)", "~ C(row) + C(col)", "~ ar1(col):ar1(row)", data=df, backend=backend)
    check(m, {"C(col)": 2518.90, "C(row)": 20292.79, "units": 23945.43, "units!col:cor": 0.43914,
              "units!row:cor": 0.12455}, 2e-4,
          {"C(col)": 1959, "C(row)": 10260, "units": 4616, "units!col:cor": 0.113, "units!row:cor": 0.117})
    assert m.loglik_asreml == pytest.approx(-716.1663, abs=1e-3)


def test_burgueno_alpha_spatial_models(backend):
    """agridat burgueno.alpha.Rd L68-131 (Burgueno et al. 2000, p. 36), ASReml logL: m4 (1 + gen,
    ar1(xf):ar1(yf)) -221.47 (reproduced -221.4725; s2 415846, rho_x 0.75545, rho_y 0.22331),
    m5 (+ random yf) -220.07 (-220.0677), m10 (+ lin(yf) + lin(xf)) -211.56 (-211.5572)."""
    df = refdata("agridat_burgueno.alpha.csv")
    m4 = sr.fit("yield ~ 1 + gen", residual="~ ar1(col):ar1(row)", data=df, backend=backend)
    m5 = sr.fit("yield ~ 1 + gen", "~ C(row)", "~ ar1(col):ar1(row)", data=df, backend=backend)
    m10 = sr.fit("yield ~ 1 + gen + row + col", residual="~ ar1(col):ar1(row)", data=df, backend=backend)
    for m, ll in ((m4, -221.4725), (m5, -220.0677), (m10, -211.5572)):
        assert m.loglik_asreml == pytest.approx(ll, abs=2e-4)
    check(m4, {"units": 415846, "units!col:cor": 0.75545, "units!row:cor": 0.22331}, 2e-4)


def test_burgueno_unreplicated_negative_correlation(backend):
    """asreml(yield ~ 1, random = ~ gen, resid = ~ ar1(xf):ar1(yf)): agridat burgueno.unreplicated
    .Rd L63-70 (Burgueno et al. 2000): gen 0.9122 (0.127), R 0.4993 (0.05601), xf cor -0.2431
    (0.09156), yf cor 0.1255 (0.07057); reproduced 0.91224, 0.49927, -0.24309, 0.12555, logL
    -211.7242."""
    m = sr.fit("yield ~ 1", "~ gen", "~ ar1(col):ar1(row)", data=refdata("agridat_burgueno.unreplicated.csv"),
               backend=backend)
    check(m, {"gen": 0.91224, "units": 0.49927, "units!col:cor": -0.24309, "units!row:cor": 0.12555}, 2e-4,
          {"gen": 0.127, "units": 0.05601, "units!col:cor": 0.09156, "units!row:cor": 0.07057})
    assert m.loglik_asreml == pytest.approx(-211.7242, abs=1e-3)


def test_cullis_earlygen_nugget(backend):
    """m4 asreml(yield ~ weed + pol(col,-1), random = ~ gen + units, resid = ~ ar1(xf):ar1(yf)):
    agridat cullis.earlygen.Rd L111-126: gen 73780 (10420), units 30440 (8073), R 54730 (10630),
    xf cor 0.38 (0.115), yf cor 0.84 (0.045); reproduced with a centred col for pol(col,-1):
    73768.7, 30443.5, 54714.9, 0.3754, 0.8375.  A random ``units`` term renames the residual
    variance ``units!R``."""
    df = refdata("agridat_cullis.earlygen.csv")
    df["colc"] = df["col"] - df["col"].mean()
    m = sr.fit("yield ~ weed + colc", "~ gen + units", "~ ar1(col):ar1(row)", data=df, backend=backend)
    check(m, {"gen": 73768.7, "units": 30443.5, "units!R": 54714.9, "units!col:cor": 0.3754,
              "units!row:cor": 0.8375}, 3e-4,
          {"gen": 10420, "units": 8073, "units!R": 10630, "units!col:cor": 0.115, "units!row:cor": 0.045}, 0.02)


def test_durban_splitplot_boundary_and_nugget(backend):
    """asreml(yield ~ gen*fung, random = ~ block/fung + units, resid = ~ ar1v(rowf):ar1(bedf)):
    agridat durban.splitplot.Rd L83-96 (Durban et al. 2003, JABES 8:48, Table 5): block 0 (B),
    block:fung 0.01206 (0.01512), units 0.02463 (0.002465), rowf var 0.1261 (0.04434), rowf cor
    0.8836 (0.03646), bedf cor 0.9202 (0.02846); reproduced 0.0120633, 0.0246296, 0.126168,
    0.883622, 0.920182, logL 343.7148.  ar1v(rowf):ar1(bedf) is ar1(row):ar1(bed) with the
    variance on the residual (REFERENCE.md convention 5)."""
    df = refdata("agridat_durban.splitplot.csv")
    m = sr.fit("yield ~ gen*fung", "~ block + block:fung + units", "~ ar1(row):ar1(bed)", data=df, backend=backend)
    assert m.varcomp.loc["block", "bound"] == "B"
    check(m, {"block:fung": 0.0120633, "units": 0.0246296, "units!R": 0.126168, "units!row:cor": 0.883622,
              "units!bed:cor": 0.920182}, 3e-4,
          {"block:fung": 0.01512, "units": 0.002465, "units!R": 0.04434, "units!row:cor": 0.03646,
           "units!bed:cor": 0.02846}, 0.01)
    assert m.loglik_asreml == pytest.approx(343.7148, abs=1e-3)


def test_hildebrand_systems_m1_us_residual(backend):
    """asreml(yield ~ system, resid = ~ us(system):farm): agridat hildebrand.systems.Rd L81-82
    (Piepho 1998, Table 5): variances CCA 1.11, CCAF 1.966, LM 0.2996, LMF 0.9185; reproduced full
    matrix [[1.1102, 1.0568, 0.4981, 0.6969], [1.0568, 1.9657, 0.4992, 1.2300], [0.4981, 0.4992,
    0.2996, 0.3438], [0.6969, 1.2300, 0.3438, 0.9185]], logL -2.2510."""
    df = refdata("agridat_hildebrand.systems.csv")
    m = sr.fit("yield ~ system", residual="~ farm:us(system)", data=df, backend=backend)
    ref = np.array([[1.1102, 1.0568, 0.4981, 0.6969], [1.0568, 1.9657, 0.4992, 1.2300],
                    [0.4981, 0.4992, 0.2996, 0.3438], [0.6969, 1.2300, 0.3438, 0.9185]])
    lv = ["CCA", "CCAF", "LM", "LMF"]
    for i in range(4):
        for j in range(i + 1):
            assert comp(m, f"units!us(system)!{lv[i]}:{lv[j]}") == pytest.approx(ref[i, j], abs=1e-4)
    assert m.loglik_asreml == pytest.approx(-2.2510, abs=1e-3)


LUPIN_RESIDUAL = "~ at(site, c(S1, S2)):ar1(col):ar1(row) + at(site, S3):id(col):ar1(row)"
LUPIN_RANDOM = "~ at(site):C(col) + at(site, S3):C(row)"


@pytest.fixture(scope="module")
def lupin():
    """agridat vsn.lupin3.Rd L53-59: check = gen for the 6 checks (0 for the filler 337, 7 for
    tests), test = gen for the tests, else 0."""
    df = refdata("agridat_vsn.lupin3.csv")
    chk = np.where(df["gen"] > 336, 0, df["gen"])
    df["check"] = pd.Categorical(np.where(chk < 7, chk, 7).astype(str))
    df["test"] = np.where((df["gen"] > 6) & (df["gen"] < 337), df["gen"], 0).astype(str)
    return df


def test_vsn_lupin3_m1_per_site_spatial(lupin, backend):
    """m1 asreml(yield ~ site + check:site, random = ~ at(site):colf + at(site,3):rowf + test,
    residual = ~ dsum(~ ar1(colf):ar1(rowf) + id(colf):ar1(rowf) | site, levels = list(1:2, 3))):
    agridat vsn.lupin3.Rd L66-89, logL -314.2616; reproduced components colf 0.62258 / 0.15899 /
    0.04833, rowf S3 0.0235, test 0.10307, R 2.77137 / 0.99264 / 0.12046, colf cor 0.19592 /
    0.28685, rowf cor 0.6504 / 0.57446 / 0.63936; published SEs test 0.01468, R S1 0.314."""
    with pytest.warns(sr.AliasWarning):  # site + check:site has 23 estimable cells of 24 columns
        m = sr.fit("yield ~ site + check:site", LUPIN_RANDOM + " + test", LUPIN_RESIDUAL, data=lupin, backend=backend)
    assert m.loglik_asreml == pytest.approx(-314.2616, abs=2e-4)
    r = "at(site, {}):units".format
    check(m, {"at(site, S1):C(col)": 0.62258, "at(site, S2):C(col)": 0.15899, "at(site, S3):C(col)": 0.04833,
              "at(site, S3):C(row)": 0.0235, "test": 0.10307, r("S1"): 2.77137, r("S2"): 0.99264,
              r("S3"): 0.12046, r("S1") + "!col:cor": 0.19592, r("S2") + "!col:cor": 0.28685,
              r("S1") + "!row:cor": 0.6504, r("S2") + "!row:cor": 0.57446, r("S3") + "!row:cor": 0.63936}, 2e-3,
          {"test": 0.01468, r("S1"): 0.314}, 5e-3)


@pytest.mark.parametrize("term, loglik", [
    ("test + site:test", -310.8794),
    ("corh(site):test", -288.4837),
    ("us(site):test", -286.8239),
    ("fa(site, 1):test", -286.8484),
])
def test_vsn_lupin3_genotype_by_site_models(lupin, backend, term, loglik):
    """m2-m5 of agridat vsn.lupin3.Rd: m2 + site:test (L92-94), m3 corh(site):test (L96-103),
    m4 us(site):test (L105-112), m5 fa(site, 1):test (L116-123); published logL as given."""
    with pytest.warns(sr.AliasWarning):
        m = sr.fit("yield ~ site + check:site", f"{LUPIN_RANDOM} + {term}", LUPIN_RESIDUAL, data=lupin,
                   backend=backend)
    assert m.converged
    assert m.loglik_asreml == pytest.approx(loglik, abs=2e-4)
    if term.startswith("us"):  # Rd L125-132
        G = m.vcov("us(site):test")["covariance"].to_numpy()
        np.testing.assert_allclose(G, [[0.992, 0.158, 0.132], [0.158, 0.073, 0.078], [0.132, 0.078, 0.122]],
                                   atol=6e-4)
    if term.startswith("fa"):  # Rd L134-142: "FA model fixes site 2 variance at 0"
        G = m.vcov("fa(site, 1):test")["covariance"].to_numpy()
        np.testing.assert_allclose(G, [[0.991, 0.156, 0.133], [0.156, 0.092, 0.078], [0.133, 0.078, 0.122]],
                                   atol=6e-4)
        assert m.varcomp.loc["fa(site, 1):test!var.S2", "bound"] == "B"
