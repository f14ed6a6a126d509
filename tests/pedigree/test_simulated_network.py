"""Family and individual-tree models on the simulated network (sparsereml.datasets, the exact port
of shared/data/simulate_trees.py): mothers are related through grandparents in pedigree.csv and
truth.json holds the mothers' variance on A (sigma2_mother)."""
import pandas as pd
import pytest

import sparsereml as sr
from sparsereml.datasets import simulate_trees, trial_network


def test_family_model_recovers_the_variance_on_a(backend):
    df, truth = trial_network()
    _, ped_df, _ = simulate_trees()
    df["MotherId"] = "M" + df["Mother"].astype(str)  # the pedigree names mother m 'M<m>'
    ped = sr.Pedigree(ped_df)
    m = sr.fit("dbh ~ Trial", "~ Trial:Block + vm(MotherId, ped) + Trial:Mother", data=df,
               matrices={"ped": ped}, backend=backend)
    vc = m.varcomp
    for label, key in (("vm(MotherId, ped)", "sigma2_mother"), ("Trial:Mother", "sigma2_trial_mother")):
        z = (vc.loc[label, "component"] - truth[key]) / vc.loc[label, "std.error"]
        assert abs(z) < 3, label
    unrelated = sr.fit("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", data=df, backend=backend)
    assert m.loglik - unrelated.loglik > 5  # the relationships are in the data


def test_tree_model_equals_the_family_model(backend):
    """Half-sib trees (sire unknown, mothers not inbred): V is the same for the family model with
    s2_f and s2_e and the tree model with s2_A = 4 s2_f and s2_e - 3 s2_f, so REML gives the same
    logL and those estimates."""
    trees, ped_df, _ = simulate_trees(seed=5, trials=4, trees=8000, mothers=120)
    df = trees[(trees.Father == 0) & trees.dbh.notna()].copy()
    for c in ("Trial", "Block", "Mother"):
        df[c] = df[c].astype(str)
    df["MotherId"], df["TreeId"] = "M" + df["Mother"], "T" + df["Tree"].astype(str)
    tree_ped = pd.concat([ped_df, pd.DataFrame({"id": df.TreeId, "sire": "0", "dam": df.MotherId})])
    fam = sr.fit("dbh ~ Trial", "~ Trial:Block + vm(MotherId, ped)", data=df,
                 matrices={"ped": sr.Pedigree(ped_df)}, backend=backend)
    tree = sr.fit("dbh ~ Trial", "~ Trial:Block + vm(TreeId, ped)", data=df,
                  matrices={"ped": sr.Pedigree(tree_ped)}, backend=backend)
    assert tree.loglik == pytest.approx(fam.loglik, abs=1e-5)
    sf = fam.varcomp.loc["vm(MotherId, ped)", "component"]
    assert tree.varcomp.loc["vm(TreeId, ped)", "component"] == pytest.approx(4 * sf, rel=1e-5)
    assert tree.varcomp.loc["units", "component"] == pytest.approx(fam.varcomp.loc["units", "component"] - 3 * sf,
                                                                   rel=1e-5)
    bv = tree.breeding_values("vm(TreeId, ped)")
    assert len(bv) == len(ped_df) + len(df)  # every tree and every ancestor
