"""Bad input gets a clear error naming the column, level or term, and the caller's data are
never modified."""
import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.errors import AliasWarning, DataError, FormulaError, ModelError


@pytest.fixture
def df():
    rng = np.random.default_rng(4)
    n = 60
    out = pd.DataFrame({"Trial": rng.choice(["T1", "T2", "T3"], n), "Block": rng.integers(1, 4, n),
                        "Mother": rng.integers(1, 9, n), "x": rng.normal(size=n)})
    out["dbh"] = 50 + rng.normal(size=n) * 3 + out.Mother * 0.5
    return out


def fit_unchanged(df, *args, **kw):
    before = df.copy(deep=True)
    try:
        return sr.fit(*args, data=df, **kw)
    finally:
        pd.testing.assert_frame_equal(df, before)


def test_unknown_column_suggests_the_nearest_name(df):
    with pytest.raises(DataError, match=r"column 'Mothr' is not in the data; did you mean 'Mother'\?"):
        fit_unchanged(df, "dbh ~ Trial", "~ Mothr")
    with pytest.raises(DataError, match="did you mean 'Trial'"):
        fit_unchanged(df, "dbh ~ trial")


def test_non_numeric_response(df):
    with pytest.raises(DataError, match="response 'Trial' must be numeric"):
        fit_unchanged(df, "Trial ~ x")


def test_missing_predictor_values_name_the_column_and_count(df):
    df.loc[[3, 7, 11], "Mother"] = np.nan
    with pytest.raises(DataError, match="column 'Mother' has 3 missing value"):
        fit_unchanged(df, "dbh ~ Trial", "~ Mother")
    m = fit_unchanged(df, "dbh ~ Trial", "~ Mother", na_action="drop")
    assert m.nobs == 57 and m.n_dropped_predictors == 3


def test_missing_response_rows_are_dropped_and_counted(df):
    df.loc[[0, 5], "dbh"] = np.nan
    m = fit_unchanged(df, "dbh ~ Trial", "~ Mother")
    assert m.nobs == 58 and m.n_dropped == 2
    assert m.fitted.index.tolist() == [i for i in df.index if i not in (0, 5)]


def test_all_missing_response(df):
    df["dbh"] = np.nan
    with pytest.raises(DataError, match="response 'dbh' has no non-missing values"):
        fit_unchanged(df, "dbh ~ Trial", "~ Mother")


def test_constant_response(df):
    df["dbh"] = 7.0
    with pytest.raises(DataError, match="response 'dbh' is constant"):
        fit_unchanged(df, "dbh ~ Trial", "~ Mother")


def test_random_factor_with_one_level(df):
    df["Site"] = "only"
    with pytest.raises(DataError, match="random term 'Site' has only one level"):
        fit_unchanged(df, "dbh ~ 1", "~ Site + Mother")


def test_repeated_term(df):
    with pytest.raises(FormulaError, match="term 'Mother' appears more than once"):
        fit_unchanged(df, "dbh ~ Trial", "~ Mother + Block + Mother")


def test_at_level_that_does_not_exist(df):
    with pytest.raises(DataError, match=r"at\(Trial, 'T9'\): level 'T9' is not a level of 'Trial'"):
        fit_unchanged(df, "dbh ~ Trial", "~ at(Trial, 'T9'):Block")


def test_aliased_fixed_effects_are_named_and_dropped(df):
    df["x2"] = 2 * df["x"]
    with pytest.warns(AliasWarning, match="dropped: x2"):
        m = fit_unchanged(df, "dbh ~ x + x2", "~ Mother")
    assert "x2" not in m.fixed.index and m.rank == 2


def test_non_positive_start_is_refused(df):
    with pytest.raises(ModelError, match="'Mother' = -1 is not a valid variance"):
        fit_unchanged(df, "dbh ~ Trial", "~ Mother", start={"Mother": -1})
    with pytest.raises(ModelError, match="'Mum' is not a parameter of this model"):
        fit_unchanged(df, "dbh ~ Trial", "~ Mother", start={"Mum": 1.0})


def test_missing_data_argument_and_bad_paths(tmp_path):
    with pytest.raises(ModelError, match="needs data"):
        sr.fit("y ~ 1")
    with pytest.raises(DataError, match="does not exist"):
        sr.fit("y ~ 1", data=str(tmp_path / "nope.csv"))
    (tmp_path / "d.xyz").write_text("a")
    with pytest.raises(DataError, match="cannot tell the format"):
        sr.fit("y ~ 1", data=str(tmp_path / "d.xyz"))


def test_file_inputs_csv_and_parquet(df, tmp_path, backend):
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet")
    a = sr.fit("dbh ~ Trial", "~ Mother", data=tmp_path / "d.csv", backend=backend)
    b = sr.fit("dbh ~ Trial", "~ Mother", data=str(tmp_path / "d.parquet"), backend=backend)
    c = sr.fit("dbh ~ Trial", "~ Mother", data=df, backend=backend)
    assert a.loglik == pytest.approx(c.loglik, abs=1e-9) and b.loglik == pytest.approx(c.loglik, abs=1e-9)


def test_polars_dataframe(df, backend):
    pl = pytest.importorskip("polars")
    m = sr.fit("dbh ~ Trial", "~ Mother", data=pl.from_pandas(df), backend=backend)
    assert m.loglik == pytest.approx(sr.fit("dbh ~ Trial", "~ Mother", data=df, backend=backend).loglik)


def test_unknown_backend(df):
    with pytest.raises(ModelError, match="unknown backend 'magma'"):
        fit_unchanged(df, "dbh ~ Trial", "~ Mother", backend="magma")
