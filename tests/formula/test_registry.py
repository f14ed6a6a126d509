"""The registries (sparsereml.registry): every registered covariance model is a formula function
with its own arguments, residual dimensions are found by name, and a name is registered once."""
import pytest

from sparsereml import FormulaError, registry
from sparsereml.formula import model_spec
from sparsereml.structures.covariance import CovModel


def test_the_built_in_models_are_registered():
    assert {"diag", "corv", "corh", "corgh", "us", "fa", "ar1", "exp"} <= set(registry.cov_model_names())
    assert all(issubclass(registry.cov_model(n), CovModel) for n in registry.cov_model_names())


@pytest.mark.parametrize("name", registry.cov_model_names())
def test_every_model_is_a_formula_function_with_its_arity(name):
    model = registry.cov_model(name)
    args = "".join(", 2" for _ in model.formula_args)
    spec = model_spec("y ~ 1", f"~ {name}(F{args}):G")
    assert spec.random[0].struct.model == name and spec.random[0].struct.args == (2,) * len(model.formula_args)
    with pytest.raises(FormulaError, match=rf"{name}\(\) (takes only a factor name|needs the number)"):
        model_spec("y ~ 1", f"~ {name}(F{args}, 2, 3):G")


def test_residual_dimensions_by_name():
    assert registry.residual_dim("id").independent and registry.residual_dim("ar1").coordinates
    us = registry.residual_dim("us")
    assert us is registry.residual_dim("exp") and not us.independent and not us.coordinates
    spec = model_spec("y ~ 1", None, "~ Site:exp(Pos)")
    assert [(d.model, d.column) for d in spec.residual.sections[0].dims] == [("id", "Site"), ("exp", "Pos")]


def test_unknown_function_lists_the_registered_ones():
    with pytest.raises(FormulaError, match=r"unknown function foo\(\).*known here: C\(\), lin\(\), at\(\), dsum\(\)") as err:
        model_spec("y ~ 1", "~ foo(F):G")
    assert all(f" {name}()" in str(err.value) for name in registry.cov_model_names() + ("vm", "id", "idv"))


def test_a_name_is_registered_once():
    class Other(CovModel):
        name = "us"

    with pytest.raises(ValueError, match="registered twice"):
        registry.register_cov_model(Other)
    assert registry.cov_model("us").__name__ == "US"
