"""Per-trial AR1 x AR1 residuals recovered from simulated truth.

Data: sparsereml.datasets.trial_network(spatial=True), the exact port of the shared simulator
(shared/data/simulate_trees.py --spatial): each trial's residual is an independent part plus an
AR1(Row) x AR1(Col) field with trial-specific variance and correlations (truth.json's
spatial_var, independent_resid_var, rho_row, rho_col).  The model that matches it has a nugget
(random at(Trial):units) beside at(Trial):ar1(Row):ar1(Col).
"""
import numpy as np
import pytest

import sparsereml as sr
from sparsereml.datasets import trial_network


@pytest.fixture(scope="module", params=[11, 12])
def fit(request):
    df, truth = trial_network(seed=request.param, trials=4, trees=16000, mothers=150, spatial=True)
    m = sr.fit("dbh ~ Trial", "~ at(Trial):Block + Mother + Trial:Mother + at(Trial):units",
               "~ at(Trial):ar1(Row):ar1(Col)", data=df)
    return m, truth


def test_variances_and_correlations_within_their_standard_errors(fit):
    m, truth = fit
    assert m.converged
    vc = m.varcomp
    z = []
    for t in range(4):
        g = f"at(Trial, {t + 1}):units"
        for label, key in ((g + "!R", "spatial_var"), (g, "independent_resid_var"), (g + "!Row:cor", "rho_row"),
                           (g + "!Col:cor", "rho_col")):
            z.append((vc.loc[label, "component"] - truth[key][t]) / vc.loc[label, "std.error"])
    z = np.array(z)
    assert np.abs(z).max() < 3.5
    assert 0.3 < np.sqrt(np.mean(z**2)) < 1.6


def test_every_empty_cell_is_a_missing_value(fit):
    m, _ = fit
    grids = m.design.residual.grids
    assert sum(g.n_cells for g in grids) == m.nobs + m.design.residual.n_missing_cells
    assert m.design.residual.n_missing_cells > 0  # dead trees and the last, partial row of each trial
