"""Start values from the data (reml/start.py, ``default_start``).

Reference: lme4 1.1.31's REML fit of m2 on the 31-trial test network (tests/reference/
trial_network.json, made by tests/reference/trial_network.R), and the within-cell variances
of the same records computed here from their definition."""
import numpy as np
import pytest

from sparsereml.datasets import trial_network
from sparsereml.design import build_design
from sparsereml.formula import model_spec
from sparsereml.reml.problem import REMLProblem
from sparsereml.reml.start import default_start

from ..conftest import reference

RANDOM = "~ Trial:Block + Mother + Trial:Mother"
NET11 = dict(seed=11, trials=31, trees=60000, mothers=400)


@pytest.fixture(scope="module")
def data():
    return trial_network(**NET11)[0]


def _start(data, residual=None):
    prob = REMLProblem(build_design(model_spec("dbh ~ Trial", RANDOM, residual), data))
    return prob, dict(zip(prob.params.labels, default_start(prob)))


def test_one_residual_variance_starts_from_the_moment_system(data):
    """Trials with different residual variances, fitted with one: the variance within cells of
    identical records weighs the trials unlike REML (here 7% below lme4's estimate) and pushed
    Trial:Mother's start up by 75%; the moment system's own residual scale is within 1%."""
    ref = reference("trial_network.json")["net11"]["models"]["m2_lme4"]["varcomp"]
    _, start = _start(data)
    assert start["units"] == pytest.approx(ref["units"], rel=0.01)
    assert start["Trial:Mother"] == pytest.approx(ref["Trial:Mother"], rel=0.6)


def test_residual_groups_keep_the_within_cell_ratios_at_the_moment_scale(data):
    """With at(Trial):units the start of each trial's residual variance is its within-cell
    variance (records sharing trial, block and mother) times one factor for all trials."""
    prob, start = _start(data, "~ at(Trial):units")
    cells = data.groupby(["Trial", "Block", "Mother"], observed=True)["dbh"]
    dev = data["dbh"] - cells.transform("mean")
    df = (cells.transform("size") > 1).groupby(data["Trial"], observed=True).sum() - \
        cells.size().gt(1).groupby(level="Trial").sum()
    within = (dev**2).groupby(data["Trial"], observed=True).sum() / df
    ours = np.array([start[f"at(Trial, {t}):units"] for t in within.index])
    ratio = ours / within.to_numpy()
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
    assert abs(ratio[0] - 1.0) > 1e-3  # the scale came from the moments, not from the cells
