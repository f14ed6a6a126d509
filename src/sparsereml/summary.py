"""A fitted model's summary: one content model (:class:`~sparsereml.report_content.Report`)
printed as text by ``summary()``, shown as HTML by Jupyter and opening the HTML report."""
from __future__ import annotations

import pandas as pd

from .report_content import Report

__all__ = ["SummaryMethods"]


class SummaryMethods:
    """The summary of :class:`~sparsereml.results.FittedModel` (a GLMM's changes its head lines)."""

    def report_content(self, n_fixed: int = 12) -> Report:
        """The summary's content as sections (model, likelihood, equations; variance components;
        covariance models and residual grids; fixed effects), rendered by :meth:`summary` as text
        and by ``_repr_html_`` as HTML."""
        rep = Report()
        head = rep.add()
        for text in self._head_lines():
            head.line(text)
        rep.add("Variance components").table(self.varcomp)
        notes = self._structure_notes()
        if notes:
            sec = rep.add()
            for b in notes:
                if isinstance(b, pd.DataFrame):
                    sec.table(b)
                elif b:
                    sec.line(b)
        fx = self.fixed
        title = f"Fixed effects ({len(fx)})" if len(fx) <= n_fixed else f"Fixed effects (first {n_fixed} of {len(fx)})"
        sec = rep.add(title).table(fx.head(n_fixed))
        if self.design.fixed.aliased:
            sec.line(f"aliased and dropped: {', '.join(self.design.fixed.aliased)}")
        return rep

    def _head_lines(self) -> list:
        """The summary's first section: model, data, likelihood, convergence, equations."""
        f = self.spec.formulas
        out = [f"sparsereml REML fit   fixed: {f.get('fixed')}"]
        if f.get("random"):
            out.append(f"                      random: {f.get('random')}")
        out.append(f"                      residual: {self.spec.residual.label}")
        out.append(self._data_line())
        out.append(f"logL = {self.loglik:.4f} (REML, lme4 convention); ASReml convention {self.loglik_asreml:.4f}")
        out.append(f"AIC = {self.aic:.2f}   BIC = {self.bic:.2f}   ({self.n_params} variance parameters)")
        out += self._status_lines(f"{self.n_iterations} AI-REML iterations")
        return out + [self._equations_line()]

    def _data_line(self) -> str:
        dropped = f", {self.n_dropped} rows dropped for a missing response" if self.n_dropped else ""
        if self.n_dropped_predictors:
            dropped += f", {self.n_dropped_predictors} for missing predictors"
        if self.n_dropped_infinite:
            dropped += f", {self.n_dropped_infinite} for infinite values"
        return f"n = {self.nobs}{dropped}; rank of X = {self.rank}"

    def _status_lines(self, steps: str) -> list:
        status = "converged" if self.converged else "NOT converged"
        out = [f"{status} in {steps}, {self.seconds.get('total', 0):.2f} s ({self.backend})"]
        return out + ([f"  {self.message}"] if not self.converged else [])

    def _equations_line(self) -> str:
        eq = self.equations
        return (f"mixed-model equations: {eq.unknowns:,} unknowns ({eq.absorbed:,} absorbed), factor "
                f"{eq.factor_nonzeros:,} nonzeros, largest supernode {eq.largest_supernode:,} ({eq.factorisation})")

    def summary(self, n_fixed: int = 12) -> str:
        """A compact report: model, likelihood, variance components, fixed effects."""
        return self.report_content(n_fixed).to_text()

    def _repr_html_(self) -> str:
        """The summary as HTML, for Jupyter."""
        return self.report_content().to_html()

    def _structure_notes(self, max_levels: int = 8) -> list:
        """Covariance models (their correlations when small, fa's rotation constraint) and
        residual grids, for the summary."""
        out = [f"{rb.term.written}: one effect per level of the parts together ({rb.size:,} levels)"
               + (f"; {rb.selfs:,} records name one level twice (selfs: entry 2)" if rb.selfs else "")
               for rb in self.design.random if rb.term.overlays]
        names = [rb.label for rb in self.design.random if rb.cov_levels is not None] + list(self._residual_models())
        for name in names:
            v = self.vcov(name)
            R = v["correlation"]
            line = f"{name}: correlations between its {len(R)} levels"
            if "loadings" in v:
                line += ("; loadings identified by lambda_ir = 0 for r > i (level "
                         f"{R.index[0]} loads on factor 1 only), up to sign")
            out.append(line + (":" if len(R) <= max_levels else f" (m.vcov({name!r}))"))
            if len(R) <= max_levels:
                out.append(R.round(3))
        grids = [(lab, g) for lab, g in zip(self.design.residual.labels, self.design.residual.grids) if g is not None]
        for lab, g in grids[:max_levels]:
            dims = " x ".join(f"{d.label} ({m})" for d, m in zip(g.dims, g.shape))
            out.append(f"residual {lab}: {dims} grid, {g.n_cells:,} cells, {g.missing.size:,} empty (missing values)")
        if len(grids) > max_levels:
            out.append(f"... and {len(grids) - max_levels} more residual grids")
        return out

    def __repr__(self) -> str:
        return self.summary()

