"""The AI-REML loop's last step (reml/optimizer.py): when the step after the current one is
predicted below tol, the current step is the last, and that point is evaluated without scores.

Reference: the same model iterated with a far tighter tolerance (the optimum to ~1e-10), and
the full evaluation (selected inverse included) at the reported point."""
import numpy as np
import pytest

import sparsereml as sr
from sparsereml.datasets import trial_network

RANDOM = "~ Trial:Block + Mother + Trial:Mother"


@pytest.fixture(scope="module")
def data():
    return trial_network(seed=7, trials=8, trees=16000, mothers=150)[0]


@pytest.fixture(scope="module")
def fits(data):
    return (sr.fit("dbh ~ Trial", RANDOM, "~ at(Trial):units", data=data),
            sr.fit("dbh ~ Trial", RANDOM, "~ at(Trial):units", data=data, tol=1e-10, max_iter=100))


def test_last_step_is_predicted_and_taken(fits):
    m, _ = fits
    assert m.converged
    assert "shrank by" in m.message
    assert m.result.evaluation.score is None  # the last point got AI, not scores


def test_estimates_match_a_tight_fit_to_the_tolerance(fits):
    m, tight = fits
    a, b = m.varcomp["component"], tight.varcomp["component"]
    assert np.max(np.abs(a - b) / b) < 1e-6
    assert abs(m.loglik - tight.loglik) < 1e-8
    # standard errors from the AI at the last point
    assert np.allclose(m.varcomp["std.error"], tight.varcomp["std.error"], rtol=1e-5)


def test_pevs_come_from_the_reported_point(fits, data):
    m, tight = fits
    # the problem's factor is moved elsewhere before PEVs are asked for: they must still be
    # those at the reported parameters
    prob = m.problem
    prob.evaluate(m.result.evaluation.theta * 1.5)
    b = m.blups("Mother")
    full = prob.derivatives(prob.evaluate(m.result.evaluation.theta))
    off, mme = prob.mme.offsets[1], prob.mme
    on = mme.rows == mme.cols  # the diagonal of C among the pattern's entries
    diag = np.empty(mme.N, dtype=np.int64)
    diag[mme.rows[on]] = np.flatnonzero(on)
    pos = diag[off: off + b.shape[0]]
    assert np.allclose(b["PEV"].to_numpy(), full.zc[pos], rtol=1e-12)
    assert np.allclose(m.blups("Mother")["PEV"], tight.blups("Mother")["PEV"], rtol=1e-5)
    assert np.allclose(m.fixed["std.error"], tight.fixed["std.error"], rtol=1e-5)


@pytest.fixture
def rough_calls(monkeypatch):
    """Let the small test network's dense block (150 mothers) be inverted in single precision, and
    record the ``single`` flag of every selected inverse and how many went through float32."""
    from sparsereml.linalg import factor

    monkeypatch.setattr(factor, "SINGLE_DENSE_MIN", 16)
    calls = {"flags": [], "float32": 0, "ai": 0}
    selected, single = factor.SparseLDL.selected_inverse, factor.SparseLDL._single_inverse
    quadratic = factor.SparseLDL.inverse_quadratic

    def recorded(self, single=False):
        calls["flags"].append(single)
        return selected(self, single)

    def counted(self, c, out):
        calls["float32"] += 1
        return single(self, c, out)

    def ai_counted(self, T):
        calls["ai"] += 1
        return quadratic(self, T)

    monkeypatch.setattr(factor.SparseLDL, "selected_inverse", recorded)
    monkeypatch.setattr(factor.SparseLDL, "_single_inverse", counted)
    monkeypatch.setattr(factor.SparseLDL, "inverse_quadratic", ai_counted)
    return calls


def test_rough_scores_far_from_the_optimum_exact_ones_decide(fits, data, rough_calls):
    """Steps far from the optimum come from rough scores (dense block inverted in float32); the
    evaluations near it, where the stop is decided, are exact; the answer is the tight fit's."""
    _, tight = fits
    m = sr.fit("dbh ~ Trial", RANDOM, "~ at(Trial):units", data=data)
    flags = rough_calls["flags"]
    assert m.converged and "shrank by" in m.message
    assert rough_calls["float32"] >= 2 and flags[:2] == [True, True]
    assert flags[-1] is False  # the step that ended the iterations came from exact scores
    a, b = m.varcomp["component"], tight.varcomp["component"]
    assert np.max(np.abs(a - b) / b) < 1e-6
    assert abs(m.loglik - tight.loglik) < 1e-8
    assert np.allclose(m.varcomp["std.error"], tight.varcomp["std.error"], rtol=1e-5)


def test_a_start_at_the_optimum_is_confirmed_with_exact_scores(fits, data, rough_calls):
    """The first evaluation is rough; from a start at the optimum its step is tiny, so it is
    repeated exactly before the fit may stop."""
    _, tight = fits
    start = dict(zip(tight.varcomp.index, tight.varcomp["component"]))
    m = sr.fit("dbh ~ Trial", RANDOM, "~ at(Trial):units", data=data, start=start)
    assert m.converged and m.iterations.shape[0] <= 2
    assert rough_calls["flags"][:2] == [True, False]
    assert rough_calls["float32"] == 1
    assert rough_calls["ai"] == m.iterations.shape[0]  # the repeat reused the (exact) AI
    assert np.max(np.abs(m.varcomp["component"] - tight.varcomp["component"]) / tight.varcomp["component"]) < 1e-6


def test_a_rough_request_without_a_wide_dense_block_is_exact(data):
    """Where no dense block is wide enough for single precision (150 mothers < SINGLE_DENSE_MIN), a
    rough request gives exact scores, says so, keeps the selected inverse, and is never repeated."""
    m = sr.fit("dbh ~ Trial", RANDOM, "~ at(Trial):units", data=data)
    prob = m.problem
    ev = prob.derivatives(prob.evaluate(m.result.evaluation.theta), rough=True)
    assert not ev.rough and ev.zc is not None
    exact = prob.derivatives(prob.evaluate(ev.theta))
    np.testing.assert_array_equal(ev.score, exact.score)
    full = (m.iterations["step"] != "").sum()  # iterations after the start, the last one light
    calls = []
    selected = prob.factor.selected_inverse
    prob.factor.selected_inverse = lambda single=False: calls.append(single) or selected(single)
    sr.ai_reml(prob, m.iterations.iloc[0][prob.params.labels].to_numpy(float))
    assert len(calls) == full  # one selected inverse per full evaluation (the start's included)


def test_n_iterations_counts_the_iterations_after_the_start():
    small = trial_network(seed=3, trials=3, trees=2000, mothers=60)[0]
    prep = sr.prepare_fit("dbh ~ Trial", "~ Trial:Block + Mother", data=small)
    result = sr.ai_reml(prep.problem, prep.theta0)
    assert result.converged and result.n_iterations >= 2
    assert result.n_iterations == len(result.history) - 1 == result.history[-1]["iteration"]
    m = prep.run()
    assert m.n_iterations == result.n_iterations and m.iterations.shape[0] == result.n_iterations + 1


def test_max_iter_stops_without_convergence_and_fixed_parameters_stay():
    small = trial_network(seed=3, trials=3, trees=2000, mothers=60)[0]
    prep = sr.prepare_fit("dbh ~ Trial", "~ Trial:Block + Mother", data=small)
    result = sr.ai_reml(prep.problem, prep.theta0, max_iter=2)
    assert not result.converged and result.n_iterations == 2
    assert result.message == "stopped after 2 iterations without meeting the convergence rule"
    fixed = np.zeros(prep.theta0.size, bool)
    fixed[0] = True
    held = sr.ai_reml(prep.problem, prep.theta0, fixed)
    assert held.converged and held.codes[0] == "F" and set(held.codes[1:]) == {"P"}
    assert held.theta[0] == prep.theta0[0] and np.all(held.theta[1:] != prep.theta0[1:])
    assert held.evaluation.loglik < sr.ai_reml(prep.problem, prep.theta0).evaluation.loglik
