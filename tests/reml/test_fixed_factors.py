"""Many-level fixed factors: the sparse aliasing check, ordering group and OLS centring give
the REML of the textbook formulas, of lme4, and of the dense code path.

References: tests/reml/dense_reml.py (V formed explicitly), tests/reference/fixed_factors.json
(lme4 1.1.31, made by tests/reference/fixed_factors.R), and the dense path (DENSE_MAX and
WIDE_FIXED raised so X'X is dense and the fixed effects form the last ordering group)."""
import warnings

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
import sparsereml.design.fixed as fixed
import sparsereml.reml.problem as problem
from sparsereml.design import build_design
from sparsereml.formula import model_spec

from ..conftest import reference
from .dense_reml import assert_matches_dense

REF = reference("fixed_factors.json")
RANDOM = "~ Trial:Block + Mother + Trial:Mother"


@pytest.fixture(scope="module")
def network():
    """The data of tests/reference/fixed_factors.R (seed 7, 8 trials, 1,501 contemporary groups)."""
    df, _ = sr.datasets.trial_network(seed=7, trials=8, trees=20000, mothers=160)
    df["CG"] = sr.datasets.contemporary_groups(df, 1500)
    return df


def test_small_wide_factor_matches_dense_formulas(backend, monkeypatch):
    rng = np.random.default_rng(11)
    n = 390
    cg = np.repeat(np.arange(130), 3)
    data = pd.DataFrame({"CG": pd.Categorical(cg), "B": pd.Categorical(rng.integers(0, 20, n)),
                         "M": pd.Categorical(rng.integers(0, 15, n)), "x": rng.normal(size=n)})
    data["y"] = 3 * data.x + cg % 5 + rng.normal(size=20)[data.B.cat.codes] + rng.normal(size=n) * 2
    monkeypatch.setattr(fixed, "DENSE_MAX", 0)  # the sparse check on 131 columns
    d = build_design(model_spec("y ~ x + CG", "~ B + M"), data)
    assert d.p == 131 > problem.WIDE_FIXED  # CG is an ordering group of its own
    assert_matches_dense(d, backend)


def test_same_data_as_r(network):
    ref = REF["data_check"]
    assert len(network) == ref["nrow"] and network.dbh.sum() == pytest.approx(ref["sum_dbh"], rel=1e-12)
    assert network.CG.nunique() == ref["n_cg"]
    assert network.CG.astype(int).sum() == ref["sum_cg"]


@pytest.fixture(scope="module")
def wide_fit(network, backend):
    return sr.fit("dbh ~ CG", random=RANDOM, data=network, backend=backend)


def test_many_level_fixed_factor_matches_lme4(wide_fit):
    m = wide_fit
    assert m.rank == REF["ncol_X"] > fixed.DENSE_MAX
    assert m.loglik == pytest.approx(REF["logLik_REML"], abs=1e-6)
    vc = m.varcomp.component
    for ours, theirs in [("Trial:Block", "Trial:Block"), ("Mother", "Mother"),
                         ("Trial:Mother", "Trial:Mother"), ("units", "Residual")]:
        assert vc[ours] == pytest.approx(REF["varcomp"][theirs], rel=2e-5), ours
    fx = m.fixed
    for name, value in REF["fixef"].items():
        ours = name if name == "(Intercept)" else "CG_" + name[2:]
        assert fx.estimate[ours] == pytest.approx(value, rel=1e-5, abs=1e-4), name
        assert fx["std.error"][ours] == pytest.approx(REF["fixef_se"][name], rel=1e-6), name
    assert fx.estimate.sum() == pytest.approx(REF["fixef_sum"], rel=1e-6)
    assert fx["std.error"].sum() == pytest.approx(REF["fixef_se_sum"], rel=1e-7)


def test_wide_path_equals_dense_path(network, backend, monkeypatch):
    data = network.assign(CG=sr.datasets.contemporary_groups(network, 400))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sr.AliasWarning)  # the last group of each trial but the first
        new = sr.fit("dbh ~ Trial + CG", random=RANDOM, data=data, backend=backend, tol=1e-9)
        monkeypatch.setattr(problem, "WIDE_FIXED", 10**9)  # fixed effects in the last group, as before
        old = sr.fit("dbh ~ Trial + CG", random=RANDOM, data=data, backend=backend, tol=1e-9)
        monkeypatch.setattr(fixed, "DENSE_MAX", 0)  # and the sparse check with the old ordering
        both = sr.fit("dbh ~ Trial + CG", random=RANDOM, data=data, backend=backend, tol=1e-9)
    for other in (old, both):
        assert new.loglik == pytest.approx(other.loglik, abs=1e-7)
        np.testing.assert_allclose(new.varcomp.component, other.varcomp.component, rtol=1e-6)
        np.testing.assert_allclose(new.fixed.estimate, other.fixed.estimate, rtol=1e-6, atol=1e-6)
        assert new.design.fixed.aliased == other.design.fixed.aliased


def test_fewer_contrasts_than_variance_parameters_is_refused():
    data = pd.DataFrame({"g": pd.Categorical(list(range(11)) + [0]), "b": pd.Categorical([0, 1, 2] * 4),
                         "y": np.arange(12.0) ** 1.5})
    with pytest.raises(sr.ModelError, match=r"leave 1 residual degrees of freedom.*'g'.*2 variance parameters"):
        sr.fit("y ~ g", random="~ b", data=data)
