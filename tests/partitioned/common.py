"""What the partitioned-data tests share: the comparison with the in-memory fit (the reference)."""
from __future__ import annotations

import numpy as np


def assert_same_fit(ref, m) -> None:
    """``m`` (partitioned data) is ``ref`` (the same records in memory): logL to 1e-10 relative,
    components and fixed effects to 1e-8."""
    assert abs(ref.loglik - m.loglik) <= 1e-10 * abs(ref.loglik)
    assert list(ref.varcomp.index) == list(m.varcomp.index) and ref.nobs == m.nobs
    np.testing.assert_allclose(m.varcomp["component"].to_numpy(), ref.varcomp["component"].to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(m.fixed["estimate"].to_numpy(), ref.fixed["estimate"].to_numpy(), rtol=1e-8)
