"""The inference methods of a fitted model (Wald tests, predictions, Cullis heritability), kept
apart from its tables; :class:`~sparsereml.FittedModel` inherits them."""
from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ..errors import ConvergenceWarning, ModelError, UnknownName, warn_user

__all__ = ["FixedEffectsInference"]


class FixedEffectsInference:
    """Wald tests, predictions and generalised heritability of a fit (a mixin of FittedModel,
    which supplies problem, result, design, solution, converged, message and its tables)."""

    # -- tests of fixed effects ------------------------------------------------------------
    @cached_property
    def wald_tests(self):
        """The shared quantities of this fit's Wald tests and predictions' df (formed once)."""
        from .wald import WaldTests

        if not self.converged:
            warn_user(f"Wald tests of a fit that did not converge ({self.message})", ConvergenceWarning)
        with self.problem.control.threading():
            return WaldTests(self)

    def wald(self, ddf: str = "kr", ss: str = "incremental") -> pd.DataFrame:
        """Wald F tests of the fixed terms, as ASReml-R's wald table.

        Parameters
        ----------
        ddf : {"kr", "satterthwaite", "none"}
            Denominator df: Kenward-Roger (with its adjusted covariance of the fixed effects and
            its scaling of F, as pbkrtest; for models whose variance parameters are variances and
            covariances, which enter V linearly), Satterthwaite (as lmerTest; any model), or none
            (chi-square tests).
        ss : {"incremental", "conditional"}
            ``F.inc`` tests each term given the terms before it in the formula; ``"conditional"``
            adds ``F.con``, each term given every term that does not contain it (marginality),
            ``Margin`` (A: contained in another term, B: in none) and the terms conditioned on.

        Returns
        -------
        DataFrame indexed by term: Df, denDF, F.inc, [F.con, Margin,] Pr [, Conditioned on].
        ``Pr`` is the p-value of the last F column.  Aliased columns (``design.fixed.aliased``) are
        left out; a term with none left has Df 0.
        """
        with self.problem.control.threading():  # one BLAS thread for the small dense blocks
            return self.wald_tests.table(ddf, ss)

    def predict(self, classify: str, present=None, levels: dict | None = None, sed: bool = True,
                average: dict | None = None, use=None):
        """Predicted values of a classify table with standard errors, as predict.asreml.

        Parameters
        ----------
        classify : str
            Factors joined by ':', e.g. ``"Trial"``, ``"Mother"``, ``"Trial:Mother"``.
        present : list of str, optional
            Fixed factors not in classify averaged only over the combinations in the data (the
            others with equal weights over all their levels).
        levels : dict, optional
            Levels of a classify factor to predict (default all), or a covariate's value
            (default its mean).
        average : dict, optional
            Weights over the levels of a fixed factor averaged over (default equal weights).
        use : list of str, optional
            Random terms outside classify to include, their BLUPs averaged over the levels that
            occur with each cell in the data (e.g. ``use=["Trial:Mother"]`` with ``"Mother"``).
        sed : bool
            Form the table's prediction error covariance (``.vcov``, ``.sed``, ``.pairs()``).

        Random terms whose variables all lie in classify add their BLUPs; other random terms
        are ignored unless named in ``use``.  Returns a :class:`~sparsereml.inference.predict.Predictions` with
        ``.table``, ``.sed``, ``.avsed``, ``.lsd()``, ``.pairs()`` and ``.vcov``.
        """
        from .predict import predict

        if not self.converged:
            warn_user(f"predictions from a fit that did not converge ({self.message})", ConvergenceWarning)
        with self.problem.control.threading():
            return predict(self, classify, present, levels, sed, average, use)

    def heritability_cullis(self, term: str) -> float:
        """Cullis, Smith & Coombes' (2006) generalised heritability of a random term with one
        variance: 1 - v / (2 sigma2), v the mean prediction error variance of the differences
        between its BLUPs (exact: from the trace of its block of C^-1 and one solve)."""
        prob = self.problem
        terms = [rb.label for rb in prob.design.random]
        if term not in terms:
            raise UnknownName(f"{term!r} is not a random term of this model (random terms: {', '.join(terms)})")
        k = terms.index(term)
        st, off, sl = prob.structures[k], prob.mme.offsets[k], prob.params.term_slices[k]
        if st.n_params != 1:
            raise ModelError(f"{term!r} has {st.n_params} variance parameters; Cullis' heritability needs one")
        q = st.size
        pev = self._pev(off, q)
        e = np.zeros(prob.mme.N)
        e[off: off + q] = 1.0
        with prob.control.threading():
            total = float(e @ prob.factor.solve(e))  # 1'C^uu 1
        v = (2.0 * q * pev.sum() - 2.0 * total) / (q * (q - 1))
        return 1.0 - v / (2.0 * float(self.theta_working[sl][0]))

    def vcov_fixed(self, adjust: str | None = None) -> pd.DataFrame:
        """Covariance of the fixed effects (X'V^-1X)^-1 at the estimates, or with
        ``adjust="kr"`` Kenward-Roger's adjusted covariance (pbkrtest's vcovAdj)."""
        w = self.wald_tests
        if adjust not in (None, "kr"):
            raise ModelError(f"adjust must be None or 'kr', got {adjust!r}")
        with self.problem.control.threading():
            V = w.fc.phi if adjust is None else w.kr_covariance()[0]
        names = self.design.fixed.names
        return pd.DataFrame(V, index=names, columns=names)

    def anova(self, type: int = 2, ddf: str = "satterthwaite") -> pd.DataFrame:
        """The Wald tests with lmerTest's column names: ``type=1`` the incremental (sequential)
        tests, ``type=2`` the conditional ones (each term given all terms not containing it);
        ``ddf`` as in :meth:`wald`.  The intercept is left out, as in lmerTest."""
        if type not in (1, 2):
            raise ModelError(f"anova type must be 1 (incremental) or 2 (conditional), got {type!r}; type 3 "
                             f"tests are not offered: they test main effects averaged over interactions")
        ss = "incremental" if type == 1 else "conditional"
        t = self.wald(ddf, ss)
        F = t["F.inc"] if type == 1 else t["F.con"]
        out = pd.DataFrame({"NumDF": t["Df"], "DenDF": t["denDF"], "F value": F, "Pr(>F)": t["Pr"]})
        return out.drop(index="(Intercept)", errors="ignore")
