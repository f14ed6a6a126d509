"""The command-line tool writes every result file and reports progress per iteration."""
import json
import math

import pandas as pd
import pytest

from sparsereml.cli import main
from sparsereml.datasets import trial_network
from sparsereml.demo import MODELS, true_value


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    df, _ = trial_network(seed=5, trials=4, trees=3000, mothers=60)
    path = tmp_path_factory.mktemp("cli") / "trees.csv"
    df.to_csv(path, index=False)
    return path


def test_fit_writes_result_files(csv, tmp_path, capsys, backend):
    out = tmp_path / "res"
    args = [str(csv), "--fixed", "dbh ~ Trial", "--random", "~ Trial:Block + Mother + Trial:Mother",
            "--residual", "~ at(Trial):units", "--factors", "Trial", "--out", str(out)]
    if backend:
        args += ["--backend", backend]
    assert main(["fit"] + args) == 0
    text = capsys.readouterr().out
    assert "iteration   1  logL" in text and "change" in text and "Variance components" in text
    # the stages before the iterations are reported as they end, in order
    lines = text.splitlines()
    first = [next(i for i, ln in enumerate(lines) if ln.startswith(w)) for w in ("design:", "equations:", "iteration   0")]
    assert first == sorted(first) and "records" in lines[first[0]] and "unknowns" in lines[first[1]]
    names = {p.name for p in out.iterdir()}
    assert {"varcomp.csv", "fixed.csv", "summary.txt", "fit.json", "blup_Trial_Block.csv", "blup_Mother.csv",
            "blup_Trial_Mother.csv"} <= names
    vc = pd.read_csv(out / "varcomp.csv", index_col=0)
    assert list(vc.columns) == ["component", "std.error", "z.ratio", "bound", "%ch"]
    assert "at(Trial, 4):units" in vc.index and len(vc) == 7
    info = json.loads((out / "fit.json").read_text())
    assert info["converged"] and len(info["iterations"]) >= 3 and "aic" in info
    fixed = pd.read_csv(out / "fixed.csv", index_col=0)
    assert fixed.index.tolist() == ["(Intercept)", "Trial_2", "Trial_3", "Trial_4"]


def test_fit_reports_bad_input_without_a_traceback(csv, capsys):
    assert main(["fit", str(csv), "--fixed", "dbh ~ Trail", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "column 'Trail' is not in the data; did you mean 'Trial'?" in err and "Traceback" not in err


def test_demo_small_network(capsys, backend, tmp_path):
    args = ["demo", "--trials", "5", "--trees", "6000", "--mothers", "80", "--report", str(tmp_path / "d.html")] + (
        ["--backend", backend] if backend else [])
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f"wrote the report comparing m2, m2b, m2c to {tmp_path / 'd.html'}" in text and (tmp_path / "d.html").exists()
    assert text.count("== m2") == 3 and "LRT m2 vs m2b" in text and "LRT m2b vs m2c" in text
    assert all(f"== {name}: {fx}, random {rnd}, residual {res}" in text for name, (fx, rnd, res) in MODELS.items())
    _, truth = trial_network(trials=5, trees=6000, mothers=80)  # the demo's default seed
    assert f"truth: Mother {truth['sigma2_mother']}, Trial:Mother {truth['sigma2_trial_mother']}," in text


def test_demo_all_families_fits_the_whole_network(capsys, backend):
    args = ["demo", "--trials", "5", "--trees", "8000", "--mothers", "80", "--families", "all", "--no-report", "--brief"]
    assert main(args + (["--backend", backend] if backend else [])) == 0
    text = capsys.readouterr().out
    _, truth = trial_network(trials=5, trees=8000, mothers=80, families="all")
    assert "== all families: dbh ~ Trial, random ~ Trial:Block + Mother + and(Father)" in text
    rows = {line.split()[0]: line.split() for line in text.split("== all families")[1].splitlines()[1:12] if line}
    assert float(rows["sca(Mother,"][-1]) == truth["sigma2_sca"]  # the truth column, read from the simulation
    assert "at(Type," in rows and "wrote the report" not in text


def test_demo_truth_is_read_from_the_simulation():
    _, truth = trial_network(seed=5, trials=4, trees=3000, mothers=60)
    assert true_value("Mother", truth) == truth["sigma2_mother"]
    assert true_value("Trial:Mother", truth) == truth["sigma2_trial_mother"]
    assert true_value("at(Trial, 1):Block", truth) == truth["block_var"][0]  # trials are numbered from 1
    assert true_value("at(Trial, 4):units", truth) == truth["resid_var"][3]
    # pooled over trials whose true variances differ: no single true value
    assert math.isnan(true_value("Trial:Block", truth)) and math.isnan(true_value("units", truth))


def test_fit_with_a_pedigree_writes_breeding_values_and_functions(tmp_path, capsys):
    from sparsereml.datasets import simulate_trees

    trees, ped, _ = simulate_trees(seed=3, trials=3, trees=3000, mothers=80)
    trees = trees[trees.Father == 0].assign(MotherId=lambda d: "M" + d.Mother.astype(str))
    data, pedf = tmp_path / "trees.csv", tmp_path / "ped.csv"
    trees.to_csv(data, index=False)
    ped.rename(columns={"id": "tree"}).to_csv(pedf, index=False)
    out = tmp_path / "res"
    code = main(["fit", str(data), "--fixed", "dbh ~ Trial", "--factors", "Trial,Block", "--quiet",
                 "--random", "~ Trial:Block + vm(MotherId, ped)", "--pedigree", f"ped={pedf}:tree,sire,dam",
                 "--function", "h2=4*`vm(MotherId, ped)`/(`vm(MotherId, ped)`+units)", "--out", str(out)])
    assert code == 0
    assert "Functions of the variance components" in capsys.readouterr().out
    bv = pd.read_csv(out / "breeding_values_vm_MotherId_ped.csv")
    assert len(bv) == len(ped) and {"BLUP", "PEV", "accuracy", "reliability"} <= set(bv.columns)
    h2 = pd.read_csv(out / "functions.csv", index_col=0)
    assert 0 < h2.loc["h2", "estimate"] < 1 and h2.loc["h2", "std.error"] > 0
    assert main(["fit", str(data), "--fixed", "dbh ~ 1", "--pedigree", "ped"]) == 2  # NAME=FILE


def test_unwritable_out_is_refused_before_the_fit(csv, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code = main(["fit", str(csv), "--fixed", "dbh ~ C(Trial)", "--random", "~ Mother", "--out", str(blocker / "res")])
    captured = capsys.readouterr()
    assert code == 2 and f"--out '{blocker / 'res'}' cannot be written" in captured.err
    assert "iteration" not in captured.out  # refused before fitting


def test_function_typo_is_refused_before_the_fit(csv, capsys):
    code = main(["fit", str(csv), "--fixed", "dbh ~ C(Trial)", "--random", "~ Mother",
                 "--function", "h2=4*Mothr/(Mother+units)"])
    captured = capsys.readouterr()
    assert code == 2 and "'Mothr' in '4*Mothr/(Mother+units)' is not a variance component" in captured.err
    assert "iteration" not in captured.out


def test_integer_trial_without_factors_names_the_fix(csv, capsys):
    code = main(["fit", str(csv), "--fixed", "dbh ~ Trial", "--random", "~ Trial:Block + Mother", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--factors Trial" in err and "Traceback" not in err


def test_empty_and_semicolon_files(tmp_path, capsys, backend):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["fit", str(empty), "--fixed", "y ~ 1"]) == 2
    assert f"data file '{empty}' is empty" in capsys.readouterr().err
    df, _ = trial_network(seed=5, trials=4, trees=3000, mothers=60)
    semi = tmp_path / "semi.csv"
    df.to_csv(semi, sep=";", decimal=",", index=False)
    assert main(["fit", str(semi), "--fixed", "dbh ~ Trial", "--random", "~ Mother", "--factors", "Trial"]) == 2
    assert "seem to be separated by ';'" in capsys.readouterr().err
    args = ["fit", str(semi), "--sep", ";", "--decimal", ",", "--fixed", "dbh ~ Trial", "--random", "~ Mother",
            "--factors", "Trial", "--quiet"] + (["--backend", backend] if backend else [])
    assert main(args) == 0
    assert "Variance components" in capsys.readouterr().out


def test_closed_stdout_keeps_the_result_files(csv, tmp_path):
    """`sparsereml fit ... | head -n 2`: the pipe closes during the fit; the files are still written."""
    import subprocess
    import sys

    out = tmp_path / "res"
    cmd = (f"{sys.executable} -m sparsereml.cli fit {csv} --fixed 'dbh ~ C(Trial)' --random '~ Trial:Block + Mother' "
           f"--out {out} | head -n 2")
    run = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr
    assert len(run.stdout.splitlines()) == 2
    assert {"varcomp.csv", "fit.json", "summary.txt"} <= {p.name for p in out.iterdir()}


def test_tsv_with_decimal_commas(tmp_path, capsys, backend):
    df, _ = trial_network(seed=5, trials=4, trees=3000, mothers=60)
    path = tmp_path / "d.tsv"
    df.to_csv(path, sep="\t", decimal=",", index=False)
    args = ["fit", str(path), "--decimal", ",", "--fixed", "dbh ~ Trial", "--random", "~ Mother", "--factors",
            "Trial", "--quiet"] + (["--backend", backend] if backend else [])
    assert main(args) == 0


def test_wald_and_predictions_are_written_and_shown(csv, tmp_path, capsys, backend):
    out = tmp_path / "inf"
    args = ["fit", str(csv), "--fixed", "dbh ~ Trial", "--random", "~ Trial:Block + Mother + Trial:Mother",
            "--factors", "Trial", "--wald", "kr", "--ss", "conditional", "--predict", "Trial",
            "--predict", "Mother", "--sed", "--quiet", "--out", str(out)] + (["--backend", backend] if backend else [])
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Wald tests of the fixed effects (denominator df: kr)" in text and "Predictions of Mother" in text
    wald = pd.read_csv(out / "wald.csv", index_col=0)
    assert list(wald.index) == ["(Intercept)", "Trial"]
    assert {"Df", "denDF", "F.inc", "F.con", "Margin", "Pr"} <= set(wald.columns)
    assert "Wald tests of the fixed effects" in (out / "summary.txt").read_text()
    pred = pd.read_csv(out / "predictions_Trial.csv")
    assert list(pred.columns) == ["Trial", "predicted.value", "std.error", "status"] and len(pred) == 4
    sed = pd.read_csv(out / "sed_Mother.csv", index_col=0)
    assert sed.shape == (60, 60) and math.isnan(sed.iloc[0, 0]) and sed.iloc[0, 1] > 0


def test_unknown_classify_is_refused_before_the_fit(csv, capsys):
    code = main(["fit", str(csv), "--fixed", "dbh ~ C(Trial)", "--random", "~ Mother", "--predict", "Mothr"])
    captured = capsys.readouterr()
    assert code == 2 and "classify: 'Mothr' is not a variable of the model's terms" in captured.err
    assert "iteration" not in captured.out


def test_json_prints_one_strict_json_object(csv, capsys, backend):
    args = ["fit", str(csv), "--fixed", "dbh ~ Trial", "--random", "~ Trial:Block + Mother", "--factors", "Trial",
            "--wald", "kr", "--predict", "Trial", "--json"] + (["--backend", backend] if backend else [])
    assert main(args) == 0
    out = capsys.readouterr().out
    result = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert out.count("\n") == 1 and "iteration" not in out.split("{", 1)[0]
    assert result["converged"] and {r["term"] for r in result["varcomp"]} == {"Trial:Block", "Mother", "units"}
    wald = {r["term"]: r for r in result["wald"]}
    assert wald["Trial"]["Df"] == 3 and wald["Trial"]["denDF"] > 0
    assert [r["Trial"] for r in result["predictions"]["Trial"]] == ["1", "2", "3", "4"]
    assert result["fixed_effects"][0]["effect"] == "(Intercept)"
