"""Formula grammar and term expansion follow R's rules (Chambers & Hastie 1992, ch. 2; lme4's
``(1|a/b)`` = ``(1|a) + (1|a:b)``) and ASReml's at() and dsum()."""
import pytest

from sparsereml.errors import FormulaError
from sparsereml.formula import model_spec, parse


def labels(spec):
    return [t.label for t in spec.random]


def fixed_labels(spec):
    return [":".join(v.label for v in t) for t in spec.fixed.terms]


def test_m2_family_of_models():
    s = model_spec("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother")
    assert s.fixed.response == "dbh" and s.fixed.intercept and fixed_labels(s) == ["Trial"]
    assert labels(s) == ["Trial:Block", "Mother", "Trial:Mother"] and s.residual.label == "units"
    s = model_spec("dbh ~ Trial", "~ at(Trial):Block + Mother + Trial:Mother", "~ at(Trial):units")
    assert labels(s) == ["at(Trial):Block", "Mother", "Trial:Mother"]
    assert s.residual.label == "at(Trial):units"
    assert model_spec("y ~ 1", None, "dsum(~ units | site)").residual.label == "at(site):units"


def test_lme4_syntax_in_one_string_equals_the_separate_formulas():
    a = model_spec("dbh ~ Trial + (1|Trial:Block) + (1|Mother) + (1|Trial:Mother)")
    b = model_spec("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother")
    assert a.fixed == b.fixed and a.random == b.random
    assert labels(model_spec("strength ~ 1 + (1|batch/cask)")) == ["batch", "batch:cask"]


def test_r_expansion_rules():
    assert fixed_labels(model_spec("y ~ a*b")) == ["a", "b", "a:b"]
    assert fixed_labels(model_spec("y ~ a/b")) == ["a", "a:b"]
    assert fixed_labels(model_spec("y ~ (a+b+c)^2")) == ["a", "b", "c", "a:b", "a:c", "b:c"]
    assert fixed_labels(model_spec("y ~ a:b + a")) == ["a", "a:b"]  # R orders terms by degree
    assert not model_spec("y ~ x - 1").fixed.intercept
    assert not model_spec("y ~ 0 + x").fixed.intercept
    assert not model_spec("y ~ -1 + x").fixed.intercept
    assert fixed_labels(model_spec("y ~ C(x) + `odd name`")) == ["C(x)", "`odd name`"]
    assert labels(model_spec("y ~ 1", "~ (a + b)/c")) == ["a", "b", "a:b:c"]


def test_at_with_named_levels():
    s = model_spec("y ~ 1", "~ at(site, 'S1', 3):gen")
    assert s.random[0].at.levels == ("S1", 3)
    assert s.random[0].label == "at(site, 'S1', 3):gen"
    assert s.random[0].level_label("S3") == "at(site, S3):gen"


@pytest.mark.parametrize("fixed,random,residual,message", [
    ("y ~ a +", None, None, "end of the formula"),
    ("y ~ a + a", None, None, "appears more than once"),
    ("y ~ x", "~ g + g", None, "appears more than once"),
    ("y ~ x", "~ Mother + Mother:Trial + Trial:Mother", None, "'Trial:Mother' appears more than once"),
    ("y ~ x + (1|g)", "~ g", None, "'g' is given twice"),
    ("y ~ x", "~ x", None, "both a fixed and a random term"),
    ("y ~ x + (x|g)", None, None, "random slope"),
    ("y ~ foo(x)", None, None, "unknown function foo()"),
    ("~ x", None, None, "needs a response"),
    ("y ~ x", "~ units:g", None, "'units' stands alone"),
    ("y ~ x", "~ ar1(row, 2):col", None, "takes only a factor name"),
    ("y ~ x", None, "~ ar1(row):id(row)", "appears twice"),
    ("y ~ x", None, "~ at(s, 'a'):ar1(r) + at(t, 'b'):ar1(r)", "of one factor"),
    ("y ~ x", None, "~ at(s, 'a'):ar1(r) + ar1(r)", "of one factor"),
    ("y ~ x", None, "~ units:us(trait)", "multivariate"),
    ("y ~ x", None, "dsum(~ units | s, levels = 1)", "one '~ structure | F' argument"),
    ("y ~ x", None, "~ at(s, 'a'):units", "every record needs a residual"),
    ("y ~ x", None, "~ ar9(row)", "unknown function"),
    ("y ~ y + x", None, None, "also appears on the right"),
    ("y ~ x $ z", None, None, "cannot read '$'"),
])
def test_bad_formulas_get_clear_messages(fixed, random, residual, message):
    with pytest.raises(FormulaError, match=message.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")):
        model_spec(fixed, random, residual)


def test_parser_keeps_positions_in_messages():
    with pytest.raises(FormulaError, match="position 7"):
        parse("y ~ a ) b")


@pytest.mark.parametrize("residual, label, dims", [
    ("~ units", "units", ()),
    ("dsum(~ units | Trial)", "at(Trial):units", ()),
    ("~ ar1(Row):ar1(Col)", "ar1(Row):ar1(Col)", (("ar1", "Row"), ("ar1", "Col"))),
    ("~ at(Trial):ar1(Row):ar1(Col)", "at(Trial):ar1(Row):ar1(Col)", (("ar1", "Row"), ("ar1", "Col"))),
    ("dsum(~ ar1(Row):ar1(Col) | Trial)", "at(Trial):ar1(Row):ar1(Col)", (("ar1", "Row"), ("ar1", "Col"))),
    ("~ id(Col):ar1(Row)", "id(Col):ar1(Row)", (("id", "Col"), ("ar1", "Row"))),
    ("~ tree:us(dir)", "id(tree):us(dir)", (("id", "tree"), ("us", "dir"))),
    ("~ Row:Col", "id(Row):id(Col)", (("id", "Row"), ("id", "Col"))),  # id x id: independent records
    ("~ idv(units)", "units", ()),  # ASReml-R's one residual variance
])
def test_residual_structures(residual, label, dims):
    spec = model_spec("y ~ 1", None, residual)
    assert spec.residual.label == label
    assert tuple((d.model, d.column) for d in spec.residual.sections[0].dims) == dims
    assert spec.residual.sections[0].independent == all(kind == "id" for kind, _ in dims)


def test_residual_sections_by_level():
    spec = model_spec("y ~ 1", None, "~ at(site, c(S1, S2)):ar1(col):ar1(row) + at(site, S3):id(col):ar1(row)")
    assert [s.at.levels for s in spec.residual.sections] == [("S1", "S2"), ("S3",)]
    assert spec.residual.at.factor == "site"
    assert spec.variables() == ["y", "site", "col", "row"]
