"""Correlated random terms (us, fa, corh, ...): the MME-space logL, scores and AI against the
dense textbook formulas built from each structure's G^-1 (tests/reml/dense_reml.py)."""
import pytest

from sparsereml.design import build_design
from sparsereml.formula import model_spec

from ..reml.dense_reml import assert_matches_dense
from .met_data import met_data


@pytest.fixture(scope="module")
def small():
    df, _ = met_data(seed=3, n_mothers=14, trees_per_trial=40, blocks=2)
    return df[df.Trial.isin(["T1", "T2", "T3"])]


@pytest.mark.parametrize("term", ["us(Trial)", "corh(Trial)", "corgh(Trial)", "corv(Trial)", "fa(Trial, 1)",
                                  "diag(Trial)", "ar1(Trial)"])
def test_matches_dense_formulas(term, small, backend):
    design = build_design(model_spec("y ~ 0 + Trial", f"~ Trial:Block + {term}:Mother"), small)
    assert_matches_dense(design, backend, (0.9, 1.1))


def test_unobserved_combinations_get_effects(small):
    design = build_design(model_spec("y ~ 0 + Trial", "~ us(Trial):Mother"), small)
    rb = design.random[0]
    assert rb.size == 3 * rb.units  # every mother in every trial, seen or not
    assert rb.levels[:3] == ("T1:M001", "T2:M001", "T3:M001")
