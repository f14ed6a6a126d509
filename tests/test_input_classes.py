"""Each class of input that once gave a silent wrong answer or a traceback (issue 13) is now either
understood or refused with a sparsereml error that names the column, term or argument; the
caller's data are never modified."""
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.errors import CovariateWarning, DataError, FormulaError, ModelError, SparseREMLError

from .test_bad_input import fit_unchanged


@pytest.fixture(scope="module")
def trials():
    """Trial and Block as integers, the way trial data arrive in a CSV file."""
    df, _ = sr.datasets.trial_network(seed=5, trials=4, trees=3000, mothers=60)
    out = df.copy()
    for col in ("Trial", "Block", "Mother"):
        out[col] = out[col].astype(int)
    return out


M2 = ("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother")


def test_integer_factor_in_fixed_and_random_is_refused_with_the_fix(trials):
    with pytest.raises(DataError, match=r"column 'Trial' holds numbers.*'Trial:Block' uses it as a factor.*"
                                        r"C\(Trial\).*factors=\['Trial'\].*--factors Trial"):
        fit_unchanged(trials, *M2)
    with pytest.raises(DataError, match="'at\\(Trial\\):units' uses it as a factor|residual at\\(Trial\\):units"):
        fit_unchanged(trials, "dbh ~ Trial", "~ Mother", "~ at(Trial):units")


def test_factors_argument_and_C_give_the_categorical_fit(trials, backend):
    cat = trials.assign(Trial=trials.Trial.astype(str))
    ref = sr.fit(*M2, data=cat, backend=backend)
    a = fit_unchanged(trials, *M2, factors=["Trial"], backend=backend)
    b = fit_unchanged(trials, "dbh ~ C(Trial)", M2[1], backend=backend)
    assert a.loglik == pytest.approx(ref.loglik, abs=1e-8) and b.loglik == pytest.approx(ref.loglik, abs=1e-8)
    assert a.fixed.index.tolist() == ref.fixed.index.tolist()
    with pytest.raises(DataError, match="factors: column 'Trail' is not in the data; did you mean 'Trial'"):
        fit_unchanged(trials, *M2, factors=["Trail"])
    with pytest.raises(DataError, match="factors must be a list of column names"):
        fit_unchanged(trials, *M2, factors=[1, 2])


def test_few_whole_numbers_as_a_covariate_warn_with_the_count(trials, backend):
    k = trials.Block.nunique()
    with pytest.warns(CovariateWarning, match=f"'Block' holds {k} distinct whole numbers") as record:
        fit_unchanged(trials, "dbh ~ Block", "~ Mother", backend=backend)
    assert record[0].filename.endswith("test_bad_input.py")  # the user's line (fit_unchanged), not ours
    with warnings.catch_warnings():
        warnings.simplefilter("error", CovariateWarning)
        slope = fit_unchanged(trials, "dbh ~ lin(Block)", "~ Mother", backend=backend)
    assert "Block" in slope.fixed.index
    with pytest.raises(DataError, match=r"lin\(Trial\) needs a numeric column"):
        fit_unchanged(trials.assign(Trial=trials.Trial.astype(str)), "dbh ~ lin(Trial)", "~ Mother")


def test_a_slope_beside_random_effects_of_the_same_column_is_lin(trials, backend):
    # ASReml's lin(Row) + random Row: a linear trend and deviations from it
    m = fit_unchanged(trials, "dbh ~ lin(Block)", "~ Block + Mother", backend=backend)
    assert m.fixed.index.tolist() == ["(Intercept)", "Block"]


def test_a_fixed_slope_beside_random_slopes_of_the_same_column_is_a_covariate_in_both(trials, backend):
    """dbh ~ Trial + x with ~ Mother + Mother:lin(x) (a slope and a slope per mother) is the model
    with lin(x) written in the fixed formula: x is no factor of Mother:lin(x) (it was refused)."""
    df = trials.assign(Trial=trials.Trial.astype(str), Mother=trials.Mother.astype(str),
                       x=np.random.default_rng(1).normal(size=len(trials)))
    m = fit_unchanged(df, "dbh ~ Trial + x", "~ Mother + Mother:lin(x)", backend=backend)
    ref = sr.fit("dbh ~ Trial + lin(x)", "~ Mother + Mother:lin(x)", data=df, backend=backend)
    assert m.loglik == pytest.approx(ref.loglik, abs=1e-8) and "x" in m.fixed.index
    np.testing.assert_allclose(m.varcomp["component"], ref.varcomp["component"], rtol=1e-8)


@pytest.mark.parametrize("residual", ["~ Mother", "~ Trial", "~ at(Trial):Block"])
def test_residual_formulas_that_mean_nothing_are_refused(trials, residual):
    with pytest.raises(FormulaError, match="has no meaning: a lone factor"):
        fit_unchanged(trials, "dbh ~ C(Trial)", "~ Mother", residual)


def test_idv_units_is_units(trials, backend):
    a = fit_unchanged(trials, "dbh ~ C(Trial)", "~ Mother", "~ idv(units)", backend=backend)
    b = fit_unchanged(trials, "dbh ~ C(Trial)", "~ Mother", backend=backend)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-10) and a.labels == b.labels


def test_independent_grid_needs_one_record_per_cell(trials, backend):
    with pytest.raises(DataError, match="two records share one grid position"):
        fit_unchanged(trials, "dbh ~ C(Trial)", "~ Mother", "~ id(Trial):id(Block)")
    one = trials.groupby(["Trial", "Row", "Col"]).head(1)
    a = fit_unchanged(one, "dbh ~ C(Trial)", "~ Mother", "~ at(Trial):id(Row):id(Col)", backend=backend)
    b = fit_unchanged(one, "dbh ~ C(Trial)", "~ Mother", "~ at(Trial):units", backend=backend)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-10)


def test_infinite_response_is_an_error_or_dropped_on_request(trials, backend):
    bad = trials.copy()
    bad.loc[bad.index[[3, 9]], "dbh"] = [np.inf, -np.inf]
    with pytest.raises(DataError, match=r"column 'dbh' has 2 infinite value\(s\).*na_action='drop'"):
        fit_unchanged(bad, "dbh ~ C(Trial)", "~ Mother")
    m = fit_unchanged(bad, "dbh ~ C(Trial)", "~ Mother", na_action="drop", backend=backend)
    assert m.n_dropped_infinite == 2 and m.nobs == trials.dbh.notna().sum() - 2
    assert "2 for infinite values" in m.summary()
    bad = trials.assign(x=np.where(np.arange(len(trials)) == 5, np.inf, 1.0 * np.arange(len(trials))))
    with pytest.raises(DataError, match=r"column 'x' has 1 infinite value"):
        fit_unchanged(bad, "dbh ~ x", "~ Mother")


def test_factor_analytic_with_more_parameters_than_us_is_refused():
    df, _ = sr.datasets.trial_network(seed=2, trials=6, trees=4000, mothers=60)
    with pytest.raises(ModelError, match=r"'fa\(Trial, 5\):Mother': fa\(\) with 5 factor\(s\) across 6 levels has 26 "
                                         r"parameters, more than the 21.*at most fa\(..., 3\)"):
        fit_unchanged(df, "dbh ~ Trial", "~ Trial:Block + fa(Trial, 5):Mother")


@pytest.mark.parametrize("kw, message", [
    ({"max_iter": -1}, "max_iter must be a whole number >= 1, got -1"),
    ({"max_iter": 2.5}, "max_iter must be a whole number"),
    ({"tol": 0.0}, "tol must be a positive number"),
    ({"control": {"max_iter": 3}}, "control must be a sparsereml.Control"),
    ({"start": [1, 2, 3]}, "start must be a dict of parameter label -> value"),
    ({"start": {1: 2.0}}, "start: the keys must be parameter labels"),
    ({"fix": "Mother"}, "fix must be a dict"),
    ({"matrices": ["ped"]}, "matrices must be a dict"),
    ({"na_action": "omit"}, "na_action must be 'error' or 'drop'"),
    ({"start": {"Mother": "big"}}, "the value for 'Mother' must be a number"),
])
def test_arguments_are_checked_before_the_fit(trials, kw, message):
    with pytest.raises(SparseREMLError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        fit_unchanged(trials, "dbh ~ C(Trial)", "~ Mother", **kw)


def test_control_is_validated_kept_and_shown(trials, backend):
    with pytest.raises(ModelError, match="threads must be a whole number >= 1"):
        sr.Control(threads=0)
    with pytest.raises(ModelError, match="Control has no option 'maxit'"):
        sr.Control().updated(maxit=3)
    c = sr.Control(max_iter=30, tol=1e-7)
    m = fit_unchanged(trials, "dbh ~ C(Trial)", "~ Mother", control=c, backend=backend)
    assert m.control.max_iter == 30 and m.control.tol == 1e-7 and "max_iter=30" in repr(m.control)


def test_formulas_of_the_wrong_type(trials):
    with pytest.raises(FormulaError, match="the random formula must be a string"):
        fit_unchanged(trials, "dbh ~ 1", ["Mother"])


def test_response_named_as_a_random_term(trials):
    with pytest.raises(FormulaError, match="the response 'dbh' also appears among the random terms"):
        fit_unchanged(trials, "dbh ~ C(Trial)", "~ dbh")


@pytest.mark.parametrize("random, residual", [("~ Mother + Tree", None), ("~ Mother + units", None),
                                              ("~ Mother + at(Trial):units", "~ at(Trial):units")])
def test_random_term_with_one_level_per_record_needs_another_residual(trials, random, residual):
    with pytest.raises(ModelError, match="has one level per record, so its variance cannot be told apart"):
        fit_unchanged(trials.dropna(subset=["dbh"]), "dbh ~ C(Trial)", random, residual)


def test_a_per_record_term_on_some_groups_only_is_identified(trials, backend):
    # extra variance for trial 1's records beside one residual variance: identified
    m = fit_unchanged(trials, "dbh ~ C(Trial)", "~ Mother + at(Trial, 1):units", backend=backend)
    assert m.converged


def test_pedigree_miss_hint_is_right_about_the_id_types(tmp_path):
    data = pd.DataFrame({"id": np.arange(1, 41), "y": np.random.default_rng(1).normal(size=40)})
    ped = sr.Pedigree(pd.DataFrame({"id": np.arange(1, 31), "sire": 0, "dam": 0}), "id", "sire", "dam")
    for frame in (data, data.assign(id=data.id.astype("category"))):
        with pytest.raises(DataError, match="10 id\\(s\\) of 'id' are not in the pedigree") as err:
            sr.fit("y ~ 1", "~ vm(id, ped)", data=frame, matrices={"ped": ped})
        assert "text" not in str(err.value)


def test_fitted_model_pickles_with_the_same_tables(trials, tmp_path, backend):
    m = fit_unchanged(trials, *M2, factors=["Trial"], backend=backend)
    tables = (m.varcomp, m.fixed, m.blups("Mother"), m.vcov_params)
    loaded = pickle.loads(pickle.dumps(m))
    m.save(tmp_path / "m2.pkl")
    saved = sr.load(tmp_path / "m2.pkl")
    for other in (loaded, saved):
        for a, b in zip(tables, (other.varcomp, other.fixed, other.blups("Mother"), other.vcov_params)):
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
        assert other.summary() == m.summary() and other.loglik == m.loglik
    (tmp_path / "junk.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelError, match="is not a model saved by sparsereml"):
        sr.load(tmp_path / "junk.pkl")
    with pytest.raises(ModelError, match="no saved model at"):
        sr.load(tmp_path / "none.pkl")


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_a_response_beyond_double_precision_is_refused(trials, scale):
    with pytest.raises(DataError, match="sums of its squares cannot be formed in double precision; rescale it"):
        fit_unchanged(trials.assign(dbh=trials.dbh * scale), "dbh ~ C(Trial)", "~ Mother")


def test_traits_that_are_linear_functions_of_each_other_are_refused(trials):
    with pytest.raises(DataError, match="the traits 'dbh', 'dbh2' are linear functions of each other"):
        fit_unchanged(trials.assign(dbh2=2 * trials.dbh + 1), "cbind(dbh, dbh2) ~ trait", "~ us(trait):Mother")


def test_verbose_must_be_a_bool(trials):
    with pytest.raises(ModelError, match="verbose must be True or False"):
        fit_unchanged(trials, "dbh ~ C(Trial)", "~ Mother", verbose="yes")


@pytest.mark.parametrize("threads", [1, 3])
def test_control_threads_fix_every_parallel_step(trials, threads):
    from sparsereml.linalg.threads import thread_budget

    seen = []
    fit_unchanged(trials, "dbh ~ C(Trial)", "~ Mother", control=sr.Control(threads=threads),
                  callback=lambda row: seen.append(thread_budget()))
    assert seen and set(seen) == {threads}


def test_infinite_trait_value_names_the_trait_and_row(trials):
    bad = trials.assign(h=trials.dbh * 0.5 + np.random.default_rng(2).normal(size=len(trials)))
    bad.loc[bad.index[4], "h"] = np.inf
    with pytest.raises(DataError, match=r"column 'h' has 1 infinite value\(s\) \(the first in data row 5\)"):
        fit_unchanged(bad, "cbind(dbh, h) ~ trait", "~ us(trait):Mother")


def test_replicated_term_beside_a_grid_section_is_identified(backend):
    """G has 4 records per level on site A (an ar1 x ar1 grid) and one per level on site B
    (independent records): its variance is identified from site A (found in review)."""
    rng = np.random.default_rng(5)
    a = pd.DataFrame({"Site": "A", "Row": np.repeat(np.arange(10), 20), "Col": np.tile(np.arange(20), 10),
                      "G": np.tile(np.arange(50), 4)})
    b = pd.DataFrame({"Site": "B", "Row": 0, "Col": np.arange(50), "G": np.arange(50)})
    df = pd.concat([a, b], ignore_index=True)
    df["y"] = rng.normal(size=50)[df.G] + rng.normal(size=len(df))
    m = fit_unchanged(df, "y ~ Site", "~ G", "~ at(Site, A):ar1(Row):ar1(Col) + at(Site, B):units", backend=backend)
    assert "G" in m.varcomp.index


def test_load_refuses_what_is_not_a_saved_model(tmp_path, trials):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ModelError, match="is not a model saved by sparsereml"):
        sr.load(tmp_path / "data.csv")
    with pytest.raises(ModelError, match="cannot read"):
        sr.load(tmp_path)
    m = fit_unchanged(trials, "dbh ~ C(Trial)", "~ Mother")
    with pytest.raises(ModelError, match="cannot write the model to"):
        m.save(tmp_path / "no" / "such" / "dir" / "m.pkl")


def test_control_takes_numpy_integers():
    assert sr.Control(max_iter=np.int64(20)).max_iter == 20


def test_an_overflowing_product_of_covariates_names_the_term(trials):
    big = trials.assign(a=trials.dbh * 1e200, b=trials.dbh * 1e200)
    with pytest.raises(DataError, match="the fixed term 'a:b' has values beyond double precision"):
        fit_unchanged(big, "dbh ~ a:b", "~ Mother")


def test_verbose_reports_each_stage_then_each_iteration(capsys):
    df, _ = sr.datasets.trial_network(seed=5, trials=4, trees=3000, mothers=60)
    sr.fit("dbh ~ Trial", "~ Trial:Block + Mother", data=df, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("design: ") and lines[1].startswith("equations: ")
    assert lines[2].startswith("iteration   0  logL")
    with pytest.raises(sr.ModelError, match="verbose must be True or False"):
        sr.fit("dbh ~ Trial", data=df, verbose="yes")
