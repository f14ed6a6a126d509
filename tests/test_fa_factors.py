"""fa(F, k) with too many factors for the levels of F is refused with a ModelError that names the
term and the largest k allowed, from the API and from the command line (no traceback)."""
import pytest

import sparsereml as sr
from sparsereml.cli import main
from sparsereml.datasets import trial_network


@pytest.fixture(scope="module")
def trees():
    df, _ = trial_network(seed=5, trials=4, trees=3000, mothers=60)
    return df


@pytest.mark.parametrize("k", [4, 9])
def test_fit_refuses_k_not_below_the_number_of_levels(trees, k):
    # 4 trials: k = 4 has more parameters than us(); k = 9 has fewer by the count, but k >= n
    with pytest.raises(sr.ModelError, match=rf"random term 'fa\(Trial, {k}\):Mother': fa\(\) with {k} factor\(s\) "
                                            r"across 4 levels: the number of factors must be smaller than the number "
                                            r"of levels of 'Trial'; use at most fa\(\.\.\., 1\) or us\(\)"):
        sr.fit("dbh ~ Trial", f"~ fa(Trial, {k}):Mother", data=trees, factors=["Trial"])


def test_cli_reports_too_many_factors_without_a_traceback(trees, tmp_path, capsys):
    path = tmp_path / "trees.csv"
    trees.to_csv(path, index=False)
    code = main(["fit", str(path), "--fixed", "dbh ~ Trial", "--random", "~ fa(Trial, 9):Mother",
                 "--factors", "Trial", "--quiet", "--out", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert code == 2
    assert "fa(Trial, 9):Mother" in err and "use at most fa(..., 1)" in err and "Traceback" not in err
