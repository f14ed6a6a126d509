"""The stopping rule of the AI-REML iterations (reml/stopping.py), on made-up numbers."""
import numpy as np
import pytest

from sparsereml.reml.stopping import CONTINUE, CONVERGE, LAST_STEP, NO_STEP, STALLED, StopRule

RULE = StopRule(tol=1e-6, tol_loglik=1e-6, window=3)


def assess(rel, gain=1.0, loglik=-100.0, logliks=(), prev_rel=None, rule=RULE):
    """An assessment whose step and score give the expected gain ``gain`` (score' step / 2)."""
    rel = np.asarray(rel, float)
    step, score = np.array([1.0]), np.array([2.0 * gain])
    return rule.assess(rel, step, score, loglik, list(logliks) + [loglik], prev_rel)


def test_small_and_flat_converges():
    a = assess([1e-7, 5e-7], gain=1e-8)
    assert a.small and a.flat and a.converged and a.action == CONVERGE
    assert a.rel_max == 5e-7 and a.gain == 1e-8
    assert "steps below 1e-06" in a.message(CONVERGE) and "1e-08" in a.message(CONVERGE)


@pytest.mark.parametrize("rel, gain", [([1e-7, 2e-6], 1e-8), ([1e-7], 1e-5)])
def test_small_or_flat_alone_does_not(rel, gain):
    a = assess(rel, gain=gain)
    assert not a.converged and a.action == CONTINUE


def test_flatness_allows_for_the_rounding_of_a_large_loglik():
    assert assess([1e-7], gain=1e-3, loglik=-1e10).flat  # 1e-12 |logL| = 1e-2
    assert not assess([1e-7], gain=1e-3, loglik=-1e5).flat


def test_steps_shrinking_fast_take_one_last_step():
    # rho = 1e-4 / 1e-3 = 0.1 < 1/2, and the next step 0.1 * 1e-4 = 1e-5 ... is not below tol
    assert assess([1e-4], gain=1e-8, prev_rel=1e-3).action == CONTINUE
    # rho = 0.1, next 0.1 * 5e-6 = 5e-7 < tol: take this step and stop
    a = assess([5e-6], gain=1e-8, prev_rel=5e-5)
    assert a.rho == pytest.approx(0.1) and a.last_step and a.action == LAST_STEP
    assert "shrank by 0.1" in a.message(LAST_STEP)
    # shrinking slower than 1/2: no prediction
    assert assess([5e-6], gain=1e-8, prev_rel=8e-6).action == CONTINUE
    # not flat: no prediction either
    assert assess([5e-6], gain=1e-3, prev_rel=5e-5).action == CONTINUE


@pytest.mark.parametrize("prev_rel", [None, 0.0])
def test_without_a_previous_full_step_the_rate_is_unknown(prev_rel):
    a = assess([5e-6], gain=1e-8, prev_rel=prev_rel)
    assert a.rho == np.inf and not a.last_step
    assert a.expected_next() == 5e-6  # no contraction known: the step itself


def test_a_flat_likelihood_that_stopped_rising_stalls():
    flat_history = [-100.0 - 1e-7, -100.0 - 5e-8, -100.0 - 2e-8]
    a = assess([1e-3], gain=1e-8, logliks=flat_history)  # 4 iterates, window 3
    assert a.stalled and a.action == STALLED
    assert "rose less than 1e-06 over 3 iterations" in a.message(STALLED)
    # too few iterates to judge
    assert assess([1e-3], gain=1e-8, logliks=flat_history[1:]).action == CONTINUE
    # still rising by more than the tolerance over the window
    assert assess([1e-3], gain=1e-8, logliks=[-100.1, -100.0, -100.0]).action == CONTINUE
    # not flat: logL may lag its predictions
    assert assess([1e-3], gain=1e-2, logliks=flat_history).action == CONTINUE


def test_convergence_is_judged_before_the_last_step_and_the_stall():
    a = assess([1e-7], gain=1e-8, logliks=[-100.0] * 5, prev_rel=1e-5)
    assert a.converged and a.last_step and a.stalled
    assert a.action == CONVERGE


def test_no_free_parameter_converges():
    a = RULE.assess(np.zeros(0), np.zeros(0), np.zeros(0), -10.0, [-10.0], 0.5)
    assert a.rel_max == 0.0 and a.gain == 0.0 and a.action == CONVERGE
    assert a.rho == np.inf and a.contraction_base(True) is None


def test_deciding_iterates_need_exact_scores():
    assert not assess([1e-2], gain=1.0).deciding(rough_above=1e-4)
    assert assess([1e-5], gain=1.0).deciding(rough_above=1e-4)  # a step rounding could move
    assert assess([1e-2], gain=1e-8, logliks=[-100.0] * 3).deciding(rough_above=1e-4)  # would stall
    assert assess([5e-6], gain=1e-8, prev_rel=5e-5).deciding(rough_above=1e-6)  # would take a last step
    assert assess([1e-7], gain=1e-8).deciding(rough_above=1e-8)  # would converge


def test_the_next_step_is_predicted_from_the_square_of_the_rate():
    assert assess([1e-2], prev_rel=1e-1).expected_next() == pytest.approx(1e-2 * 0.1 ** 2)
    assert assess([1e-2], prev_rel=5e-3).expected_next() == 1e-2  # growing steps: rate capped at 1


def test_the_rate_is_read_only_from_full_steps():
    a = assess([1e-3])
    assert a.contraction_base(True) == 1e-3
    assert a.contraction_base(False) is None


def test_no_step_worked_at_the_rounding_level():
    assert assess([1e-4], gain=1e-4).at_rounding
    assert "no step raised logL beyond rounding" in assess([1e-4], gain=1e-4).message(NO_STEP)
    assert not assess([1e-2], gain=1e-4).at_rounding
    assert not assess([1e-4], gain=1e-2).at_rounding
    with pytest.raises(ValueError):
        assess([1e-4]).message("unknown")
