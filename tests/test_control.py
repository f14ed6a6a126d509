"""sparsereml.Control: defaults, validation, environment defaults, serialisation, and that its
iteration options change the path of a fit but not the optimum it reaches."""
import json
import re
from dataclasses import fields

import numpy as np
import pytest

import sparsereml as sr
from sparsereml.control import STEP_CONTROL, resolve_control
from sparsereml.errors import ModelError

ENV = ("SPARSEREML_BACKEND", "SPARSEREML_STAR", "SPARSEREML_THREADS", "SPARSEREML_DENSE_THREADS")


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(clean_env):
    c = sr.Control()
    assert (c.max_iter, c.tol, c.tol_loglik, c.stall_window) == (50, 1e-6, 1e-6, 5)
    assert c.step_control == STEP_CONTROL and c.step_control[0] == (0.0, 1.0)
    assert c.single_precision is True and c.rough_above == 1e-4
    assert c.start_method == "moments"
    assert c.backend is None and c.star is True and c.threads is None and c.dense_threads is None


@pytest.mark.parametrize("field, value, message", [
    ("max_iter", 0, "max_iter must be a whole number >= 1, got 0"),
    ("max_iter", 2.5, "max_iter must be a whole number >= 1, got 2.5"),
    ("max_iter", True, "max_iter must be a whole number >= 1, got True"),
    ("tol", 0.0, "tol must be a positive number, got 0.0"),
    ("tol", float("nan"), "tol must be a positive number, got nan"),
    ("tol_loglik", -1e-6, "tol_loglik must be a positive number, got -1e-06"),
    ("tol_loglik", "1e-6", "tol_loglik must be a positive number, got '1e-6'"),
    ("stall_window", 0, "stall_window must be a whole number >= 1, got 0"),
    ("step_control", "ab", "step_control must be a sequence of (damping, step length) pairs"),
    ("step_control", ((0.0, 1.0, 2.0),), "step_control must be a sequence of (damping, step length) pairs"),
    ("step_control", (), "step_control needs at least one (damping >= 0, step length > 0) pair"),
    ("step_control", ((-1.0, 1.0),), "step_control needs at least one"),
    ("step_control", ((0.0, 0.0),), "step_control needs at least one"),
    ("step_control", ((0.0, float("inf")),), "step_control needs at least one"),
    ("single_precision", 1, "single_precision must be True or False, got 1"),
    ("rough_above", 0, "rough_above must be a positive number, got 0"),
    ("start_method", "median", "unknown start_method 'median'; use one of moments, equal"),
    ("backend", "mkl", "unknown backend 'mkl'; use 'cholmod', 'qdldl' or 'auto'"),
    ("star", 1, "star must be True or False, got 1"),
    ("star", "no", "star must be True or False, got 'no'"),
    ("threads", 0, "threads must be a whole number >= 1, got 0"),
    ("dense_threads", 1.5, "dense_threads must be a whole number >= 1, got 1.5"),
])
def test_each_field_is_checked(clean_env, field, value, message):
    with pytest.raises(ModelError, match=re.escape(message)):
        sr.Control(**{field: value})


def test_good_values_are_kept_and_normalised(clean_env):
    c = sr.Control(max_iter=np.int64(7), step_control=[[0, 1], (1, 0.5)], start_method="equal", backend="qdldl",
                   star=False, threads=np.int32(2), dense_threads=1)
    assert c.max_iter == 7 and c.threads == 2 and c.dense_threads == 1
    assert c.step_control == ((0.0, 1.0), (1.0, 0.5))
    assert c.start_method == "equal" and c.backend == "qdldl" and c.star is False


@pytest.mark.parametrize("name, value, field, expected", [
    ("SPARSEREML_STAR", "0", "star", False),
    ("SPARSEREML_STAR", "1", "star", True),
    ("SPARSEREML_THREADS", "3", "threads", 3),
    ("SPARSEREML_DENSE_THREADS", " 2 ", "dense_threads", 2),
    ("SPARSEREML_BACKEND", "qdldl", "backend", "qdldl"),
    ("SPARSEREML_BACKEND", "", "backend", None),
])
def test_environment_supplies_defaults(clean_env, name, value, field, expected):
    clean_env.setenv(name, value)
    assert getattr(sr.Control(), field) == expected


@pytest.mark.parametrize("name, value", [("SPARSEREML_STAR", "yes"), ("SPARSEREML_THREADS", "0"),
                                         ("SPARSEREML_THREADS", "many"), ("SPARSEREML_DENSE_THREADS", "-2")])
def test_a_bad_environment_value_is_refused_by_name(clean_env, name, value):
    clean_env.setenv(name, value)
    with pytest.raises(ModelError, match=name):
        sr.Control()


def test_a_bad_backend_in_the_environment_is_refused_by_name(clean_env):
    clean_env.setenv("SPARSEREML_BACKEND", "mkl")
    with pytest.raises(ModelError, match="SPARSEREML_BACKEND must be cholmod, qdldl or auto, got 'mkl'"):
        sr.Control()


def test_a_field_given_does_not_read_the_environment(clean_env):
    clean_env.setenv("SPARSEREML_STAR", "bad")
    clean_env.setenv("SPARSEREML_THREADS", "bad")
    c = sr.Control(star=False, threads=4, dense_threads=None)
    assert c.star is False and c.threads == 4


def test_to_dict_and_from_dict_round_trip(clean_env):
    c = sr.Control(max_iter=80, tol=1e-8, tol_loglik=1e-7, stall_window=3, step_control=((0.0, 1.0), (10.0, 0.5)),
                   single_precision=False, rough_above=1e-3, start_method="equal", backend="qdldl", star=False,
                   threads=2, dense_threads=1)
    d = json.loads(json.dumps(c.to_dict()))  # plain values, as fit.json holds them
    assert d["step_control"] == [[0.0, 1.0], [10.0, 0.5]]
    assert sr.Control.from_dict(d) == c
    assert sr.Control.from_dict({"max_iter": 9}) == sr.Control(max_iter=9)  # missing keys default


def test_from_dict_and_updated_refuse_unknown_options(clean_env):
    with pytest.raises(ModelError, match="Control has no option 'maxiter'"):
        sr.Control.from_dict({"maxiter": 3})
    with pytest.raises(ModelError, match="read from a dict of options, got list"):
        sr.Control.from_dict([("max_iter", 3)])
    with pytest.raises(ModelError, match="Control has no option 'maxiter'"):
        sr.Control().updated(maxiter=3)
    with pytest.raises(ModelError, match="max_iter must be a whole number"):
        sr.Control.from_dict({"max_iter": -1})


def test_updated_keeps_fields_given_as_none(clean_env):
    c = sr.Control(max_iter=20, tol=1e-7)
    u = c.updated(max_iter=None, tol=1e-9)
    assert u.max_iter == 20 and u.tol == 1e-9 and c.tol == 1e-7


def test_resolve_control(clean_env):
    assert resolve_control(None) == sr.Control()
    assert resolve_control(sr.Control(max_iter=5), max_iter=None, tol=1e-8) == sr.Control(max_iter=5, tol=1e-8)
    with pytest.raises(ModelError, match="control must be a sparsereml.Control"):
        resolve_control({"max_iter": 5})


# -- fits -----------------------------------------------------------------------------------
MODEL = ("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units")


@pytest.fixture(scope="module")
def data():
    return sr.datasets.trial_network(seed=5, trials=4, trees=3000, mothers=60)[0]


@pytest.fixture(scope="module")
def default_fit(data):
    m = sr.fit(*MODEL, data=data)
    assert m.converged
    return m


def _fit(data, **options):
    m = sr.fit(*MODEL, data=data, control=sr.Control(**options))
    assert m.converged, m.message
    return m


@pytest.mark.parametrize("steps", [((0.0, 1.0), (1.0, 0.5)), ((1.0, 0.5),), ((0.0, 0.25),)])
def test_another_step_control_reaches_the_same_optimum(data, default_fit, steps):
    m = _fit(data, step_control=steps)
    assert m.control.step_control == steps
    labels = set(m.iterations["step"]) - {""}
    allowed = {f"{k * lam:g}" + (f" LM {d:g}" if d else "") for d, lam in steps for k in (1, 2, 4, 8)}
    assert labels <= allowed  # every step taken came from these pairs
    assert abs(m.loglik - default_fit.loglik) < 1e-6
    np.testing.assert_allclose(m.varcomp["component"], default_fit.varcomp["component"], rtol=1e-3)


@pytest.mark.parametrize("window, tol", [(1, 1e-6), (1, 1e-9), (12, 1e-6)])
def test_another_stall_window_reaches_the_same_optimum(data, default_fit, window, tol):
    m = _fit(data, stall_window=window, tol=tol)
    assert abs(m.loglik - default_fit.loglik) < 1e-6
    if "converged in logL" in m.message:
        assert f"over {window} iterations" in m.message


def test_a_tight_tolerance_with_a_short_window_stops_by_the_window(data, default_fit):
    m = _fit(data, stall_window=1, tol=1e-9)
    assert "converged in logL" in m.message and "over 1 iterations" in m.message
    assert m.n_iterations < _fit(data, stall_window=12, tol=1e-9).n_iterations


@pytest.fixture
def inverses(monkeypatch):
    """Let the small network's dense block be inverted in single precision (as on a large network), and
    record of every selected inverse whether it was asked for in single precision and got it."""
    from sparsereml.linalg import factor

    monkeypatch.setattr(factor, "SINGLE_DENSE_MIN", 16)
    calls = []
    selected = factor.SparseLDL.selected_inverse

    def recorded(self, single=False):
        out = selected(self, single)
        calls.append(self.single_used)
        return out

    monkeypatch.setattr(factor.SparseLDL, "selected_inverse", recorded)
    return calls


def test_double_precision_only_gives_the_same_estimates(data, inverses):
    rough = _fit(data)
    assert any(inverses)  # some scores came from a single-precision dense block
    inverses.clear()
    exact = _fit(data, single_precision=False)
    assert inverses and not any(inverses)
    np.testing.assert_allclose(exact.varcomp["component"], rough.varcomp["component"], rtol=1e-6)
    np.testing.assert_allclose(exact.varcomp["std.error"], rough.varcomp["std.error"], rtol=1e-6)
    assert abs(exact.loglik - rough.loglik) < 1e-8


def test_str_lists_every_option_a_line(clean_env):
    text = str(sr.Control(max_iter=7, step_control=((0.0, 1.0), (1.0, 0.5))))
    lines = text.splitlines()
    assert lines[0] == "Control:" and len(lines) == 1 + len(fields(sr.Control))
    assert "max_iter" in lines[1] and lines[1].split()[-1] == "7"
    assert any(line.split()[0] == "step_control" and line.endswith("(0, 1), (1, 0.5)") for line in lines)


@pytest.mark.parametrize("value", [0.0, -1e-8, 0.2, "small"])
def test_boundaries_must_be_small_positive_numbers(clean_env, value):
    for name in ("var_boundary", "cor_boundary"):
        with pytest.raises(ModelError, match=name):
            sr.Control(**{name: value})


def test_a_variance_at_zero_is_held_at_var_boundary_times_the_scale(clean_env):
    """A random term of pure noise (lots drawn at random) has REML variance zero: it is held
    (code B) at var_boundary times the largest start variance."""
    df, _ = sr.datasets.trial_network(seed=11, trials=4, trees=3000, mothers=60)
    df = df.assign(Lot=np.random.default_rng(2).integers(0, 6, len(df)).astype(str))
    for boundary in (1e-8, 1e-4):
        m = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother + Lot", data=df,
                   control=sr.Control(var_boundary=boundary))
        scale = max(m.iterations.iloc[0][lab] for lab in m.labels)
        assert m.converged and m.varcomp.loc["Lot", "bound"] == "B"
        assert m.varcomp.loc["Lot", "component"] == pytest.approx(boundary * scale, rel=1e-9)
