"""The options of a fit, in one object kept with it (as MixedModels.jl's OptSummary, lme4's lmerControl).

Every tolerance, limit and switch of the engine is a field of :class:`Control`.  Environment
variables only supply defaults when a ``Control`` is made (``SPARSEREML_BACKEND``,
``SPARSEREML_STAR``, ``SPARSEREML_THREADS``, ``SPARSEREML_DENSE_THREADS``); the fitted model
keeps the object it was fitted with, so a saved fit says exactly how it was made.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import asdict, dataclass, field, fields, replace

from .errors import ModelError

__all__ = ["Control", "STEP_CONTROL", "START_METHODS", "resolve_control"]

_BACKENDS = (None, "auto", "cholmod", "qdldl")
START_METHODS = ("moments", "equal")
# (Levenberg-Marquardt damping, step length) tried in turn until the log-likelihood does not fall
STEP_CONTROL = ((0.0, 1.0), (0.0, 0.5), (0.0, 0.25), (0.1, 1.0), (1.0, 1.0), (1.0, 0.5), (10.0, 1.0),
                (10.0, 0.25), (100.0, 1.0), (1e3, 1.0), (1e4, 1.0), (1e5, 1.0))


def _whole(name: str, value, lowest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lowest:
        raise ModelError(f"{name} must be a whole number >= {lowest}, got {value!r}")


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
        raise ModelError(f"{name} must be a positive number, got {value!r}")


def _env_count(name: str) -> int | None:
    from .linalg.threads import count_from_env  # the one reader of a thread count from the environment

    return count_from_env(name)


def _env_backend() -> str | None:
    value = os.environ.get("SPARSEREML_BACKEND", "").strip() or None
    if value not in _BACKENDS:
        raise ModelError(f"SPARSEREML_BACKEND must be cholmod, qdldl or auto, got {value!r}; unset it for the "
                         f"default (CHOLMOD when importable)")
    return value


def _env_star() -> bool:
    value = os.environ.get("SPARSEREML_STAR", "1").strip()
    if value not in ("0", "1"):
        raise ModelError(f"SPARSEREML_STAR must be 0 or 1, got {value!r}; unset it for the default (1)")
    return value == "1"


def _check_steps(steps) -> tuple:
    try:
        out = tuple((float(d), float(lam)) for d, lam in steps)
    except (TypeError, ValueError):
        raise ModelError(f"step_control must be a sequence of (damping, step length) pairs, got {steps!r:.80}") from None
    if not out or any(not (math.isfinite(d) and d >= 0 and math.isfinite(lam) and lam > 0) for d, lam in out):
        raise ModelError("step_control needs at least one (damping >= 0, step length > 0) pair, finite; "
                         f"got {steps!r:.80}")
    return out


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
    stall_window : int
        Iterations over which logL must rise by at least ``tol_loglik`` while the expected gain
        is below it; otherwise the fit stops as "converged in logL" (a flat ridge, default 5).
    step_control : tuple of (damping, step length)
        Steps tried in turn until logL does not fall: the AI step times the length, with
        Levenberg-Marquardt damping ``damping * diag(AI)`` added to AI (default :data:`STEP_CONTROL`).
    single_precision : bool
        Allow scores from a selected inverse whose wide dense block is inverted in single precision
        while steps are still large (default True).  The log-likelihood, the average information,
        every stopping decision and every step below ``rough_above`` are always in double precision.
    rough_above : float
        The expected relative step above which single-precision scores are allowed (default 1e-4).
    var_boundary : float
        A variance within ``var_boundary`` times the largest start variance of zero is held at the
        boundary (code B; default 1e-8, at most 1e-3).
    cor_boundary : float
        A correlation within ``cor_boundary`` of +-1 is held there (code B; default 1e-6, at most 1e-2).
    start_method : {"moments", "equal"}
        Start values: ``"moments"`` (default) moment estimates from the OLS residuals; ``"equal"``
        the OLS residual variance split equally among the plain variance components (random
        terms' variances and the residual), correlated terms still from the data.
    backend : {"cholmod", "qdldl", "auto"} or None
        Sparse factorisation; default ``SPARSEREML_BACKEND``, else CHOLMOD when importable.
    star : bool
        Factor equations of star shape (independent leaf blocks around a dense block) with dense
        kernels and LAPACK (default True, or ``SPARSEREML_STAR=0`` for False).
    threads : int or None
        Threads of a fit's parallel steps.  None: decided at each step as the cores this process
        may use (affinity, a cgroup quota, ``OMP_NUM_THREADS`` and the like) less the threads of
        other processes running at that moment, at least one, so that fits side by side share the
        cores.  n: exactly n threads whatever the load.  Default ``SPARSEREML_THREADS``, else None.
    dense_threads : int or None
        Threads of the dense LAPACK calls on the dense block; None (default, or
        ``SPARSEREML_DENSE_THREADS``) follows ``threads``.

    Every value is checked when the object is made; ``repr`` shows them all, and the fitted model
    keeps the one it was fitted with (``m.control``).
    """

    max_iter: int = 50
    tol: float = 1e-6
    tol_loglik: float = 1e-6
    stall_window: int = 5
    step_control: tuple = STEP_CONTROL
    single_precision: bool = True
    rough_above: float = 1e-4
    var_boundary: float = 1e-8
    cor_boundary: float = 1e-6
    start_method: str = "moments"
    backend: str | None = field(default_factory=_env_backend)
    star: bool = field(default_factory=_env_star)
    threads: int | None = field(default_factory=lambda: _env_count("SPARSEREML_THREADS"))
    dense_threads: int | None = field(default_factory=lambda: _env_count("SPARSEREML_DENSE_THREADS"))

    def __post_init__(self):
        _whole("max_iter", self.max_iter, 1)
        _positive("tol", self.tol)
        _positive("tol_loglik", self.tol_loglik)
        _whole("stall_window", self.stall_window, 1)
        object.__setattr__(self, "step_control", _check_steps(self.step_control))
        for name in ("single_precision", "star"):
            if not isinstance(getattr(self, name), bool):
                raise ModelError(f"{name} must be True or False, got {getattr(self, name)!r}")
        _positive("rough_above", self.rough_above)
        for name, top in (("var_boundary", 1e-3), ("cor_boundary", 1e-2)):
            # a wide margin would put sound start values on the boundary
            _positive(name, getattr(self, name))
            if getattr(self, name) > top:
                raise ModelError(f"{name} must be a small positive number (at most {top:g}), got "
                                 f"{getattr(self, name)!r}")
        if self.start_method not in START_METHODS:
            raise ModelError(f"unknown start_method {self.start_method!r}; use one of {', '.join(START_METHODS)}")
        if self.backend not in _BACKENDS:
            raise ModelError(f"unknown backend {self.backend!r}; use 'cholmod', 'qdldl' or 'auto'")
        for name in ("threads", "dense_threads"):
            if getattr(self, name) is not None:
                _whole(name, getattr(self, name), 1)

    def __str__(self) -> str:
        """One option a line, as printed with a fit."""
        width = max(len(f.name) for f in fields(self))
        lines = ["Control:"]
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "step_control":
                value = ", ".join(f"({d:g}, {lam:g})" for d, lam in value)
            lines.append(f"  {f.name:<{width}}  {value}")
        return "\n".join(lines)

    def threading(self):
        """Context in which a fit's stages run with these thread counts (one BLAS thread for the
        small dense blocks; ``threads`` / ``dense_threads`` for the parallel steps)."""
        from .linalg.threads import single_threaded

        return single_threaded(self.threads, self.dense_threads, env=False)

    def updated(self, **changes) -> "Control":
        """A copy with the given fields changed; fields given as None keep their value."""
        known = {f.name for f in fields(self)}
        for name in changes:
            if name not in known:
                raise ModelError(f"Control has no option {name!r} (options: {', '.join(sorted(known))})")
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **given) if given else self

    def to_dict(self) -> dict:
        """The options as plain values (what fit.json holds)."""
        out = asdict(self)
        out["step_control"] = [list(p) for p in self.step_control]
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "Control":
        """The Control that :meth:`to_dict` gave (unknown keys refused, missing ones default)."""
        if not isinstance(values, dict):
            raise ModelError(f"a Control is read from a dict of options, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelError(f"Control has no option {unknown[0]!r} (options: {', '.join(sorted(known))})")
        return replace(cls(), **values)


def resolve_control(control: Control | None, **shortcuts) -> Control:
    """``control`` (default ``Control()``) with the shortcuts given as not None replacing its fields;
    anything but a Control is refused."""
    if control is None:
        control = Control()
    elif not isinstance(control, Control):
        raise ModelError(f"control must be a sparsereml.Control, e.g. sr.Control(max_iter=100); got "
                         f"{type(control).__name__}")
    return control.updated(**shortcuts)
