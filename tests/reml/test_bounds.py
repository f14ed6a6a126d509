"""Bounds and bound codes of the AI-REML iterations (reml/bounds.py), on made-up parameter tables."""
import numpy as np
import pytest

from sparsereml.reml.bounds import Bounds, initial_codes, update_codes
from sparsereml.reml.parameters import ParameterTable

INF = np.inf


def table(kinds, lower, upper, scale_of=None):
    n = len(kinds)
    return ParameterTable([f"p{i}" for i in range(n)], [slice(0, n)], slice(n, n), np.array(lower, float),
                          np.array(upper, float), list(kinds), scale_of)


@pytest.fixture
def mixed():
    """One parameter of every kind: a variance, a correlation, a covariance, a loading, a
    Cholesky diagonal, and a large fixed variance that must not set the scale."""
    pt = table(["var", "cor", "cov", "load", "chol", "var"], [0, -1, -INF, -INF, 0, 0], [INF, 1, INF, INF, INF, INF])
    theta = np.array([4.0, 0.3, 0.5, 0.2, 0.01, 1e6])
    fixed = np.array([False] * 5 + [True])
    return pt, theta, fixed


def test_margins_per_kind_follow_the_free_variances_scale(mixed):
    pt, theta, fixed = mixed
    b = Bounds.from_table(pt, theta, fixed)
    scale = 4.0  # the fixed 1e6 is not a free variance
    chol = 1e-3 * max(0.01, np.sqrt(scale))
    np.testing.assert_array_equal(b.eps, [1e-8 * scale, 1e-6, 0.0, 0.0, chol, 1e-8 * scale])
    np.testing.assert_array_equal(b.floor, [1e-8 * scale, 1e-4, 1e-4 * scale, 1e-4, chol, 1e-8 * scale])
    np.testing.assert_array_equal(b.is_var, [True, False, False, False, False, True])
    np.testing.assert_array_equal(b.is_cor, [False, True, False, False, False, False])
    np.testing.assert_array_equal(b.lower, pt.lower)
    np.testing.assert_array_equal(b.upper, pt.upper)


def test_a_cholesky_diagonal_is_judged_against_its_own_start():
    pt = table(["var", "chol", "chol"], [0, 0, 0], [INF, INF, INF])
    b = Bounds.from_table(pt, np.array([1.0, 50.0, 1e-4]), np.zeros(3, bool))
    np.testing.assert_allclose(b.eps[1:], [1e-3 * 50.0, 1e-3 * 1.0])


def test_without_free_variances_the_scale_is_one():
    pt = table(["cor", "var"], [-1, 0], [1, INF])
    b = Bounds.from_table(pt, np.array([0.5, 300.0]), np.array([False, True]))
    assert b.eps[1] == 1e-8 and b.floor[1] == 1e-8


def test_relative_steps_use_the_floor_near_zero(mixed):
    pt, theta, fixed = mixed
    b = Bounds.from_table(pt, theta, fixed)
    step = np.array([0.04, 0.003, 1e-6, 0.0, 0.0, 5.0])
    free = np.array([True, True, True, False, False, False])
    theta = theta.copy()
    theta[2] = 1e-9  # a covariance near zero: judged against 1e-4 * scale
    np.testing.assert_allclose(b.relative(step, theta, free), [0.01, 0.01, 1e-6 / 4e-4])


def test_clip_moves_a_correlation_halfway_to_its_bound():
    pt = table(["var", "cor"], [0, -1], [INF, 1])
    b = Bounds.from_table(pt, np.array([2.0, 0.6]), np.zeros(2, bool))
    trial, hit = b.clip(np.array([2.5, 1.4]), np.array([2.0, 0.6]), np.ones(2, bool))
    np.testing.assert_allclose(trial, [2.5, 0.8])
    assert not hit.any()
    trial, hit = b.clip(np.array([2.5, -3.0]), np.array([2.0, 0.6]), np.ones(2, bool))
    np.testing.assert_allclose(trial, [2.5, -0.2])


def test_clip_drops_a_large_variance_to_a_hundredth_and_holds_a_small_one():
    pt = table(["var", "var"], [0, 0], [INF, INF])
    theta = np.array([10.0, 1e-7])
    b = Bounds.from_table(pt, theta, np.zeros(2, bool))
    trial, hit = b.clip(np.array([-5.0, -1.0]), theta, np.ones(2, bool))
    # 10 is far above the bound: a hundredth of it; 1e-7 is within 1e4 eps: held at lower + eps
    np.testing.assert_allclose(trial, [0.1, 1e-7])
    np.testing.assert_array_equal(hit, [False, True])


def test_clip_holds_at_the_upper_bound_and_leaves_other_parameters_alone():
    pt = table(["var", "cor", "var"], [0, -1, 0], [2.0, 1, INF])  # a made-up finite upper bound
    theta = np.array([1.0, 0.2, 3.0])
    b = Bounds.from_table(pt, theta, np.zeros(3, bool))
    trial_in = np.array([2.5, 0.3, -4.0])
    free = np.array([True, True, False])
    trial, hit = b.clip(trial_in, theta, free)
    np.testing.assert_allclose(trial, [2.0 - b.eps[0], 0.3, -4.0])  # not free: not moved
    np.testing.assert_array_equal(hit, [True, False, False])
    np.testing.assert_array_equal(trial_in, [2.5, 0.3, -4.0])  # the input is left as it was


def test_initial_codes():
    assert list(initial_codes(np.array([False, True, False]))) == ["P", "F", "P"]


def _bounds(pt, theta):
    return Bounds.from_table(pt, theta, np.zeros(theta.size, bool))


def test_a_held_variance_is_released_when_its_score_points_inside():
    pt = table(["var", "var", "cor", "var"], [0, 0, -1, 0], [INF, INF, 1, INF])
    theta = np.array([1.0, 1e-8, 1 - 1e-7, 2.0])
    b = _bounds(pt, theta)
    codes = np.array(["P", "B", "B", "F"], dtype=object)
    held = np.zeros(4, bool)
    # at zero a positive score points inside; at +1 a negative one does
    out, out_held, free = update_codes(codes, held, theta, np.array([0.0, 3.0, -1.0, 9.0]), b, None)
    assert list(out) == ["P", "P", "P", "F"]
    np.testing.assert_array_equal(free, [True, True, True, False])
    assert not out_held.any()
    out, _, free = update_codes(codes, held, theta, np.array([0.0, -3.0, 1.0, 9.0]), b, None)
    assert list(out) == ["P", "B", "B", "F"]
    assert list(codes) == ["P", "B", "B", "F"]  # inputs unchanged


def test_a_residual_groups_correlations_are_held_with_its_variance():
    # parameters: a random variance, then a residual group: its variance scales two correlations
    pt = table(["var", "var", "cor", "cor"], [0, 0, -1, -1], [INF, INF, 1, 1], scale_of=np.array([-1, -1, 1, 1]))
    theta = np.array([1.0, 1e-9, 0.4, 0.1])
    b = _bounds(pt, theta)
    codes = np.array(["P", "B", "P", "P"], dtype=object)
    out, held, free = update_codes(codes, np.zeros(4, bool), theta, np.array([0.0, -1.0, 5.0, 5.0]), b, pt.scale_of)
    assert list(out) == ["P", "B", "B", "B"]
    np.testing.assert_array_equal(held, [False, False, True, True])
    # while held, a correlation's own score does not release it ...
    out2, held2, _ = update_codes(out, held, theta, np.array([0.0, -1.0, -5.0, 5.0]), b, pt.scale_of)
    assert list(out2) == ["P", "B", "B", "B"]
    # ... its variance's release does
    out3, held3, free3 = update_codes(out, held, theta, np.array([0.0, 2.0, -5.0, 5.0]), b, pt.scale_of)
    assert list(out3) == ["P", "P", "P", "P"] and not held3.any() and free3.all()
