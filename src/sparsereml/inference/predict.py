"""Predicted values of a classify table with standard errors and SEDs (predict.asreml's rules).

A prediction is a linear function k'[b; u] of the fixed and random effects.  For each cell of
the classify table: fixed terms are evaluated at the cell's levels, averaged with equal weights
over the levels of fixed factors not in classify (``present``: only over the combinations in the
data; ``average``: given weights), covariates at their mean; random terms whose variables all lie
in classify add their BLUP; other random terms are ignored unless named in ``use`` (then their
BLUPs are averaged over the levels that occur with the cell in the data).  The prediction error covariance of the table is K C^-1 K' (C^-1
from solves with the fit's factor, a block of cells at a time, so no matrix larger than the table
asks for is formed); a random effect of a combination absent from the data (a mother in a trial
where she was not planted) is predicted as 0 with its variance as prediction error.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from ..design.coding import encode
from ..design.fixed import _is_factor, fixed_columns
from ..errors import ModelError
from ..formula.terms import VM, Groups, Var

__all__ = ["Predictions", "predict", "check_classify"]

CHUNK = 256  # cells whose columns of C^-1 K' are solved for at once
MAX_SED = 20_000  # cells above which the SED matrix is not formed


def _classify_vars(classify: str) -> list[str]:
    if not isinstance(classify, str) or not classify.strip():
        raise ModelError(f"classify must name factors joined by ':', e.g. 'Trial' or 'Trial:Mother'; got {classify!r}")
    return [v.strip() for v in classify.split(":")]


def check_classify(design, classify: str) -> list[str]:
    """The variables of ``classify``, each refused unless a fixed or random term of the model
    uses it (checked before a fit, e.g. by the command line)."""
    names = _classify_vars(classify)
    fixed_vars = {v.name for t in design.spec.fixed.terms for v in t}
    random_vars = {f.name for rb in design.random for f in rb.term.factors if isinstance(f, (Var, VM))}
    for name in names:
        if name not in fixed_vars and name not in random_vars:
            raise ModelError(f"classify: {name!r} is not a variable of the model's terms (fixed: "
                             f"{', '.join(sorted(fixed_vars)) or 'none'}; random: "
                             f"{', '.join(sorted(random_vars)) or 'none'})")
    return names


def _overlay_levels(model, name: str) -> list:
    """Levels an and() overlay adds to column ``name`` (the first part of the overlay): a parent
    that is only ever a father still has an effect of ``Mother + and(Father)`` to predict."""
    out: dict = {}
    for rb in model.design.random:
        names = [f.name for f in rb.term.factors]
        if not rb.term.overlays or name not in names:
            continue
        k = names.index(name)
        for label in rb.levels:
            parts = str(label).split(":")
            if len(parts) == len(names) + (1 if rb.cov_levels is not None else 0):
                out[parts[k + (1 if rb.cov_levels is not None else 0)]] = None
    return list(out)


class _Grid:
    """The factor levels the prediction averages over: classify cells x averaged combinations."""

    def __init__(self, model, classify: list, present: list, levels: dict, average: dict | None = None):
        design = model.design
        cols = design.data.columns
        fixed_vars = {v.name: v for t in design.spec.fixed.terms for v in t}
        for name in present:
            if name not in fixed_vars or name in classify:
                raise ModelError(f"present: {name!r} must be a fixed factor of the model not in classify")
        self.levels = {}
        for name in classify + [v for v in fixed_vars if v not in classify]:
            var = fixed_vars.get(name, Var(name, as_factor=True))
            series = cols[name]
            if name in fixed_vars and not _is_factor(var, series):
                continue
            lev = list(encode(series, name).levels)
            lev += [x for x in _overlay_levels(model, name) if x not in set(lev)]
            if name in levels:
                asked = [str(x) for x in np.atleast_1d(levels[name])]
                bad = [x for x in asked if x not in lev]
                if bad:
                    raise ModelError(f"levels: {bad[0]!r} is not a level of {name!r} (levels: {', '.join(lev[:8])}"
                                     f"{' ...' if len(lev) > 8 else ''})")
                lev = asked
            self.levels[name] = lev
        self.classify = classify
        self.averaged = [v for v in self.levels if v not in classify]
        self.covariates = {v: float(np.mean(cols[v].to_numpy(dtype=float))) for v in fixed_vars
                           if v not in self.levels}
        for name, value in levels.items():
            if name in self.covariates:
                self.covariates[name] = float(value)
            elif name not in self.levels:
                raise ModelError(f"levels: {name!r} is not a factor or covariate of the model")
        self.cells = list(itertools.product(*[self.levels[v] for v in classify]))
        self.rows = self._rows(model, present)
        self.rows["_weight"] = self._weights(average or {})

    def _weights(self, average: dict) -> np.ndarray:
        """Weight of each grid row within its cell: the product of the averaged factors' level
        weights (``average``: factor -> weights over its levels; default equal), normalised."""
        w = np.ones(len(self.rows))
        for name, weights in average.items():
            if name not in self.averaged:
                raise ModelError(f"average: {name!r} is not a fixed factor averaged over (averaged: "
                                 f"{', '.join(self.averaged) or 'none'})")
            weights = np.asarray(weights, dtype=float).ravel()
            lev = self.levels[name]
            if weights.size != len(lev) or np.any(weights < 0) or not np.isfinite(weights).all() or weights.sum() == 0:
                raise ModelError(f"average: {name!r} needs {len(lev)} non-negative weights, one per level "
                                 f"({', '.join(lev[:6])}{' ...' if len(lev) > 6 else ''}), not all zero")
            pos = {lv: i for i, lv in enumerate(lev)}
            w *= weights[self.rows[name].map(pos).to_numpy()]
        total = np.bincount(self.rows["_cell"].to_numpy(), weights=w, minlength=len(self.cells))
        return w / np.maximum(total[self.rows["_cell"].to_numpy()], 1e-300)

    def _rows(self, model, present: list) -> pd.DataFrame:
        """One row per (cell, averaged combination), with the cell's index."""
        combos = list(itertools.product(*[self.levels[v] for v in self.averaged])) or [()]
        frame = pd.DataFrame([c + a + (i,) for i, c in enumerate(self.cells) for a in combos],
                             columns=self.classify + self.averaged + ["_cell"])
        if present:
            keys = self.classify + present
            cols = model.design.data.columns
            seen = pd.DataFrame({k: cols[k].astype(str).to_numpy() for k in keys}).drop_duplicates()
            frame = frame.merge(seen, on=keys, how="inner").sort_values("_cell", kind="stable")
        return frame.reset_index(drop=True)

    def columns(self) -> dict:
        """The grid as columns coded like the fit's data."""
        out = {v: pd.Categorical(self.rows[v], categories=self.levels[v]) for v in self.levels}
        out = {k: pd.Series(v) for k, v in out.items()}
        n = len(self.rows)
        out.update({v: pd.Series(np.full(n, x)) for v, x in self.covariates.items()})
        return out


def _fixed_part(model, grid: _Grid) -> np.ndarray:
    """(cells x p) averaged rows of X."""
    design = model.design
    n = len(grid.rows)
    blocks, names, _ = fixed_columns(design.spec.fixed, grid.columns(), n)
    Xg = sp.hstack(blocks, format="csc") if blocks else sp.csc_matrix((n, 0))
    pos = {nm: i for i, nm in enumerate(names)}
    Xg = Xg[:, [pos[nm] for nm in design.fixed.names]]
    avg = sp.csr_matrix((grid.rows["_weight"].to_numpy(), (grid.rows["_cell"].to_numpy(), np.arange(n))),
                        shape=(len(grid.cells), n))
    return np.asarray((avg @ Xg).todense())


def _random_part(model, grid: _Grid, use: list):
    """(cells x N) BLUP columns of the random terms inside classify (and of those named in
    ``use``, averaged over their levels that occur with the cell in the data), the prior variance
    of the effects absent from the data, and a status per cell."""
    problem = model.problem
    N, cells = problem.mme.N, grid.cells
    rows, cols, vals, extra = [], [], [], np.zeros(len(cells))
    status = ["estimated"] * len(cells)
    theta = model.theta_working
    labels = [rb.label for rb in problem.design.random]
    used = {v.name for t in problem.design.spec.fixed.terms for v in t}  # variables of included terms
    for name in use:
        if name not in labels:
            raise ModelError(f"use: {name!r} is not a random term of the model (random terms: {', '.join(labels)})")
    for rb, off, st, sl in zip(problem.design.random, problem.mme.offsets, problem.structures,
                               problem.params.term_slices):
        if rb.label in use and rb.values is not None:
            raise ModelError(f"use: {rb.term.written!r} has several entries (or a covariate) per record; predictions "
                             f"average only plain terms over a classify: classify by its levels instead "
                             f"(predict({', '.join(f.name for f in rb.term.factors)!r}))")
        names = [f.name for f in rb.term.factors if isinstance(f, (Var, VM))]
        plain = len(names) == len(rb.term.factors) and rb.term.at is None and rb.term.struct is None
        if rb.label in use and plain and not set(names) <= set(grid.classify):
            used |= set(names)
            r, c, v = _used_term(model, grid, rb, off)
            rows += r
            cols += c
            vals += v
            for cell in set(range(len(cells))) - set(r):
                status[cell] = f"{rb.label} has no level with this cell"
            continue
        if not names or not set(names) <= set(grid.classify):
            continue
        if not plain:
            raise ModelError(f"predict: the random term {rb.label!r} lies in classify but has a structure "
                             f"(at(), a covariance model); its predictions are not offered yet")
        used |= set(names)
        where = {lab: i for i, lab in enumerate(rb.levels)}
        idx = [grid.classify.index(v) for v in names]
        for c, cell in enumerate(cells):
            lab = ":".join(cell[i] for i in idx)
            j = where.get(lab)
            if j is None:
                extra[c] += float(theta[sl][0]) if st.n_params == 1 else np.nan
                status[c] = f"{rb.label} not in the data"
            else:
                rows.append(c)
                cols.append(off + j)
                vals.append(1.0)
    idle = [v for v in grid.classify if v not in used]
    if idle:  # every level would get the same prediction
        terms = [rb.label for rb in problem.design.random if idle[0] in
                 {f.name for f in rb.term.factors if isinstance(f, (Var, VM))}]
        raise ModelError(f"classify: no fixed term and no random term inside classify uses {idle[0]!r}, so its "
                         f"levels would all be predicted alike; classify by a whole term"
                         f"{' (' + ', '.join(repr(t) for t in terms) + ')' if terms else ''} or name one in use=")
    K = sp.csr_matrix((vals, (rows, cols)), shape=(len(cells), N))
    return K, extra, status


def _used_term(model, grid: _Grid, rb, off: int) -> tuple[list, list, list]:
    """A random term named in ``use``: each cell averages, with equal weights, the term's levels
    that occur with it in the data."""
    data = model.design.data.columns
    index = {cell: i for i, cell in enumerate(grid.cells)}
    keys = zip(*[data[v].astype(str).to_numpy() for v in grid.classify])
    cell_of = np.array([index.get(k, -1) for k in keys])
    col = np.asarray(rb.record_column)
    ok = (cell_of >= 0) & (col >= 0)
    pairs = np.unique(np.column_stack([cell_of[ok], col[ok]]), axis=0)
    if pairs.size == 0:
        return [], [], []
    count = np.bincount(pairs[:, 0], minlength=len(grid.cells))
    return pairs[:, 0].tolist(), (off + pairs[:, 1]).tolist(), (1.0 / count[pairs[:, 0]]).tolist()


class Predictions:
    """Predicted values of a classify table (see :meth:`FittedModel.predict`).

    Attributes
    ----------
    table : DataFrame
        The classify columns, ``predicted.value``, ``std.error`` and ``status``.
    """

    def __init__(self, model, classify: str, present=None, levels=None, sed: bool = True, average=None, use=None):
        present = list(present or [])
        grp = next((f for t in model.design.spec.fixed.terms for f in t if isinstance(f, Groups)), None)
        if grp is not None:  # the grid has no individuals to take Q's rows from
            raise ModelError(f"predict() with fixed genetic groups ({grp.label}) is not offered yet: the group "
                             f"effects are in m.fixed and each individual's Q g + a in m.breeding_values(...)")
        grid = _Grid(model, check_classify(model.design, classify), present, dict(levels or {}), average)
        problem = model.problem
        p = problem.p
        KX = _fixed_part(model, grid)
        KZ, extra, status = _random_part(model, grid, list(use or []))
        K = (sp.hstack([sp.csr_matrix(KX), sp.csr_matrix((KX.shape[0], problem.mme.N - p))]) + KZ).tocsr()
        value = K @ model.solution
        self.classify, self.fixed_only = classify, KZ.nnz == 0 and not np.any(extra)
        self._K, self._KX, self._extra, self._model = K, KX, extra, model
        problem.hold(model.result.evaluation)
        self._V = self._covariance(K, extra, keep=sed and len(grid.cells) <= MAX_SED)
        se = np.sqrt(np.maximum(self._diag, 0.0))
        self.table = pd.DataFrame(grid.cells, columns=grid.classify)
        self.table["predicted.value"] = np.asarray(value).ravel()
        self.table["std.error"] = se
        self.table["status"] = status
        self._labels = [":".join(c) for c in grid.cells]

    def _covariance(self, K: sp.csr_matrix, extra: np.ndarray, keep: bool):
        """K C^-1 K' + diag(extra), a block of cells at a time; kept whole when ``keep``, else only
        its diagonal and the SEDs' summary."""
        factor = self._model.problem.factor
        n = K.shape[0]
        KT = K.T.tocsc()
        V = np.empty((n, n)) if keep else None
        diag = np.empty(n)
        summary = _SedSummary()
        for a in range(0, n, CHUNK):
            b = min(a + CHUNK, n)
            block = self._columns(K, factor.solve(KT[:, a:b].toarray()), a, b)
            block[np.arange(a, b), np.arange(b - a)] += extra[a:b]
            diag[a:b] = block[np.arange(a, b), np.arange(b - a)]
            if keep:
                V[:, a:b] = block
            else:  # the pairs i < j of these columns: every row's diagonal is known by now
                summary.add(diag[:b], diag[a:b], block[:b], a)
        self._diag = diag
        if not keep:
            self._sed_summary = summary.result()
        return V

    def _columns(self, K: sp.csr_matrix, X: np.ndarray, a: int, b: int) -> np.ndarray:
        """Columns a..b-1 of K C^-1 K' from X = C^-1 K'[:, a:b] (a GLMM's predictions add a
        correction here)."""
        return np.asarray(K @ X)

    # -- tables ---------------------------------------------------------------------
    @property
    def has_vcov(self) -> bool:
        """Whether the table's covariance (and so ``.sed`` and ``.pairs()``) was formed."""
        return self._V is not None

    @property
    def vcov(self) -> pd.DataFrame:
        """Prediction error covariance of the table (cells x cells)."""
        if self._V is None:
            raise ModelError(f"the table has {len(self._labels):,} cells: its covariance is not formed above "
                             f"{MAX_SED:,} or without sed=True")
        return pd.DataFrame(self._V, index=self._labels, columns=self._labels)

    @property
    def sed(self) -> pd.DataFrame:
        """Standard errors of the differences between cells."""
        V = self.vcov.to_numpy()
        d = np.diag(V)
        sed = np.sqrt(np.maximum(d[:, None] + d[None, :] - 2.0 * V, 0.0))
        np.fill_diagonal(sed, np.nan)
        return pd.DataFrame(sed, index=self._labels, columns=self._labels)

    @property
    def avsed(self) -> pd.Series:
        """Smallest, mean and largest SED, and the mean variance of a difference ("v.mean")."""
        if self._V is None:
            return self._sed_summary
        V = self._V
        d = np.diag(V)
        var = d[:, None] + d[None, :] - 2.0 * V
        off = ~np.eye(len(d), dtype=bool)
        sed = np.sqrt(np.maximum(var[off], 0.0))
        return pd.Series({"min": sed.min(), "mean": sed.mean(), "max": sed.max(), "v.mean": var[off].mean()})

    def lsd(self, alpha: float = 0.05, df: float | None = None) -> pd.Series:
        """Least significant differences t_{1-alpha/2, df} x SED (normal quantile without ``df``):
        smallest, mean and largest over the pairs."""
        q = stats.t.isf(alpha / 2, df) if df is not None else stats.norm.isf(alpha / 2)
        s = self.avsed
        return pd.Series({"min": q * s["min"], "mean": q * s["mean"], "max": q * s["max"]})

    def pairs(self, ddf: str = "satterthwaite", adjust: str | None = None) -> pd.DataFrame:
        """Every pairwise difference: estimate, SE, df, t and p-value.

        ``ddf``: Satterthwaite or Kenward-Roger df (t tests, as emmeans; KR with its adjusted
        covariance) for a table of fixed effects only; with BLUPs in the table, or ``"none"``,
        normal tests (df infinite).  ``adjust="bonferroni"`` or ``"holm"`` for multiplicity."""
        from .ddf import kr_ddf, satterthwaite_ddf
        from .wald import DDF_METHODS

        if ddf not in DDF_METHODS:
            raise ModelError(f"ddf must be one of {', '.join(map(repr, DDF_METHODS))}, got {ddf!r}")
        V = self.vcov.to_numpy()
        v = self.table["predicted.value"].to_numpy()
        i, j = np.triu_indices(len(v), 1)
        est = v[i] - v[j]
        se = np.sqrt(np.maximum(V[i, i] + V[j, j] - 2.0 * V[i, j], 0.0))
        df = np.full(est.size, np.inf)
        if ddf != "none" and self.fixed_only:
            w = self._model.wald_tests
            L = self._KX[i] - self._KX[j]
            if ddf == "kr":
                with self._model.problem.control.threading():
                    phi_a, P, W = w.kr_covariance()
                se = np.sqrt(np.einsum("ij,jk,ik->i", L, phi_a, L))
                df = np.array([kr_ddf(l[None], w.fc.phi, P, W)[0] for l in L])
            else:
                with self._model.problem.control.threading():
                    A = np.linalg.inv(w.observed())
                dphi = w.free_list(w.fc.dphi())
                df = np.array([satterthwaite_ddf(l[None], w.fc.phi, dphi, A)[0] for l in L])
        t = est / se
        p = 2.0 * stats.t.sf(np.abs(t), df)
        p = _adjusted(p, adjust)
        lab = np.asarray(self._labels, dtype=object)
        return pd.DataFrame({"contrast": [f"{a} - {b}" for a, b in zip(lab[i], lab[j])], "estimate": est,
                             "std.error": se, "df": df, "t.ratio": t, "p.value": p})

    def __repr__(self) -> str:
        return f"Predictions of {self.classify} ({len(self.table)} cells)\n{self.table.to_string(index=False)}"


def _adjusted(p: np.ndarray, adjust: str | None) -> np.ndarray:
    if adjust is None:
        return p
    if adjust == "bonferroni":
        return np.minimum(p * p.size, 1.0)
    if adjust == "holm":
        order = np.argsort(p)
        adj = np.maximum.accumulate(p[order] * (p.size - np.arange(p.size)))
        out = np.empty_like(p)
        out[order] = np.minimum(adj, 1.0)
        return out
    raise ModelError(f"adjust must be None, 'bonferroni' or 'holm', got {adjust!r}")


class _SedSummary:
    """Smallest, mean and largest SED, and the mean variance of a difference, accumulated over
    blocks of columns of the covariance without keeping them."""

    def __init__(self):
        self.lo, self.hi, self.total, self.var_total, self.count = np.inf, -np.inf, 0.0, 0.0, 0

    def add(self, d_rows: np.ndarray, d_cols: np.ndarray, block: np.ndarray, a: int) -> None:
        """Columns a, a+1, ... of V (rows 0 .. a + width - 1): the pairs with row < column."""
        var = d_rows[:, None] + d_cols[None, :] - 2.0 * block
        upper = np.arange(d_rows.size)[:, None] < (a + np.arange(d_cols.size))[None, :]
        v = var[upper]
        sed = np.sqrt(np.maximum(v, 0.0))
        self.lo, self.hi = min(self.lo, sed.min(initial=np.inf)), max(self.hi, sed.max(initial=-np.inf))
        self.total, self.var_total, self.count = self.total + sed.sum(), self.var_total + v.sum(), self.count + v.size

    def result(self) -> pd.Series:
        return pd.Series({"min": self.lo, "mean": self.total / self.count, "max": self.hi,
                          "v.mean": self.var_total / self.count})


def predict(model, classify: str, present=None, levels=None, sed: bool = True, average=None,
            use=None) -> Predictions:
    """See :meth:`FittedModel.predict`."""
    return Predictions(model, classify, present, levels, sed, average, use)
