"""Response distributions and links of generalized linear mixed models.

A :class:`Family` gives, per record, the log density log p(y_i | eta_i) (with its normalising
constant, as glmer's and glmmTMB's logLik count it) and its first three derivatives in the linear
predictor eta.  The Laplace approximation needs them all: the first for the mode, the second
(the observed information ``w``) for the mixed-model equations at the mode, the third for the
derivative of their log-determinant.  Binomial responses are counts of successes ``y`` out of
``n`` trials (0/1 data: n = 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, gammaln, log_ndtr, ndtr

from ..errors import ModelError
from . import _kernels

__all__ = ["Family", "Binomial", "Poisson", "resolve_family", "Derivatives"]


@dataclass
class Derivatives:
    """Per-record log density and its derivatives in eta at one linear predictor.

    Attributes
    ----------
    loglik : ndarray
        log p(y_i | eta_i), constants included.
    score : ndarray
        d log p / d eta.
    weight : ndarray
        -d2 log p / d eta2 (observed information; positive for these families).
    dweight : ndarray
        d weight / d eta.
    """

    loglik: np.ndarray
    score: np.ndarray
    weight: np.ndarray
    dweight: np.ndarray


class Family:
    """A response distribution with a link (subclasses: :class:`Binomial`, :class:`Poisson`)."""

    name: str = ""
    links: tuple = ()

    def __init__(self, link: str | None = None):
        link = self.links[0] if link is None else link
        if link not in self.links:
            raise ModelError(f"the {self.name} family has links {', '.join(self.links)}; got {link!r}")
        self.link = link

    def __repr__(self) -> str:
        return f"{type(self).__name__}(link={self.link!r})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.link == self.link

    @property
    def label(self) -> str:
        return f"{self.name}({self.link})"

    @property
    def latent_variance(self) -> float | None:
        """Variance of the latent residual of a threshold model on the link scale (probit 1,
        logit pi^2/3, cloglog pi^2/6); None for a family without one (Poisson)."""
        return None

    def inverse_link(self, eta: np.ndarray) -> np.ndarray:
        """The mean on the response scale (a probability for the binomial)."""
        raise NotImplementedError

    def dmu_deta(self, eta: np.ndarray) -> np.ndarray:
        """d mu / d eta, for the delta method on the response scale."""
        raise NotImplementedError

    def log_constant(self, y: np.ndarray, n: np.ndarray) -> np.ndarray:
        """The part of each record's log density free of eta (computed once per fit)."""
        raise NotImplementedError

    def derivatives(self, y: np.ndarray, n: np.ndarray, eta: np.ndarray, const=None) -> Derivatives:
        """:class:`Derivatives` at ``eta``; ``const``, if given, is :meth:`log_constant`'s."""
        raise NotImplementedError

    def fisher_weight(self, n: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Expected information per record, n (dmu/deta)^2 / V(mu): PQL's and IRLS's weights."""
        raise NotImplementedError

    def start_eta(self, y: np.ndarray, n: np.ndarray) -> np.ndarray:
        """A linear predictor to start from (R's mustart, on the link scale)."""
        raise NotImplementedError

    def check(self, y: np.ndarray, n: np.ndarray, response: str) -> None:
        """Refuse responses the family cannot have, naming the column and a record."""


def _first_bad(bad: np.ndarray, values: np.ndarray) -> str:
    i = int(np.flatnonzero(bad)[0])
    return f"record {i} (0-based, of the records fitted) is {float(values[i]):g}; {int(bad.sum()):,} such records"


class Binomial(Family):
    """Binomial counts (0/1 data, proportions with ``weights`` as trials, or ``cbind(s, f)``)
    with link ``"logit"`` (default), ``"probit"`` or ``"cloglog"``."""

    name = "binomial"
    links = ("logit", "probit", "cloglog")

    @property
    def latent_variance(self) -> float:
        return {"probit": 1.0, "logit": np.pi ** 2 / 3.0, "cloglog": np.pi ** 2 / 6.0}[self.link]

    def inverse_link(self, eta):
        if self.link == "logit":
            return expit(eta)
        if self.link == "probit":
            return ndtr(eta)
        return -np.expm1(-np.exp(np.minimum(eta, 700.0)))

    def dmu_deta(self, eta):
        if self.link == "logit":
            mu = expit(eta)
            return mu * (1.0 - mu)
        if self.link == "probit":
            return np.exp(-0.5 * eta * eta) / np.sqrt(2.0 * np.pi)
        a = np.exp(np.minimum(eta, 700.0))
        return a * np.exp(-a)

    def fisher_weight(self, n, eta):
        if self.link == "logit":
            mu = expit(eta)
            return n * mu * (1.0 - mu)
        if self.link == "probit":
            return n * np.exp(-eta * eta - np.log(2.0 * np.pi) - log_ndtr(eta) - log_ndtr(-eta))
        g = _log_cloglog_derivatives(eta)
        return n * np.exp(np.minimum(eta, 700.0)) * g[1]

    def check(self, y, n, response):
        bad = (y < 0) | (y > n) | (np.abs(y - np.round(y)) > 1e-8 * np.maximum(n, 1.0))
        if bad.any():
            raise ModelError(f"binomial response {response!r}: successes must be whole numbers between 0 and the "
                             f"number of trials (a 0/1 response, a proportion whose weights are the trials, or "
                             f"cbind(successes, failures)); {_first_bad(bad, y)}")

    def start_eta(self, y, n):
        mu = (y + 0.5) / (n + 1.0)  # R's binomial mustart
        if self.link == "logit":
            return np.log(mu / (1.0 - mu))
        if self.link == "probit":
            from scipy.special import ndtri
            return ndtri(mu)
        return np.log(-np.log1p(-mu))

    def log_constant(self, y, n):
        """log C(n, y) per record: the part of the log density free of eta."""
        return gammaln(n + 1.0) - gammaln(y + 1.0) - gammaln(n - y + 1.0)

    def derivatives(self, y, n, eta, const=None):
        const = self.log_constant(y, n) if const is None else const
        return Derivatives(*_kernels.binomial(self.link, y, n, eta, const))


class Poisson(Family):
    """Poisson counts with the log link."""

    name = "poisson"
    links = ("log",)

    def inverse_link(self, eta):
        return np.exp(eta)

    def dmu_deta(self, eta):
        return np.exp(eta)

    def check(self, y, n, response):
        bad = (y < 0) | (np.abs(y - np.round(y)) > 1e-8)
        if bad.any():
            raise ModelError(f"Poisson response {response!r}: counts must be whole numbers >= 0; {_first_bad(bad, y)}")

    def fisher_weight(self, n, eta):
        return n * np.exp(eta)

    def start_eta(self, y, n):
        return np.log(y + 0.1)  # R's poisson mustart

    def log_constant(self, y, n):
        return -n * gammaln(y + 1.0)

    def derivatives(self, y, n, eta, const=None):
        # n holds the prior weights here (each record's log density counted n times, as glmer)
        const = self.log_constant(y, n) if const is None else const
        mu = np.exp(eta)
        ll = n * (y * eta - mu) + const
        w = n * mu
        return Derivatives(ll, n * (y - mu), w, w)


def _log_cloglog_derivatives(eta: np.ndarray) -> tuple:
    """log(1 - exp(-e^eta)) and its first three derivatives in eta."""
    a = np.exp(np.minimum(eta, 700.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        g0 = np.log(-np.expm1(-a))
        rb = np.where(a > 1e-300, a / -np.expm1(-a), 1.0)  # a e^a / (e^a - 1)
    r = rb * np.exp(-a)  # a / (e^a - 1)
    g2 = r * (1.0 - rb)
    g3 = g2 * (1.0 - rb) - rb * (g2 + r * a)
    return g0, r, g2, g3


FAMILIES = {"binomial": Binomial, "poisson": Poisson}


def resolve_family(family) -> Family | None:
    """``family`` as given to fit(): None or "gaussian" (a linear mixed model), a name, or a Family."""
    if family is None or (isinstance(family, str) and family.lower() == "gaussian"):
        return None
    if isinstance(family, Family):
        return family
    if isinstance(family, str) and family.lower() in FAMILIES:
        return FAMILIES[family.lower()]()
    raise ModelError(f"family must be 'gaussian', 'binomial', 'poisson' or a family object such as "
                     f"sr.families.Binomial(link='probit'); got {family!r}")
