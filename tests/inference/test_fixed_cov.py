"""Phi = var(b-hat), its derivatives P_i and the Kenward-Roger products Q_ij from the mixed-model
equations, against the textbook dense formulas with V formed explicitly (tests/reml/dense_reml.py):
Phi = (X'V^-1X)^-1, P_i = -X'V^-1 V_i V^-1 X, Q_ij = X'V^-1 V_i V^-1 V_j V^-1 X."""
import numpy as np
import pytest

import sparsereml as sr
from sparsereml.inference import FixedEffectsCovariance

from ..reml.dense_reml import dense_V
from ..structures.test_residual_mme import field

CASES = {
    "plain": ("y ~ trial + block", "~ gen + trial:block", None, True),
    "per trial": ("y ~ trial", "~ gen + at(trial):block", "~ at(trial):units", True),
    "us across trials": ("y ~ trial", "~ us(trial):gen", None, False),
    "ar1 x ar1": ("y ~ trial", "~ gen", "~ at(trial):ar1(row):ar1(col)", False),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_dense_formulas(case, weighted, backend):
    fixed, random, residual, linear = CASES[case]
    df = field(trials=("A", "B", "C")).dropna()
    problem = sr.REMLProblem(sr.build_design(sr.model_spec(fixed, random, residual), df), backend=backend)
    w = np.random.default_rng(3).uniform(0.5, 2.0, problem.n) if weighted else None
    if weighted:
        problem.reweight(w)
    theta = sr.start_values(problem)[0]
    theta = np.where(np.array(problem.params.kinds) == "cor", 0.3, theta) * np.linspace(0.9, 1.1, theta.size)
    ev = problem.evaluate(theta)
    fc = FixedEffectsCovariance(problem, ev)
    V, Vdots, X = dense_V(problem, theta, w)
    Vi = np.linalg.inv(V)
    phi = np.linalg.inv(X.T @ Vi @ X)
    np.testing.assert_allclose(fc.phi, phi, rtol=1e-8, atol=1e-12 * np.abs(phi).max())
    for Pi, Vd in zip(fc.P, Vdots, strict=True):
        ref = -X.T @ Vi @ Vd @ Vi @ X
        np.testing.assert_allclose(Pi, ref, rtol=1e-7, atol=1e-9 * np.abs(ref).max())
    if linear:
        Q = fc.Q()
        for i, Vd in enumerate(Vdots):
            for j, Ve in enumerate(Vdots):
                ref = X.T @ Vi @ Vd @ Vi @ Ve @ Vi @ X
                np.testing.assert_allclose(Q[i, j], ref, rtol=1e-7, atol=1e-9 * np.abs(ref).max())
    else:
        if case == "ar1 x ar1":
            with pytest.raises(sr.ModelError, match="Kenward-Roger needs independent residuals"):
                fc.Q()


def test_arrays_beyond_the_memory_limit_are_refused_with_the_alternative(monkeypatch):
    from sparsereml.inference import fixed_cov

    df = field(trials=("A", "B", "C")).dropna()
    m = sr.fit("y ~ trial + block", "~ gen + trial:block", data=df)
    monkeypatch.setattr(fixed_cov, "MAX_ENTRIES", 200)  # C^-1 X: 22 x 5 fits, Q: 3 x 3 x 5 x 5 does not
    assert m.wald("satterthwaite").loc["trial", "Df"] == 2
    with pytest.raises(sr.ModelError, match="use ddf='satterthwaite'"):
        m.wald("kr")
    monkeypatch.setattr(fixed_cov, "MAX_ENTRIES", 10)
    m2 = sr.fit("y ~ trial + block", "~ gen + trial:block", data=df)
    with pytest.raises(sr.ModelError, match="fit the widest fixed terms as random"):
        m2.wald("none")
