"""Wald F tests of the fixed terms (ASReml's wald table), in MME space.

A term's test is the generalised-least-squares one: with I = X'V^-1X = Phi^-1, and the columns
split into those the test is conditioned on (K), the term's own (J) and the rest (R),

    L = [0_K, S_JJ, S_JR],   S = I_(JR)(JR) - I_(JR)K I_KK^-1 I_K(JR)  (Schur complement),

so that (Lb)'(L Phi L')^-1 (Lb) is the reduction in the GLS sum of squares from adding J to K.
Incremental tests (``F.inc``) condition on the terms before J in the formula; conditional tests
(``F.con``) on every term that does not contain J (marginality: A is not adjusted for A:B).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ModelError
from ..formula.terms import term_label
from .ddf import kr_adjusted, kr_ddf, satterthwaite_ddf
from .fixed_cov import FixedEffectsCovariance
from .information import expected_information, observed_information

__all__ = ["FixedTerm", "fixed_terms", "term_contrast", "WaldTests", "DDF_METHODS"]

DDF_METHODS = ("kr", "satterthwaite", "none")
INTERCEPT = "(Intercept)"


@dataclass(frozen=True)
class FixedTerm:
    """A fixed term: its label, the columns of X it kept and the variables it is made of."""

    label: str
    columns: tuple
    variables: frozenset

    def contained_in(self, other: "FixedTerm") -> bool:
        """Whether ``other`` contains this term (its variables a proper superset)."""
        return self.variables < other.variables


def fixed_terms(design) -> list[FixedTerm]:
    """The fixed terms in formula order, the intercept first; a term all of whose columns were
    aliased has no columns."""
    term_of = list(design.fixed.term_of)
    spec = design.spec.fixed
    out = []
    if spec.intercept:
        out.append(FixedTerm(INTERCEPT, tuple(i for i, t in enumerate(term_of) if t == INTERCEPT), frozenset()))
    for t in spec.terms:
        lab = term_label(t)
        out.append(FixedTerm(lab, tuple(i for i, x in enumerate(term_of) if x == lab),
                             frozenset(f.name for f in t)))
    return out


def term_contrast(info: np.ndarray, given: list, own: list, rest: list) -> np.ndarray:
    """L = [0_given, S_own,own, S_own,rest] (columns in X's order) for the GLS test of ``own``
    conditioned on ``given``, ``rest`` free (see the module docstring)."""
    p = info.shape[0]
    JR = list(own) + list(rest)
    S = info[np.ix_(JR, JR)]
    if given:
        K = list(given)
        S = S - info[np.ix_(JR, K)] @ np.linalg.solve(info[np.ix_(K, K)], info[np.ix_(K, JR)])
    L = np.zeros((len(own), p))
    L[:, JR] = S[: len(own)]
    return L


class WaldTests:
    """The quantities every Wald test of one fit shares, formed once: Phi and its derivatives,
    the information of the variance parameters, the KR-adjusted covariance."""

    def __init__(self, model):
        self.model = model
        problem, ev = model.problem, model.result.evaluation
        self.fc = FixedEffectsCovariance(problem, ev)
        self.b = np.asarray(model.solution[: problem.p], dtype=float)
        self.info = np.linalg.inv(self.fc.phi)
        self.info = 0.5 * (self.info + self.info.T)
        self.free = np.asarray(model.result.codes) == "P"
        self.terms = fixed_terms(problem.design)
        self._observed = None
        self._phi_kr = None

    # -- the variance parameters' side ----------------------------------------------------
    def observed(self) -> np.ndarray:
        if self._observed is None:
            self._observed = observed_information(self.model.problem, self.model.result.evaluation, self.free)
        return self._observed

    def free_list(self, items: list) -> list:
        return [x for x, f in zip(items, self.free) if f]

    def kr_covariance(self) -> tuple[np.ndarray, list, np.ndarray]:
        """(Phi_A, P_i over the estimated parameters, W = inverse expected information), in the
        parameters that enter V linearly: the reported ones (variances and covariances; us() is
        fitted on a Cholesky factor and reported as Sigma's entries)."""
        if self._phi_kr is None:
            problem, ev = self.model.problem, self.model.result.evaluation
            kinds = np.asarray(problem.report_kinds)
            bad = [lab for lab, k in zip(problem.report_labels, kinds) if k not in ("var", "cov")]
            if bad:
                raise ModelError(f"Kenward-Roger needs variance parameters that enter V linearly; "
                                 f"{', '.join(bad[:4])} do not (correlations, loadings); use ddf='satterthwaite'")
            idx = np.flatnonzero(self.free)
            linear = all(k == "var" for k in problem.params.kinds)
            if idx.size < self.free.size and not linear:
                held = [lab for lab, f in zip(problem.params.labels, self.free) if not f]
                raise ModelError(f"Kenward-Roger with a covariance model and parameters held at a bound or fixed "
                                 f"({', '.join(held[:4])}) is not offered; use ddf='satterthwaite'")
            Q = self.fc.Q()[np.ix_(idx, idx)]
            # E in the working parameters; E, P and Q carry over to the reported ones by J^-1
            E_w = expected_information(problem, ev, self.free, self.observed())
            Jinv = np.eye(idx.size) if linear else np.linalg.inv(problem.report(ev.theta)[1])
            Pw = [self.fc.P[i] for i in idx]
            P = [sum(Jinv[a, i] * Pw[a] for a in range(Jinv.shape[0]) if Jinv[a, i] != 0.0)
                 for i in range(Jinv.shape[1])]
            Qr = np.einsum("ai,abpq,bj->ijpq", Jinv, Q, Jinv)
            W = np.linalg.inv(Jinv.T @ E_w @ Jinv)
            self._phi_kr = (kr_adjusted(self.fc.phi, P, Qr, W), P, W)
        return self._phi_kr

    # -- one test ---------------------------------------------------------------------
    def test(self, L: np.ndarray, ddf: str) -> tuple[float, float, int]:
        """(F, denominator df, numerator df) of L b = 0."""
        b, phi = self.b, self.fc.phi
        if ddf == "satterthwaite":
            A = np.linalg.inv(self.observed())
            dphi = self.free_list(self.fc.dphi())
            den, PL, q = satterthwaite_ddf(L, phi, dphi, A)
            d = np.diag(PL @ phi @ PL.T)
            return float(np.sum((PL @ b) ** 2 / d) / q), den, q
        q = L.shape[0]
        if ddf == "kr":
            phi_a, P, W = self.kr_covariance()
            Lb = L @ b
            m, scaling = kr_ddf(L, phi, P, W)
            return float(scaling * (Lb @ np.linalg.solve(L @ phi_a @ L.T, Lb)) / q), m, q
        Lb = L @ b
        return float(Lb @ np.linalg.solve(L @ phi @ L.T, Lb) / q), np.inf, q

    def conditioning(self, k: int, ss: str) -> tuple[list, list]:
        """(terms conditioned on, terms left free) for term k."""
        terms = self.terms
        if ss == "incremental":
            return terms[:k], terms[k + 1:]
        own = terms[k]
        given = [t for i, t in enumerate(terms) if i != k and not own.contained_in(t)]
        rest = [t for i, t in enumerate(terms) if i != k and own.contained_in(t)]
        return given, rest

    def table(self, ddf: str = "kr", ss: str = "incremental") -> pd.DataFrame:
        """The Wald table (see :meth:`FittedModel.wald`)."""
        if ddf not in DDF_METHODS:
            raise ModelError(f"ddf must be one of {', '.join(map(repr, DDF_METHODS))}, got {ddf!r}")
        if ss not in ("incremental", "conditional"):
            raise ModelError(f"ss must be 'incremental' or 'conditional', got {ss!r}")
        aliased = list(self.model.design.fixed.aliased)
        if aliased:
            from ..errors import AliasWarning, warn_user

            shown = ", ".join(aliased[:10]) + (f" and {len(aliased) - 10} more" if len(aliased) > 10 else "")
            warn_user(f"Wald tests of the estimable part: the aliased columns {shown} are left out", AliasWarning)
        rows = []
        for k, term in enumerate(self.terms):
            if not term.columns:
                rows.append(dict(term=term.label, Df=0, denDF=np.nan, **{"F.inc": np.nan}))
                continue
            cols = lambda ts: [c for t in ts for c in t.columns]  # noqa: E731
            given, rest = self.conditioning(k, "incremental")
            F_inc, den_inc, q = self.test(term_contrast(self.info, cols(given), term.columns, cols(rest)), ddf)
            row = dict(term=term.label, Df=q, denDF=den_inc, **{"F.inc": F_inc})
            if ss == "conditional":
                given, rest = self.conditioning(k, "conditional")
                F_con, den_con, _ = self.test(term_contrast(self.info, cols(given), term.columns, cols(rest)), ddf)
                row.update({"denDF": den_con, "F.con": F_con,
                            "Margin": "" if term.label == INTERCEPT else ("A" if rest else "B"),
                            "Conditioned on": ", ".join(t.label for t in given) or "-"})
            rows.append(row)
        df = pd.DataFrame(rows).set_index("term")
        stat = df["F.con"] if ss == "conditional" else df["F.inc"]
        if ddf == "none":
            df["denDF"] = np.nan
            df["Pr"] = stats.chi2.sf(stat * df["Df"], df["Df"])
        else:
            df["Pr"] = stats.f.sf(stat, df["Df"], df["denDF"])
        cols_out = ["Df", "denDF", "F.inc"] + (["F.con", "Margin"] if ss == "conditional" else []) + ["Pr"] \
            + (["Conditioned on"] if ss == "conditional" else [])
        return df[cols_out]
