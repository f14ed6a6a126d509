"""What SparseLDL absorbs (linalg/analysis.py, choose_absorption): a crossed term of which the
independent set would take only a few levels is kept whole when the cost model says so, with
the same numbers as the factor that absorbs them."""
import numpy as np
import pytest

from sparsereml.linalg import SparseLDL, available_backends
from sparsereml.linalg.factor import STORAGE


def _overlay_problem(backend):
    from sparsereml.datasets import trial_network
    from sparsereml.design import build_design
    from sparsereml.formula import model_spec
    from sparsereml.reml.problem import REMLProblem

    # GCA overlay, SCA and clones: after the clones and most crosses are absorbed, a few mothers
    # planted in few blocks are of low degree too; absorbing them ties blocks of different trials
    df, _ = trial_network(seed=31, trials=8, trees=30000, mothers=200, families="all")
    random = "~ Trial:Block + Mother + and(Father) + sca(Mother, Father) + at(Type, clone):Clone"
    design = build_design(model_spec("dbh ~ Trial", random, None), df)
    prob = REMLProblem(design, backend=backend)
    groups = np.full(prob.mme.N, len(prob.structures), dtype=np.int64)
    for k, (off, st) in enumerate(zip(design.offsets, prob.structures)):
        groups[off: off + st.size] = k
    return prob, groups


@pytest.mark.parametrize("backend", available_backends())
def test_a_crossed_term_is_kept_whole_with_the_same_numbers(backend, monkeypatch):
    prob, groups = _overlay_problem(backend)
    mother = prob.design.offsets[1] + np.arange(prob.structures[1].size)
    theta = np.array([110.0, 35.0, 50.0, 40.0, 970.0])
    th_terms, th_res = prob.split(theta)
    C = prob.mme.assemble(th_terms, prob.residual_coef(th_res))[0]
    kept = SparseLDL(prob.mme.lower, backend, groups=groups)
    monkeypatch.setattr("sparsereml.linalg.analysis.MINORITY", 0.0)  # absorb the whole independent set
    plain = SparseLDL(prob.mme.lower, backend, groups=groups)
    for f in (kept, plain):
        f.factorize(C)
    absorbed = STORAGE.index("absorbed")
    assert np.any(plain.storage()[mother] == absorbed), "the case no longer has low-degree mothers"
    assert not np.any(kept.storage()[mother] == absorbed)
    assert kept.n_absorbed < plain.n_absorbed and kept.nnz_factor < plain.nnz_factor
    assert kept.logdet() == pytest.approx(plain.logdet(), rel=1e-12)
    np.testing.assert_allclose(kept.selected_inverse(), plain.selected_inverse(), rtol=1e-9, atol=1e-12)
    b = np.random.default_rng(0).standard_normal(prob.mme.N)
    np.testing.assert_allclose(kept.solve(b), plain.solve(b), rtol=1e-9, atol=1e-12)


def test_a_term_mostly_absorbed_stays_absorbed():
    # m2's cells (Trial:Mother) are all absorbed but two: nothing is weighed again, and the two
    # mothers the independent set takes stay absorbed (too little fill for a second analysis)
    from sparsereml.datasets import trial_network
    from sparsereml.design import build_design
    from sparsereml.formula import model_spec
    from sparsereml.linalg.absorb import choose_absorbed
    from sparsereml.reml.problem import REMLProblem

    df, _ = trial_network(seed=5, trials=8, trees=14000, mothers=150)
    design = build_design(model_spec("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", None), df)
    prob = REMLProblem(design)
    assert np.array_equal(prob.factor._plan.absorbed, choose_absorbed(prob.mme.lower))
