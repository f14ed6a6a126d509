"""Liability-scale variances of simulated survival recovered within 3 standard errors
(truth: sr.datasets.trial_network(survival=True), issue 18)."""
from __future__ import annotations

import pytest

import sparsereml as sr

SIZE = dict(seed=2011, trials=12, trees=60_000, mothers=300)


@pytest.fixture(scope="module")
def network():
    df, truth = sr.datasets.trial_network(survival=True, **SIZE)
    return df, truth["survival"]


def _within_3se(m, truth: dict, names: dict) -> None:
    vc = m.varcomp
    for label, key in names.items():
        est, se = vc.loc[label, "component"], vc.loc[label, "std.error"]
        assert abs(est - truth[key]) < 3 * se, (label, est, se, truth[key])


def test_probit_survival_recovers_the_liability_variances(network, backend):
    df, truth = network
    m = sr.fit("survival ~ Trial", "~ Trial:Block + Mother + Trial:Mother", data=df,
               family=sr.glmm.Binomial("probit"), backend=backend)
    assert m.converged and m.nobs == len(df)
    _within_3se(m, truth, {"Trial:Block": "sigma2_block", "Mother": "sigma2_mother",
                           "Trial:Mother": "sigma2_trial_mother"})
    # narrow-sense h2 of survival on the liability scale: 4 s2_mother / total (half-sibs)
    h2 = sr.vpredict(m, {"h2": "4 * Mother / (`Trial:Block` + Mother + `Trial:Mother` + latent)"}).loc["h2"]
    true_h2 = 4 * truth["sigma2_mother"] / truth["total_var"]
    assert abs(h2["estimate"] - true_h2) < 3 * h2["std.error"]
    obs = sr.glmm.observed_scale(sr.vpredict(m, {"h2": "4 * Mother / (`Trial:Block` + Mother + `Trial:Mother` + "
                                                       "latent)"}), m.response.mean()).loc["h2"]
    assert 0 < obs["estimate"] < h2["estimate"]  # the observed scale always shrinks it


def test_probit_survival_with_the_mothers_pedigree(network, backend):
    df, truth = network
    _, ped, _ = sr.datasets.simulate_trees(**SIZE)
    d = df.assign(MotherId="M" + df["Mother"].astype(str))
    m = sr.fit("survival ~ Trial", "~ Trial:Block + vm(MotherId, ped) + Trial:Mother", data=d,
               matrices={"ped": sr.Pedigree(ped, id="id", sire="sire", dam="dam")},
               family=sr.glmm.Binomial("probit"), backend=backend)
    assert m.converged
    _within_3se(m, truth, {"Trial:Block": "sigma2_block", "vm(MotherId, ped)": "sigma2_mother",
                           "Trial:Mother": "sigma2_trial_mother"})
    bv = sr.breeding_values(m, "vm(MotherId, ped)")
    assert len(bv) == len(ped) and bv["accuracy"].between(0, 1).all()
