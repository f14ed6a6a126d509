"""Heritability of a binary trait on the observed 0/1 scale from its liability-scale value."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ModelError

__all__ = ["observed_scale"]


def observed_scale(h2_liability, incidence: float) -> pd.DataFrame:
    """Dempster and Lerner's (1950) transformation of a liability-scale heritability of a
    threshold trait to the observed 0/1 scale: h2_obs = h2_liab z^2 / (p (1 - p)), z the normal
    density at the threshold Phi^-1(1 - p) and p the incidence (treated as known).

    Parameters
    ----------
    h2_liability : DataFrame or float
        ``sr.vpredict``'s table (estimate, std.error; e.g. ``"4 * Mother / (Mother +
        `Trial:Block` + latent)"`` on a probit fit), or a number.
    incidence : float
        Proportion of the trait's 1s in the population, e.g. ``m.response.mean()``.

    Returns
    -------
    DataFrame with ``estimate`` and ``std.error`` (scaled by the same factor) per row.
    """
    p = float(incidence)
    if not 0.0 < p < 1.0:
        raise ModelError(f"the incidence must lie strictly between 0 and 1; got {incidence!r}")
    z = stats.norm.pdf(stats.norm.isf(p))
    factor = z * z / (p * (1.0 - p))
    if isinstance(h2_liability, pd.DataFrame):
        if not {"estimate", "std.error"} <= set(h2_liability.columns):
            raise ModelError("h2_liability must be vpredict's table (columns estimate and std.error) or a number")
        return h2_liability[["estimate", "std.error"]] * factor
    value = float(h2_liability)
    return pd.DataFrame({"estimate": [value * factor], "std.error": [np.nan]}, index=["h2"])
