"""A fitted GLMM: the tables of a Gaussian fit, on the link scale, with the family's own
likelihood, fitted values and residuals."""
from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ..errors import ConvergenceWarning, ModelError, warn_user
from ..results import FittedModel
from .families import Binomial, Family

__all__ = ["GLMMFit", "APPROXIMATION", "glmm_labels"]

APPROXIMATION = {"laplace": "Laplace approximation (as glmer nAGQ = 1 and glmmTMB)",
                 "pql": "PQL (REML on the working variate, as ASReml)"}


def glmm_labels(problem, family: Family) -> list:
    """The parameter labels of a GLMM as functions of its components name them: the random terms',
    then ``latent`` for a threshold model's latent residual (none for Poisson)."""
    labels = list(problem.report_labels)
    labels[-1] = "latent" if family.latent_variance is not None else \
        f"(no latent residual: {'Poisson' if family.name == 'poisson' else family.name})"
    return labels


class GLMMFit(FittedModel):
    """A generalized linear mixed model fitted by the Laplace approximation or by PQL.

    Everything a :class:`~sparsereml.FittedModel` has, on the link scale: ``varcomp`` (variance
    components of the linear predictor; their standard errors from the observed information of
    the Laplace likelihood, or from PQL's average information; a negative binomial's theta is
    its last row, with its standard error from the same information), ``fixed`` (standard errors from
    the mixed-model equations at the mode's weights, as glmer's ``vcov``), ``blups`` (the random
    effects' conditional modes, with PEVs that include the fixed effects' uncertainty).

    Attributes
    ----------
    family : Family
    method : {"laplace", "pql"}
    loglik : float
        Laplace: the approximate marginal log-likelihood, constants of the family's density
        included (glmer's and glmmTMB's ``logLik``).  PQL: the REML log-likelihood of the last
        working variate, which is not a likelihood of the data (no LRT, AIC or BIC from it).
    linear_predictor : Series
        eta = X b + Z u + offset per record.
    dispersion : Dispersion or None
        The negative binomial's theta (estimate, standard error, code); None for other families.
    """

    def __init__(self, problem, result, seconds, control, *, family: Family, method: str, y, trials, offset, eta,
                 pql_rounds: list | None = None, written: str | None = None,
                 vcov_beta: np.ndarray | None = None, exact_hessian: bool = True, dispersion=None):
        super().__init__(problem, result, seconds, control)
        self.written = written or self.spec.formulas.get("fixed")
        self.family, self.method = family, method
        self.counts, self.trials, self.offset = np.asarray(y), np.asarray(trials), np.asarray(offset)
        self._eta = np.asarray(eta)
        self.pql_rounds = pql_rounds or []
        self._vcov_beta = vcov_beta
        self.exact_hessian = exact_hessian
        self.dispersion = dispersion
        # the residual slot, held at 1 in the fit, stands for the latent residual of a threshold
        # model in functions of the components (vpredict): "latent" = 1 (probit), pi^2/3 (logit)
        latent = family.latent_variance
        self.theta = self.theta.copy()
        self.labels = glmm_labels(problem, family)
        self.theta[-1] = latent if latent is not None else np.nan

    @cached_property
    def fixed(self) -> pd.DataFrame:
        """Fixed effects on the link scale.  Laplace: standard errors from the inverse observed
        information of (variance parameters, fixed effects), as glmmTMB's and glmer's ``vcov``;
        PQL: from the mixed-model equations of the last working variate, as ASReml."""
        if self._vcov_beta is None:
            return FittedModel.fixed.func(self)
        est = self.solution[:self.rank]
        se = np.sqrt(np.diag(self._vcov_beta))
        return pd.DataFrame({"estimate": est, "std.error": se, "z": est / se},
                            index=pd.Index(self.design.fixed.names, name="effect"))

    @property
    def likelihood(self) -> str:
        return "Laplace" if self.method == "laplace" else "PQL"

    @property
    def approximation(self) -> str:
        """Which approximation gave the likelihood and estimates."""
        return APPROXIMATION[self.method]

    @property
    def loglik_asreml(self) -> float:
        raise ModelError("loglik_asreml is the REML log-likelihood in ASReml's convention, which a GLMM does not "
                         "have; use m.loglik")

    def _likelihood_only(self, what: str) -> None:
        if self.method != "laplace":
            raise ModelError(f"{what} needs a likelihood of the data; PQL's is the REML log-likelihood of the "
                             f"working variate. Fit with method='laplace'")

    @property
    def n_dispersion(self) -> int:
        """1 for a negative binomial whose theta was estimated (code P, or B at its bound), else 0."""
        return int(self.dispersion is not None and self.dispersion.code != "F")

    @property
    def n_estimated(self) -> int:
        """Estimated parameters: variance parameters (code P), the negative binomial's theta (as
        glmmTMB counts it) and fixed effects."""
        return self.n_params + self.n_dispersion + self.rank

    @property
    def aic(self) -> float:
        self._likelihood_only("AIC")
        return -2.0 * self.loglik + 2.0 * self.n_estimated

    @property
    def bic(self) -> float:
        self._likelihood_only("BIC")
        return -2.0 * self.loglik + self.n_estimated * np.log(self.nobs)

    @cached_property
    def linear_predictor(self) -> pd.Series:
        return pd.Series(self._eta, index=self.design.data.index, name="eta")

    @cached_property
    def fitted(self) -> pd.Series:
        """The mean on the response scale per record: a probability (binomial) or a count (Poisson)."""
        return pd.Series(self.family.inverse_link(self._eta), index=self.design.data.index, name="fitted")

    @property
    def response(self) -> np.ndarray:
        """The response per record: the proportion of successes (binomial) or the count."""
        return self.counts / self.trials if isinstance(self.family, Binomial) else self.counts

    @property
    def residuals(self) -> pd.Series:
        """Response residuals: observed proportion (or count) less the fitted mean."""
        return pd.Series(self.response - self.fitted.to_numpy(), index=self.fitted.index, name="residual")

    @cached_property
    def iterations(self) -> pd.DataFrame:
        rows = self.pql_rounds if self.method == "pql" else self.result.history
        return pd.DataFrame(rows).set_index("iteration")

    @property
    def n_iterations(self) -> int:
        """Newton iterations (Laplace) or PQL re-weightings after the first REML fit."""
        return len(self.pql_rounds if self.method == "pql" else self.result.history) - 1

    @property
    def formulas(self) -> dict:
        """The formulas as given (the fixed one with its cbind() response)."""
        return {**self.spec.formulas, "fixed": self.written}

    @cached_property
    def varcomp(self) -> pd.DataFrame:
        """Variance parameters of the random terms on the link scale (the family fixes the rest),
        and last a negative binomial's ``theta`` (Var(y) = mu + mu^2 / theta)."""
        vc = FittedModel.varcomp.func(self).iloc[:self.problem.params.residual_slice.start]
        d = self.dispersion
        if d is None:
            return vc
        pct = 100.0 * (d.theta - d.previous) / d.previous if d.previous else 0.0
        row = pd.DataFrame({"component": [d.theta], "std.error": [d.std_error], "z.ratio": [d.theta / d.std_error],
                            "bound": [d.code], "%ch": [np.round(pct, 1) + 0.0]}, index=pd.Index(["theta"], name="term"))
        return pd.concat([vc, row])

    def _head_lines(self) -> list:
        f = self.spec.formulas
        out = [f"sparsereml GLMM fit   {self.family.label}; {self.approximation}",
               f"                      fixed: {self.written}"]
        if f.get("random"):
            out.append(f"                      random: {f.get('random')}")
        out.append(self._data_line())
        if self.method == "laplace":
            disp = ", theta" if self.n_dispersion else ""
            out.append(f"logL = {self.loglik:.4f} (Laplace, constants included)   AIC = {self.aic:.2f}   "
                       f"BIC = {self.bic:.2f}   ({self.n_params} variance parameters{disp}, {self.rank} fixed effects)")
            steps = f"{self.n_iterations} Newton iterations"
        else:
            out.append(f"REML logL of the working variate = {self.loglik:.4f} (PQL: not a likelihood of the data)")
            steps = f"{self.n_iterations} PQL re-weightings"
        out += self._status_lines(steps)
        out += [self._equations_line(), "variance components and fixed effects on the link scale"]
        if self.dispersion is not None:
            d = self.dispersion
            out.append("theta: the negative binomial's dispersion, Var(y) = mu + mu^2 / theta (glmmTMB's nbinom2)"
                       + {"F": ", held at the value given", "P": "",
                          "B": f", at its bound {d.theta:g}: no overdispersion beyond the random effects "
                               f"(theta -> infinity is the Poisson)"}[d.code])
        if self.method == "laplace" and not self.exact_hessian:
            out.append("standard errors: the fixed effects' information is X'WX - X'WZ H^-1 Z'WX (the Laplace "
                       "log-determinant's curvature in them, O(1/records per level), left out)")
        return out

    # -- inference not yet defined for GLMMs here: refused by name, never a Gaussian answer -----
    def _not_for_glmm(self, what: str, instead: str):
        raise ModelError(f"{what} of a GLMM is not available: its denominator df and sums of squares are those of a "
                         f"Gaussian model; {instead}")

    def wald(self, ddf: str = "kr", ss: str = "incremental"):
        self._not_for_glmm("wald()", "use m.fixed (z tests of each coefficient) or sr.lrt on nested Laplace fits")

    def anova(self, type: int = 2, ddf: str = "satterthwaite"):
        self._not_for_glmm("anova()", "use m.fixed (z tests of each coefficient) or sr.lrt on nested Laplace fits")

    @property
    def beta_covariance(self) -> np.ndarray | None:
        """Laplace: the fixed effects' covariance from the observed information (None for PQL,
        whose covariance is that of the working equations)."""
        return self._vcov_beta

    def predict(self, classify: str, present=None, levels: dict | None = None, sed: bool = True,
                average: dict | None = None, use=None, scale: str = "link"):
        """Predicted values of a classify table on the link scale (default) or, by the inverse link
        with the delta method, on the response scale (``scale="response"``: probabilities or
        mean counts); arguments otherwise as :meth:`FittedModel.predict`.  Returns a
        :class:`~sparsereml.glmm.predict.GLMMPredictions`; ``pairs()`` gives z tests."""
        from .predict import GLMMPredictions

        if not self.converged:
            warn_user(f"predictions from a fit that did not converge ({self.message})", ConvergenceWarning)
        with self.problem.control.threading():
            return GLMMPredictions(self, classify, present, levels, sed, average, use, scale)

    def heritability_cullis(self, term: str) -> float:
        self._not_for_glmm("Cullis' heritability", "use sr.vpredict on the link-scale components")

    def vcov_fixed(self, adjust: str | None = None) -> pd.DataFrame:
        """Covariance of the fixed effects on the link scale (the one behind ``fixed``'s errors)."""
        if adjust is not None:
            self._not_for_glmm(f"adjust={adjust!r}", "use vcov_fixed() without adjust")
        names = self.design.fixed.names
        V = self._vcov_beta
        if V is None:  # PQL: the fixed effects' block of the working MME's inverse, by p solves
            prob = self.problem
            with self.control.threading():
                prob.hold(self._evaluation)
                E = np.zeros((prob.mme.N, prob.p))
                E[np.arange(prob.p), np.arange(prob.p)] = 1.0
                V = prob.factor.solve(E)[:prob.p]
            V = 0.5 * (V + V.T)
        return pd.DataFrame(V, index=names, columns=names)
