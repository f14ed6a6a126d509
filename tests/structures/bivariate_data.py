"""Two traits measured on the same trees, some missing, with known genetic (mother) and
residual covariances between the traits (the data of the multivariate tests and their R
reference).  Run as a script to write the CSV used by tests/reference/multivariate.R.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

G = np.array([[4.0, 2.0], [2.0, 3.0]])  # mothers' effects on (dbh, height)
R = np.array([[10.0, 4.0], [4.0, 8.0]])  # residual covariance within a tree


def bivariate_data(seed: int = 1, n: int = 3000, n_mothers: int = 100, trials: int = 4):
    """Trees in ``trials`` trials with dbh and height; 10% of dbh and 20% of height missing."""
    rng = np.random.default_rng(seed)
    mom, trial = rng.integers(0, n_mothers, n), rng.integers(0, trials, n)
    u = rng.multivariate_normal([0.0, 0.0], G, n_mothers)
    e = rng.multivariate_normal([0.0, 0.0], R, n)
    y = np.array([10.0, 20.0]) + trial[:, None] * np.array([1.0, -1.0]) + u[mom] + e
    df = pd.DataFrame({"Trial": [f"T{t + 1}" for t in trial], "Mother": [f"M{m + 1:03d}" for m in mom],
                       "dbh": np.round(y[:, 0], 4), "height": np.round(y[:, 1], 4)})
    df.loc[rng.random(n) < 0.2, "height"] = np.nan
    df.loc[rng.random(n) < 0.1, "dbh"] = np.nan
    return df


if __name__ == "__main__":
    bivariate_data().to_csv(sys.argv[1] if len(sys.argv) > 1 else "bivariate.csv", index=False)
