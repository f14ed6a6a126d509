"""fa(Trial, 2) recovers known factor-analytic covariances (simulated truth).

Data: tests/structures/met_data.py draws each mother's effect in six trials from known loadings
Lambda (6 x 2) and specific variances Psi, so the covariance between trials is Lambda Lambda' +
Psi.  Loadings are identified only up to rotation; their products (the covariance) are not.
"""
import numpy as np
import pytest

import sparsereml as sr

from .met_data import BLOCK_VAR, RESID_VAR, met_data

SEEDS = range(7, 15)


@pytest.fixture(scope="module")
def fits():
    out = []
    for seed in SEEDS:
        df, true = met_data(seed=seed, n_mothers=400, trees_per_trial=3200)
        m = sr.fit("y ~ 0 + Trial", "~ at(Trial):Block + fa(Trial, 2):Mother", "~ at(Trial):units", data=df)
        out.append((m, true))
    return out


def test_covariance_between_trials_within_its_standard_errors(fits):
    """Every entry of Lambda Lambda' + Psi within 3.5 SE; over 8 replicates x 21 entries the
    z-scores have an RMS near 1 (the delta-method SEs are neither too small nor too large)."""
    z = []
    for m, true in fits:
        assert m.converged
        v = m.vcov("fa(Trial, 2):Mother")
        G, se = v["covariance"].to_numpy(), v["covariance_se"].to_numpy()
        lower = np.tril_indices(6)
        z.append((G[lower] - true[lower]) / se[lower])
    z = np.concatenate(z)
    assert np.abs(z).max() < 3.5
    assert 0.75 < np.sqrt(np.mean(z**2)) < 1.35


def test_loadings_and_specific_variances_reproduce_the_covariance(fits):
    m, _ = fits[0]
    v = m.vcov("fa(Trial, 2):Mother")
    lam, psi = v["loadings"].to_numpy(), v["specific"].to_numpy().ravel()
    np.testing.assert_allclose(lam @ lam.T + np.diag(psi), v["covariance"].to_numpy(), rtol=1e-10)
    assert lam[0, 1] == 0.0  # the rotation constraint: trial 1 does not load on factor 2


def test_block_and_residual_variances_recovered(fits):
    """Residual variances (3,200 trees per trial) by z-scores; block variances have 5 degrees
    of freedom each, so their SEs scale with the estimate and z-scores mislead: instead the mean
    of estimate / truth over 8 x 6 of them must be near 1 (its sd is about 0.09)."""
    z, ratio = [], []
    for m, _ in fits:
        vc = m.varcomp
        for t in range(6):
            res = vc.loc[f"at(Trial, T{t + 1}):units"]
            z.append((res["component"] - RESID_VAR[t]) / res["std.error"])
            ratio.append(vc.loc[f"at(Trial, T{t + 1}):Block", "component"] / BLOCK_VAR[t])
    z = np.array(z)
    assert np.abs(z).max() < 3.5
    assert 0.6 < np.sqrt(np.mean(z**2)) < 1.5
    assert abs(np.mean(ratio) - 1.0) < 3.5 * 0.09  # 1.25 on these seeds; 0.98 +- 0.03 over 60 others
