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
from scipy.special import digamma, expit, gammaln, log_ndtr, ndtr

from ..errors import ModelError
from . import _kernels

__all__ = ["Family", "Binomial", "Poisson", "NegativeBinomial", "resolve_family", "Derivatives"]


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
    n_dispersion: int = 0  # parameters of the family the Laplace fit estimates (NB's log theta)

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


class _Counts(Family):
    """Counts with the log link: what the Poisson and the negative binomial share."""

    links = ("log",)
    noun = ""  # as the family is named in messages

    def inverse_link(self, eta):
        return np.exp(eta)

    def dmu_deta(self, eta):
        return np.exp(eta)

    def check(self, y, n, response):
        bad = (y < 0) | (np.abs(y - np.round(y)) > 1e-8)
        if bad.any():
            raise ModelError(f"{self.noun} response {response!r}: counts must be whole numbers >= 0; "
                             f"{_first_bad(bad, y)}")


class Poisson(_Counts):
    """Poisson counts with the log link."""

    name = "poisson"
    noun = "Poisson"

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


class NegativeBinomial(_Counts):
    """Negative binomial counts with the log link, glmmTMB's ``nbinom2``: Var(y) = mu + mu^2 / theta.

    Parameters
    ----------
    link : {"log"}
    theta : float, optional
        The dispersion parameter (theta -> infinity is the Poisson).  None (default): estimated
        by the Laplace likelihood with the other parameters, as glmmTMB; a number: held there
        (MASS's ``negative.binomial(theta)``).

    Notes
    -----
    Prior weights (``weights=``) count each record's log density that many times, as for the
    Poisson.  theta is kept in [THETA_MIN, THETA_MAX]: beyond THETA_MAX the counts show no
    overdispersion the family can tell from the Poisson (mu^2 / theta < 1e-6 mu^2).
    """

    name = "negative.binomial"
    noun = "negative binomial"
    n_dispersion = 1
    THETA_MIN, THETA_MAX = 1e-6, 1e6

    def __init__(self, link: str | None = None, theta: float | None = None):
        super().__init__(link)
        if theta is not None:
            theta = float(theta)
            if not (self.THETA_MIN <= theta <= self.THETA_MAX):
                raise ModelError(f"negative binomial theta must be between {self.THETA_MIN:g} and "
                                 f"{self.THETA_MAX:g} (or None: estimated); got {theta!r}")
        self.theta = theta
        self.theta_fixed = theta is not None

    def __repr__(self) -> str:
        return f"NegativeBinomial(link={self.link!r}, theta={self.theta!r})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.link == self.link and other.theta == self.theta

    @property
    def label(self) -> str:
        if self.theta is None:
            return f"{self.name}({self.link})"
        return f"{self.name}({self.link}, theta = {self.theta:.6g}{' fixed' if self.theta_fixed else ''})"

    def at_theta(self, theta: float) -> "NegativeBinomial":
        """A copy at dispersion ``theta`` (still marked estimated or fixed as this one)."""
        out = NegativeBinomial(self.link)
        out.theta, out.theta_fixed = float(theta), self.theta_fixed
        return out

    def _theta(self) -> float:
        if self.theta is None:
            raise ModelError("the negative binomial family needs theta here; the fit estimates it")
        return self.theta


    def fisher_weight(self, n, eta):
        th = self._theta()
        return n * th * expit(eta - np.log(th))  # mu theta / (theta + mu)

    def start_eta(self, y, n):
        return np.log(y + 0.1)

    def log_constant(self, y, n):
        """n [log Gamma(y + theta) - log Gamma(theta) - y log theta - log y!]: free of eta."""
        th = self._theta()
        return n * (gammaln(y + th) - gammaln(th) - y * np.log(th) - gammaln(y + 1.0))

    def derivatives(self, y, n, eta, const=None):
        # log p = const + y eta - (y + theta) log(1 + mu / theta); p = mu / (theta + mu)
        th = self._theta()
        const = self.log_constant(y, n) if const is None else const
        z = eta - np.log(th)
        p = expit(z)
        w = n * (y + th) * p * (1.0 - p)
        ll = const + n * (y * eta - (y + th) * np.logaddexp(0.0, z))
        return Derivatives(ll, n * (y - (y + th) * p), w, w * (1.0 - 2.0 * p))

    def dispersion_derivatives(self, y, n, eta) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """d log p / d log theta, d score / d log theta and d weight / d log theta per record, at
        fixed eta: what the Laplace likelihood's derivative in log theta needs."""
        th = self._theta()
        z = eta - np.log(th)
        p, q = expit(z), expit(-z)  # mu / (theta + mu), theta / (theta + mu)
        mu = np.exp(eta)
        # d log p / d theta = psi(y + theta) - psi(theta) - log(1 + mu / theta) + (mu - y) / (theta + mu)
        dl = th * (digamma(y + th) - digamma(th) - np.logaddexp(0.0, z) + p - y * q / th)
        ds = n * p * q * (y - mu)
        dw = n * p * q * (y * (2.0 * p - 1.0) + 2.0 * th * p)
        return n * dl, ds, dw


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


FAMILIES = {"binomial": Binomial, "poisson": Poisson, "negative.binomial": NegativeBinomial,
            "negbin": NegativeBinomial, "nbinom2": NegativeBinomial}


def resolve_family(family) -> Family | None:
    """``family`` as given to fit(): None or "gaussian" (a linear mixed model), a name, or a Family."""
    if family is None or (isinstance(family, str) and family.lower() == "gaussian"):
        return None
    if isinstance(family, Family):
        return family
    if isinstance(family, str) and family.lower() in FAMILIES:
        return FAMILIES[family.lower()]()
    raise ModelError(f"family must be 'gaussian', 'binomial', 'poisson', 'negative.binomial' or a family object such as "
                     f"sr.families.Binomial(link='probit'); got {family!r}")
