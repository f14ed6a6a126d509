"""Step control of the AI-REML iterations (reml/steps.py), on a quadratic log-likelihood whose
maximum is known, and once on a real REMLProblem."""
import numpy as np
import pytest

import sparsereml as sr
from sparsereml.errors import NotPositiveDefinite
from sparsereml.reml.bounds import Bounds
from sparsereml.reml.parameters import ParameterTable
from sparsereml.reml.problem import Evaluation
from sparsereml.reml.steps import Accepted, newton_step, search, try_step

A = np.array([[4.0, 1.0], [1.0, 3.0]])
TOP = np.array([2.0, 5.0])  # the maximum of the quadratic


class Quadratic:
    """logL = -1/2 (theta - TOP)' A (theta - TOP): two variances, with no model behind them;
    a point with a parameter above ``pd_limit`` is 'not positive definite'."""

    def __init__(self, pd_limit=np.inf):
        self.pd_limit, self.evaluated = pd_limit, []

    def move(self, theta, step):
        return theta + step

    def evaluate(self, theta):
        if np.any(theta > self.pd_limit):
            raise NotPositiveDefinite("made-up cone")
        self.evaluated.append(theta.copy())
        d = theta - TOP
        return Evaluation(theta.copy(), -0.5 * float(d @ A @ d), np.zeros(0), {})

    def at(self, theta, ai_factor=1.0):
        """The evaluation at theta with exact scores and AI = ``ai_factor`` times the Hessian."""
        ev = self.evaluate(np.asarray(theta, float))
        ev.score, ev.ai = A @ (TOP - ev.theta), ai_factor * A
        return ev


def bounds(theta):
    pt = ParameterTable(["a", "b"], [slice(0, 2)], slice(2, 2), np.zeros(2), np.full(2, np.inf), ["var", "var"])
    return Bounds.from_table(pt, np.asarray(theta, float), np.zeros(2, bool))


CODES, FREE = np.array(["P", "P"], dtype=object), np.ones(2, bool)


def test_the_newton_step_of_a_quadratic_reaches_its_maximum():
    ev = Quadratic().at([1.0, 1.0])
    np.testing.assert_allclose(ev.theta + newton_step(ev, FREE), TOP)


def test_only_free_parameters_move():
    ev = Quadratic().at([1.0, 1.0])
    step = newton_step(ev, np.array([True, False]))
    assert step[1] == 0.0 and step[0] == pytest.approx(ev.score[0] / A[0, 0])
    assert not newton_step(ev, np.zeros(2, bool)).any()


def test_damping_solves_with_the_diagonal_added():
    ev = Quadratic().at([1.0, 1.0])
    damped = np.linalg.solve(A + 2.0 * np.diag(np.diag(A)), ev.score)
    np.testing.assert_allclose(newton_step(ev, FREE, damping=2.0), damped)


def test_curvature_is_added_only_while_the_sum_is_positive_definite():
    ev = Quadratic().at([1.0, 1.0])
    ev.curvature = np.diag([1.0, 0.0])
    np.testing.assert_allclose(newton_step(ev, FREE), np.linalg.solve(A + ev.curvature, ev.score))
    ev.curvature = np.diag([-10.0, 0.0])
    np.testing.assert_allclose(newton_step(ev, FREE), np.linalg.solve(A, ev.score))


def test_a_singular_ai_gives_the_least_squares_step():
    ev = Quadratic().at([1.0, 1.0])
    ev.ai = np.ones((2, 2))
    step = newton_step(ev, FREE)
    np.testing.assert_allclose(step, np.linalg.lstsq(ev.ai, ev.score, rcond=None)[0])


def test_try_step_accepts_a_rise_and_refuses_a_fall():
    q = Quadratic()
    ev = q.at([1.0, 1.0])
    cand, codes = try_step(q, ev.theta, TOP - ev.theta, CODES, FREE, bounds(ev.theta), ev.loglik)
    assert cand.loglik == 0.0 and list(codes) == ["P", "P"] and codes is not CODES
    cand, codes = try_step(q, ev.theta, 3.0 * (TOP - ev.theta), CODES, FREE, bounds(ev.theta), ev.loglik)
    assert cand is None and codes is CODES


def test_try_step_marks_a_bound_and_survives_a_cone():
    q = Quadratic(pd_limit=10.0)
    ev = q.at([1e-9, 1.0])  # the first variance at its bound (eps = 1e-8)
    cand, codes = try_step(q, ev.theta, np.array([-1.0, 1.0]), CODES, FREE, bounds(ev.theta), -np.inf)
    assert list(codes) == ["B", "P"] and cand.theta[0] == pytest.approx(1e-8)
    cand, codes = try_step(q, ev.theta, np.array([0.0, 20.0]), CODES, FREE, bounds(ev.theta), -np.inf)
    assert cand is None and codes is CODES


def test_search_takes_the_full_step_when_it_rises():
    q = Quadratic()
    ev = q.at([1.0, 1.0])
    acc = search(q, ev, newton_step(ev, FREE), CODES, FREE, bounds(ev.theta), sr.Control().step_control)
    assert isinstance(acc, Accepted) and acc.label == "1"
    np.testing.assert_allclose(acc.evaluation.theta, TOP)
    assert len(q.evaluated) == 2  # the start and the one step: a full step is not stretched


def test_search_halves_an_overshooting_step():
    q = Quadratic()
    ev = q.at([1.0, 1.0], ai_factor=1 / 3)  # AI too small: the step is three times too long
    acc = search(q, ev, newton_step(ev, FREE), CODES, FREE, bounds(ev.theta), ((0.0, 1.0), (0.0, 0.5)))
    assert acc.label == "0.5"  # 1.5 times the distance; twice that (3) falls again
    np.testing.assert_allclose(acc.evaluation.theta, ev.theta + 1.5 * (TOP - ev.theta))


def test_search_stretches_a_short_step_while_logl_rises():
    q = Quadratic()
    ev = q.at([1.0, 1.0], ai_factor=4.0)  # AI too large: a quarter of the step
    acc = search(q, ev, newton_step(ev, FREE), CODES, FREE, bounds(ev.theta), ((0.0, 0.5),))
    # 0.5/4 of the way, then 1/4, 1/2, then 1: the doubling stops at 8 times the first length
    assert acc.label == "4"
    np.testing.assert_allclose(acc.evaluation.theta, TOP)


def test_search_labels_a_damped_step():
    q = Quadratic()
    ev = q.at([1.0, 1.0], ai_factor=1 / 3)
    acc = search(q, ev, newton_step(ev, FREE), CODES, FREE, bounds(ev.theta), ((0.0, 1.0), (10.0, 1.0)))
    assert acc.label.endswith("LM 10") and acc.evaluation.loglik > ev.loglik


def test_search_gives_none_when_no_step_rises():
    q = Quadratic()
    ev = q.at([1.0, 1.0])
    ev.score = -ev.score  # every step points downhill
    assert search(q, ev, newton_step(ev, FREE), CODES, FREE, bounds(ev.theta), sr.Control().step_control) is None


def test_search_on_a_real_problem_raises_the_loglik():
    data = sr.datasets.trial_network(seed=3, trials=3, trees=2000, mothers=60)[0]
    prep = sr.prepare_fit("dbh ~ Trial", "~ Trial:Block + Mother", data=data)
    prob = prep.problem
    ev = prob.derivatives(prob.evaluate(prep.theta0))
    free = np.ones(ev.theta.size, bool)
    acc = search(prob, ev, newton_step(ev, free), np.array(["P"] * ev.theta.size, dtype=object), free,
                 Bounds.from_table(prob.params, ev.theta, ~free), prep.control.step_control)
    assert acc.evaluation.loglik > ev.loglik
