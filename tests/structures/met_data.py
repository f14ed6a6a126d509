"""Multi-environment progeny trial with mothers' effects correlated across trials by known
factor-analytic loadings (the generator the structure tests and their R references share).

    u_mt = sum_r lambda_tr f_mr + d_mt,   f ~ N(0, 1),  d_mt ~ N(0, psi_t)
so cov(u_m) = Lambda Lambda' + Psi.  Each trial is a randomized complete block design; not every
mother is in every trial.  Run as a script to write the CSV used by tests/reference/structures.R.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

LOADINGS = np.array([[6.0, 0.0], [5.0, 2.0], [4.0, -3.0], [2.0, 4.0], [5.5, 1.0], [3.0, -1.5]])
PSI = np.array([4.0, 6.0, 3.0, 5.0, 2.0, 7.0])
BLOCK_VAR = np.array([20.0, 35.0, 10.0, 25.0, 15.0, 30.0])
RESID_VAR = np.array([150.0, 220.0, 120.0, 180.0, 200.0, 160.0])


def met_data(seed: int = 101, n_mothers: int = 120, trees_per_trial: int = 900, blocks: int = 6):
    """Return (trees DataFrame, true covariance between trials).

    Columns: Trial (T1..T6), Block (within trial), Mother (M001...), y.
    """
    rng = np.random.default_rng(seed)
    n_trials = LOADINGS.shape[0]
    f = rng.standard_normal((n_mothers, LOADINGS.shape[1]))
    u = f @ LOADINGS.T + rng.standard_normal((n_mothers, n_trials)) * np.sqrt(PSI)
    rows = []
    for t in range(n_trials):
        present = np.sort(rng.choice(n_mothers, size=int(0.8 * n_mothers), replace=False))
        b = rng.normal(0.0, np.sqrt(BLOCK_VAR[t]), blocks)
        mother = rng.choice(present, size=trees_per_trial)
        block = rng.integers(0, blocks, trees_per_trial)
        y = 50.0 + 10.0 * t + b[block] + u[mother, t] + rng.normal(0.0, np.sqrt(RESID_VAR[t]), trees_per_trial)
        rows.append(pd.DataFrame({"Trial": f"T{t + 1}", "Block": block + 1, "Mother": [f"M{m + 1:03d}" for m in mother],
                                  "y": np.round(y, 4)}))
    df = pd.concat(rows, ignore_index=True)
    return df, LOADINGS @ LOADINGS.T + np.diag(PSI)


if __name__ == "__main__":
    data, _ = met_data()
    data.to_csv(sys.argv[1] if len(sys.argv) > 1 else "met_data.csv", index=False)
