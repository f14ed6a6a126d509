"""Comparing REML fits: one table of logL, AIC and BIC, with likelihood-ratio tests between nested
models (``sr.compare``), and the test of one pair (``sr.lrt``, which shares the checks and the
test statistic below).

REML log-likelihoods are comparable only between models with the same fixed effects fitted to the
same records (the REML likelihood is that of the error contrasts, which change with X).  One
variance tested at zero has a 50:50 mixture of chi2(0) and chi2(1) as its null distribution
(Self & Liang 1987; Stram & Lee 1994); other differences use chi2(df).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .errors import ModelError
from .fitresults import FitResults
from .results import FittedModel

__all__ = ["compare", "Comparison", "LRTResult", "lrt", "nested"]


@dataclass
class LRTResult:
    """Likelihood-ratio test of two nested REML fits."""

    statistic: float
    df: int
    p_value: float
    mixture: bool

    def __repr__(self) -> str:
        kind = "50:50 mixture of chi2(0) and chi2(1)" if self.mixture else f"chi2({self.df})"
        p = "p < 2.2e-16" if self.p_value < 2.2e-16 else f"p = {self.p_value:.4g}"  # as compare's table: not 0
        return f"LRT statistic = {self.statistic:.4f}, df = {self.df}, {p} ({kind})"


def n_variance_parameters(m: FittedModel) -> int:
    """Variance parameters of ``m`` that are not fixed (P or B): the model's size for a test.  A
    parameter held at its bound is still a parameter of the model, whose estimate is the bound.
    A negative binomial GLMM's estimated theta counts as one."""
    return sum(c != "F" for c in m.codes) + getattr(m, "n_dispersion", 0)


def _dispersion_added(small, big) -> bool:
    """``big`` is ``small`` (a Poisson GLMM) with a negative binomial's theta estimated: the same
    random terms, the Poisson being theta -> infinity, on the boundary."""
    fam_s, fam_b = getattr(small, "family", None), getattr(big, "family", None)
    return (getattr(fam_s, "name", None) == "poisson" and getattr(big, "n_dispersion", 0) == 1
            and getattr(fam_b, "link", None) == fam_s.link and list(small.labels[:-1]) == list(big.labels[:-1]))


def check_comparable(a: FittedModel, b: FittedModel, name_a: str = "the first model",
                     name_b: str = "the second model") -> None:
    """Refuse two fits whose REML log-likelihoods cannot be compared: other records or response,
    or other fixed effects, or likelihoods of different kinds (REML, Laplace, PQL)."""
    ka, kb = getattr(a, "likelihood", "REML"), getattr(b, "likelihood", "REML")
    if ka != kb:
        raise ModelError(f"{name_a} has a {ka} log-likelihood and {name_b} a {kb} one: they cannot be compared; "
                         f"fit both the same way")
    if ka == "PQL":
        raise ModelError("PQL fits have no likelihood of the data (their logL is the REML log-likelihood of the "
                         "working variate, which changes with the fit); compare fits made with method='laplace'")
    if a.nobs != b.nobs or not _same_response(a, b, name_a, name_b):
        raise ModelError(f"{name_a} and {name_b} do not use the same records ({a.nobs} and {b.nobs} records, "
                         "or another response): REML likelihoods are not comparable")
    if a.fixed_names != b.fixed_names:
        raise ModelError(f"REML likelihood-ratio tests need the same fixed effects in both models; {name_a} has "
                         f"{a.formulas.get('fixed')!r} and {name_b} {b.formulas.get('fixed')!r}")


def _same_response(a, b, name_a: str, name_b: str) -> bool:
    """Whether two fits used the same response: record by record when both have their records at
    hand, else by (values, sum of y, sum of y^2) of each (a fit to partitioned data keeps those
    from its cells), equal to 1e-9 (the sum relative to its bound sqrt(n sum y^2))."""
    if a.holds_records and b.holds_records:
        return np.allclose(a.response, b.response)
    for m, name in ((a, name_a), (b, name_b)):
        if m.response_summary is None:
            raise ModelError(f"{name} has neither its records nor a summary of its response (results written "
                             f"by an earlier version without records.csv): fit it again with --out, or with "
                             f"--records, to compare it")
    (na, sa, qa), (nb, sb, qb) = a.response_summary, b.response_summary
    scale = np.sqrt(max(na, 1.0) * max(qa, qb))  # |sum y| <= sqrt(n sum y^2): a centred y sums to ~0
    return bool(na == nb and np.isclose(qa, qb, rtol=1e-9, atol=0.0) and abs(sa - sb) <= 1e-9 * scale)


def _is_fit(m) -> bool:
    return isinstance(m, (FittedModel, FitResults))


_AT = re.compile(r"^at\(([^,()]+),[^()]*\):(.+)$")


def _homogeneous(label: str) -> set:
    """Labels of which ``label`` is one level's variance: ``at(F, l):T`` splits ``F:T`` (and
    ``at(F, l):units`` the residual ``units``) into a variance per level of F."""
    m = _AT.match(label)
    if not m:
        return set()
    factor, term = m.group(1).strip(), m.group(2)
    out = {f"{factor}:{term}"}
    if term == "units":
        out.add("units")
    return out


def nested(small: FittedModel, big: FittedModel) -> bool:
    """Whether ``small`` is a special case of ``big`` as far as their parameter labels tell: ``big``
    has more variance parameters and every label of ``small`` is one of ``big``'s, or is split by
    ``big`` into one variance per level with at() (``units`` by ``at(Trial):units``).  Nestings the
    labels do not show (``Mother + Trial:Mother`` in ``us(Trial):Mother``) count as not nested;
    :func:`lrt` tests such a pair when you know it is nested."""
    if n_variance_parameters(small) >= n_variance_parameters(big):
        return False
    if _dispersion_added(small, big):
        return True
    covered = set(big.labels)
    for lab in big.labels:
        covered |= _homogeneous(lab)
    return set(small.labels) <= covered


def lrt_numbers(small: FittedModel, big: FittedModel, mixture: bool | None = None) -> LRTResult:
    """The test of :func:`lrt` on two fits already checked to be comparable."""
    df = n_variance_parameters(big) - n_variance_parameters(small)
    stat = max(2.0 * (big.loglik - small.loglik), 0.0)
    if mixture is None:  # one variance added, or NB's theta to a Poisson: tested on its boundary
        mixture = df == 1 and (set(small.labels) < set(big.labels) or _dispersion_added(small, big))
    p = 0.5 * stats.chi2.sf(stat, 1) if mixture and df == 1 else float(stats.chi2.sf(stat, df))
    return LRTResult(stat, df, float(p), bool(mixture and df == 1))


def lrt(small: FittedModel, big: FittedModel, mixture: bool | None = None) -> LRTResult:
    """REML likelihood-ratio test of ``small`` against ``big`` (same data and fixed effects).

    The statistic is 2 (logL_big - logL_small) on df = the difference in the number of
    variance parameters.  When ``big`` adds exactly one variance to ``small`` (a variance
    tested at zero, on the boundary) the p-value uses the 50:50 mixture of chi2(0) and
    chi2(1); set ``mixture`` to force or suppress this.  A Poisson GLMM against the negative
    binomial with the same terms (Laplace fits of the same counts: the same likelihood family) is
    such a test too: the Poisson is theta -> infinity, on theta's boundary.
    """
    for x in (small, big):
        if not _is_fit(x):
            raise ModelError(f"lrt() compares two fitted models (sr.fit(...)); got {type(x).__name__}")
    check_comparable(small, big)
    k_small, k_big = n_variance_parameters(small), n_variance_parameters(big)
    if k_big <= k_small:
        raise ModelError(f"the second model must have more variance parameters than the first ({k_big} vs {k_small})")
    return lrt_numbers(small, big, mixture)


class Comparison:
    """Fits side by side (:func:`compare`): ``table`` is a DataFrame with one row per model."""

    def __init__(self, table: pd.DataFrame):
        self.table = table

    def formatted(self) -> pd.DataFrame:
        """The table as text, numbers as R prints them (logLik to 4 decimals, AIC and BIC to 2,
        p-values below 2.2e-16 as such) and blanks where a row has no test."""
        t = self.table.astype(object).copy()
        fmts = {"logLik": ".4f", "AIC": ".2f", "BIC": ".2f", "statistic": ".4f", "p_value": ".4g"}
        for col, fmt in fmts.items():
            t[col] = ["" if pd.isna(v) else "<2.2e-16" if col == "p_value" and v < 2.2e-16 else format(v, fmt)
                      for v in self.table[col]]
        t["df"] = ["" if pd.isna(v) else str(int(v)) for v in self.table["df"]]
        return t

    def __repr__(self) -> str:
        return "REML fits compared (same fixed effects and records)\n" + self.formatted().to_string()

    __str__ = __repr__

    def _repr_html_(self) -> str:
        return self.formatted().to_html()


def compare(*models: FittedModel, names: list | None = None) -> Comparison:
    """Compare REML fits of the same data and fixed effects, lme4's ``anova`` style.

    Parameters
    ----------
    *models : FittedModel
        Two or more fits, usually from smaller to bigger.
    names : list of str, optional
        Row names (default ``"model 1"``, ``"model 2"``, ...).

    Returns
    -------
    Comparison
        ``.table``: one row per model with ``logLik`` (REML), ``n_params`` (variance parameters
        not fixed: P or B), ``AIC`` and ``BIC`` (the fits' own, which count the P parameters), and
        for a model nested in an earlier one (:func:`nested`) the likelihood-ratio test against
        the largest such: ``vs`` (its name), ``statistic``, ``df``, ``p_value`` (50:50 mixture of
        chi2(0) and chi2(1) when one variance is added, as :func:`lrt`); ``notes`` says why a row
        has no test, and which parameters are held at a bound.

    Raises
    ------
    ModelError
        Fewer than two models, something that is not a fitted model, or fits whose REML
        log-likelihoods cannot be compared (other fixed effects, records or response), naming them.
    """
    if len(models) == 1 and isinstance(models[0], (list, tuple)):
        models = tuple(models[0])  # compare([m1, m2]) as well as compare(m1, m2)
    names = _names(models, names)
    for name, m in zip(names, models):
        if not _is_fit(m):
            raise ModelError(f"compare() takes fitted models (sr.fit(...)); {name} is a {type(m).__name__}")
    if len(models) < 2:
        raise ModelError(f"compare() needs at least two fitted models; got {len(models)}")
    for name, m in zip(names[1:], models[1:]):
        check_comparable(models[0], m, names[0], name)
    rows = []
    for i, (name, m) in enumerate(zip(names, models)):
        row = {"logLik": m.loglik, "n_params": n_variance_parameters(m), "AIC": m.aic, "BIC": m.bic,
               "vs": "", "statistic": np.nan, "df": np.nan, "p_value": np.nan}
        notes = []
        earlier = [j for j in range(i) if nested(models[j], m)]
        if earlier:
            # the largest nested earlier model (the later one on a tie): the most specific test
            j = max(earlier, key=lambda j: (n_variance_parameters(models[j]), j))
            t = lrt_numbers(models[j], m)
            row.update(vs=names[j], statistic=t.statistic, df=t.df, p_value=t.p_value)
            if t.mixture:
                notes.append("50:50 chi2(0):chi2(1)")
        elif i > 0:
            notes.append("not nested in an earlier model")
        held = sum(c == "B" for c in m.codes)
        if held:
            notes.append(f"{held} at a bound (B)")
        if not m.converged:
            notes.append("NOT converged")
        row["notes"] = "; ".join(notes)
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index(names, name="model"))
    table["df"] = table["df"].astype("Int64")
    return Comparison(table)


def _names(models: tuple, names) -> list:
    if names is None:
        return [f"model {i + 1}" for i in range(len(models))]
    names = [names] if isinstance(names, str) else list(names)
    if len(names) != len(models) or not all(isinstance(n, str) for n in names):
        raise ModelError(f"names must be one string per model ({len(models)}); got {names!r:.80}")
    if len(set(names)) != len(names):
        raise ModelError(f"names must differ from each other; got {names}")
    return names
