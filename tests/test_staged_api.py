"""The staged API (model_spec -> build_design -> REMLProblem -> start_values -> ai_reml ->
FittedModel, as lme4's parse -> objective -> optimize -> wrap) gives the fit sr.fit gives."""
import pandas as pd
import pytest

import sparsereml as sr

RANDOM = "~ Trial:Block + Mother + Trial:Mother"


@pytest.fixture(scope="module")
def network():
    return sr.datasets.trial_network(seed=11, trials=4, trees=3000, mothers=60)[0]


@pytest.mark.parametrize("threads", [None, 1])
def test_stages_give_the_fit(network, threads, backend):
    control = sr.Control(threads=threads, backend=backend)
    whole = sr.fit("dbh ~ Trial", RANDOM, "~ at(Trial):units", data=network, control=control)
    spec = sr.model_spec("dbh ~ Trial", RANDOM, "~ at(Trial):units")
    design = sr.build_design(spec, network)
    problem = sr.REMLProblem(design, control)
    theta0, fixed = sr.start_values(problem)
    result = sr.ai_reml(problem, theta0, fixed)
    staged = sr.FittedModel(problem, result)
    assert staged.control == whole.control == control
    assert staged.loglik == whole.loglik
    pd.testing.assert_frame_equal(staged.varcomp, whole.varcomp)
    pd.testing.assert_frame_equal(staged.fixed, whole.fixed)
    cols = [c for c in whole.iterations.columns if c != "seconds"]
    pd.testing.assert_frame_equal(staged.iterations[cols], whole.iterations[cols])


def test_control_is_kept_by_every_stage(network):
    control = sr.Control(max_iter=3, tol=1e-9)
    problem = sr.REMLProblem(sr.build_design(sr.model_spec("dbh ~ Trial", RANDOM), network), control)
    assert problem.control is control
    with pytest.warns(sr.ConvergenceWarning):
        m = sr.fit("dbh ~ Trial", RANDOM, data=network, control=control)
    result = sr.ai_reml(problem, *sr.start_values(problem))
    assert not result.converged and len(result.history) == 4 == len(m.iterations)
    # a shortcut replaces its field for this call only; without start values, the data's
    assert sr.ai_reml(problem, max_iter=50).converged
    assert problem.control.max_iter == 3


def test_start_values_take_start_and_fix(network):
    problem = sr.REMLProblem(sr.build_design(sr.model_spec("dbh ~ Trial", RANDOM), network))
    theta, fixed = sr.start_values(problem, start={"Mother": 5.0}, fix={"Trial:Block": 2.0})
    labels = problem.params.labels
    assert theta[labels.index("Mother")] == 5.0 and theta[labels.index("Trial:Block")] == 2.0
    assert fixed.tolist() == [lab == "Trial:Block" for lab in labels]
    with pytest.raises(sr.ModelError, match="'Dam' is not a parameter"):
        sr.start_values(problem, start={"Dam": 1.0})
