"""The options of a fit, in one object kept with it (as MixedModels.jl's OptSummary, lme4's lmerControl)."""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields, replace

from .errors import ModelError

__all__ = ["Control"]

_BACKENDS = (None, "auto", "cholmod", "qdldl")


def _whole(name: str, value, lowest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lowest:
        raise ModelError(f"{name} must be a whole number >= {lowest}, got {value!r}")


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
        raise ModelError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Control:
    """Options of the REML fit.

    Parameters
    ----------
    max_iter : int
        Largest number of AI-REML iterations (default 50).
    tol : float
        Convergence: every estimated parameter's AI-Newton step below ``tol`` of its value ...
    tol_loglik : float
        ... and the log-likelihood that step would gain below ``tol_loglik`` (or 1e-12 |logL|).
    backend : {"cholmod", "qdldl", "auto"} or None
        Sparse factorisation; None reads ``SPARSEREML_BACKEND``, else CHOLMOD when importable.
    threads : int or None
        Threads of a fit's parallel steps.  None (default): decided at each step as the cores this
        process may use (affinity, a cgroup quota, ``OMP_NUM_THREADS`` and the like) less the
        threads of other processes running at that moment, at least one, so that fits side by side
        share the cores; ``SPARSEREML_THREADS=n`` changes this default.  n: exactly n threads
        whatever the load.

    Every value is checked when the object is made; ``repr`` shows them all, and the fitted model
    keeps the one it was fitted with (``m.control``).
    """

    max_iter: int = 50
    tol: float = 1e-6
    tol_loglik: float = 1e-6
    backend: str | None = None
    threads: int | None = None

    def __post_init__(self):
        _whole("max_iter", self.max_iter, 1)
        _positive("tol", self.tol)
        _positive("tol_loglik", self.tol_loglik)
        if self.backend not in _BACKENDS:
            raise ModelError(f"unknown backend {self.backend!r}; use 'cholmod', 'qdldl' or 'auto'")
        if self.threads is not None:
            _whole("threads", self.threads, 1)

    def updated(self, **changes) -> "Control":
        """A copy with the given fields changed; fields given as None keep their value."""
        known = {f.name for f in fields(self)}
        for name in changes:
            if name not in known:
                raise ModelError(f"Control has no option {name!r} (options: {', '.join(sorted(known))})")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return asdict(self)
