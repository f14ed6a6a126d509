"""Start values of a fit to partitioned data: :func:`sparsereml.reml.start.default_start`'s,
from the cross-products and the cells' statistics instead of the records.

Every quantity the in-memory start takes from the records has a record-free form for the models
the partitioned pass fits (independent residual groups): sums of squared OLS residuals per group
are y'y of the (centred) cross-products, records and sums of residuals per level of an indicator
term are W'W's diagonal and W'y, and the variance within cells of identical rows of W is the
cells' pooled within-cell variance.  Correlated terms, ``lin()`` terms and random regressions
take per-level (per-unit) sums of the residuals, from the cells or, with covariates, from the
records' pass (:class:`~.records.RecordStats`).  So the start is the in-memory one to rounding,
and the iterations follow the same path."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from ..reml.problem import REMLProblem
from ..reml.start import (_moment_start, _row_hashes, finish_start, needs_within_cells, plain_random,
                          term_starts, within_cell_start)

__all__ = ["partitioned_start"]


def _within_cells(problem: REMLProblem) -> tuple[np.ndarray, np.ndarray]:
    """Pooled variance of y within cells of identical rows of W per residual group, and its
    degrees of freedom (``_within_cell_variance`` of the records, from the cells' statistics)."""
    d = problem.design
    part = d.partitions
    ng = d.residual.n_groups
    if part.stats is not None:  # records route: the records' cells of identical rows, gathered by the pass
        f = part.stats.within.frame
        g = f["g"].to_numpy(dtype=np.int64)
        ss = np.bincount(g, weights=f["m2"].to_numpy(dtype=float), minlength=ng)
        df = (np.asarray(d.record_counts, float) - np.bincount(g, minlength=ng)).astype(np.int64)
        return np.where(df > 0, ss / np.maximum(df, 1), np.nan), df
    W, group = part.coder.W, part.coder.group
    h = _row_hashes(W.indptr.astype(np.int64), W.indices.astype(np.int64),
                    np.ascontiguousarray(W.data, dtype=np.float64).view(np.uint64), group.astype(np.int64))
    cell, _ = pd.factorize(h)  # cells of the data pass with the same row of W and group are one cell
    n_i = part.cells["n"].to_numpy(dtype=float)
    mean_i = part.cells["mean"].to_numpy(dtype=float)
    cnt = np.bincount(cell, weights=n_i)
    mean = np.bincount(cell, weights=n_i * mean_i) / cnt
    dev = part.cells["m2"].to_numpy(dtype=float) + n_i * (mean_i - mean[cell]) ** 2
    ss = np.bincount(group, weights=dev, minlength=ng)
    cell_group = np.zeros(cnt.size, dtype=np.int64)
    cell_group[cell] = group
    df = (np.asarray(d.record_counts, float) - np.bincount(cell_group, minlength=ng)).astype(np.int64)
    return np.where(df > 0, ss / np.maximum(df, 1), np.nan), df


class _CellLevelStats:
    """Records, mean OLS residual and noise per level of a plain term, from the cross-products:
    W'W's diagonal (per group for the noise) and W'e summed over groups."""

    def __init__(self, problem: REMLProblem, s2e_group: np.ndarray | None):
        self.problem, self.s2e_group = problem, s2e_group
        cp = problem.cp
        low = cp.lower
        diag = low.indptr[:-1]
        self.cnt = cp.total[diag]
        grids = bool(cp.cells)  # a grid group's columns of W'W and W'y are its bases' W'B W, W'B y
        if grids:  # from the cells (then one per record of a grid group): W'e and W'(s2e) directly
            part = problem.design.partitions
            W, n_i = part.coder.W, part.cells["n"].to_numpy(float)
            self.we = W.T @ _cell_residuals(problem)[1]
        else:
            self.we = np.asarray(cp.Wty.sum(axis=1)).ravel()
        self.noise_sum = None
        if s2e_group is not None and grids:
            self.noise_sum = W.T @ (n_i * s2e_group[part.coder.group])
        elif s2e_group is not None:
            per_group = cp.WtW[diag, :].toarray()  # records per level and group
            self.noise_sum = per_group @ s2e_group[cp.group_of]
        if s2e_group is not None:
            self.constant = np.ptp(s2e_group) == 0
            self.first = float(s2e_group[0])

    def __call__(self, rb, off: int) -> tuple:
        if rb.values is not None:  # comb:lin(x): records and residuals per level, not W'W's x^2
            cnt, e_sum, _, per_group = term_stats(self.problem, rb)
            noise = None if self.s2e_group is None else (per_group @ self.s2e_group) / np.maximum(cnt, 1) ** 2
            return cnt, e_sum / np.maximum(cnt, 1), noise
        sl = slice(off, off + rb.size)
        cnt = self.cnt[sl]
        means = self.we[sl] / np.maximum(cnt, 1)
        noise = None
        if self.noise_sum is not None:
            noise = (self.first * cnt if self.constant else self.noise_sum[sl]) / np.maximum(cnt, 1) ** 2
        return cnt, means, noise


def _cell_residuals(problem: REMLProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: its records, the sum of their OLS residuals e and the sum of e^2 (from the
    cell's mean and squared deviations, as the records' sums)."""
    d = problem.design
    cells = d.partitions.cells
    n_i, m_i = cells["n"].to_numpy(float), cells["mean"].to_numpy(float)
    fit = d.partitions.coder.xb if d.p else np.full(n_i.size, np.sum(n_i * m_i) / n_i.sum())
    dev = m_i - fit
    return n_i, n_i * dev, cells["m2"].to_numpy(float) + n_i * dev**2


def term_stats(problem: REMLProblem, rb) -> tuple:
    """Per column of random term ``rb``: records, sum of e, sum of e^2 and records per residual
    group (columns x groups), from the records' pass or the cells."""
    d = problem.design
    part = d.partitions
    t = d.random.index(rb)
    K = d.residual.n_groups
    if part.stats is not None:
        cnt, e_sum, e2, per_group = part.stats.terms[t]
        return cnt, e_sum, e2, per_group.reshape(rb.size, K)
    n_i, e_i, e2_i = _cell_residuals(problem)
    codes, g = rb.record_column, d.residual.record_group
    ok = codes >= 0
    c = codes[ok]
    return (np.bincount(c, n_i[ok], minlength=rb.size), np.bincount(c, e_i[ok], minlength=rb.size),
            np.bincount(c, e2_i[ok], minlength=rb.size),
            np.bincount(c * K + g[ok], n_i[ok], minlength=rb.size * K).reshape(rb.size, K))


def _correlated(problem: REMLProblem, rb, st, s2e: np.ndarray | None, pooled: float) -> np.ndarray:
    """``_correlated_start`` from the term's per-column sums (one row per column of the term)."""
    from ..reml.start import _correlated_start

    cnt, e_sum, e2, per_group = term_stats(problem, rb)
    cols = SimpleNamespace(record_column=np.arange(rb.size), units=rb.units, cov_levels=rb.cov_levels)
    s2e_col = None if s2e is None else (per_group @ s2e) / np.maximum(cnt, 1)  # times cnt: the noise's sum
    return _correlated_start(cols, st, e_sum, s2e_col, pooled, count=cnt, e2=e2)


def _regression(problem: REMLProblem, rb, st, pooled: float) -> tuple[np.ndarray, np.ndarray]:
    """``_regression_start`` from per-unit A'A and A'e (the records' pass), and the mean of each
    coefficient's squared covariate over the records."""
    ata, ate, cnt, a2 = problem.design.partitions.stats.regressions[problem.design.random.index(rb)]
    k = ata.shape[1]
    mean_a2 = a2 / problem.design.n
    coefs = []
    for m in np.flatnonzero(cnt > k + 1):
        b, _, rank, _ = np.linalg.lstsq(ata[m], ate[m], rcond=None)
        if rank == k:
            coefs.append(b)
    if len(coefs) > k + 1:
        v = 0.5 * np.var(np.array(coefs), axis=0)
    else:
        v = np.full(k, pooled / k) / np.maximum(mean_a2, 1e-12)
    scale = np.maximum(mean_a2, 1e-12)
    v = np.clip(v, 0.01 * pooled / scale, pooled / scale)
    return st.model.start(np.diag(v)), mean_a2


def partitioned_start(problem: REMLProblem) -> np.ndarray:
    """``default_start`` for a design whose records stay in their partitions (independent
    residual groups: the models the cells' data pass fits), branch for branch."""
    d = problem.design
    cp = problem.cp
    ng = cp.counts
    ss = d.partitions.group_yty  # sums of squared OLS residuals per group (the pass centres y on its OLS fit)
    dof = np.maximum(ng * (d.n - d.p) / d.n, 1.0)
    s2g = ss / dof
    pooled = float(ss.sum() / max(d.n - d.p, 1))
    if not pooled > 0:
        cells = d.partitions.cells
        n_i, m_i = cells["n"].to_numpy(float), cells["mean"].to_numpy(float)
        grand = float(np.sum(n_i * m_i) / n_i.sum())
        pooled = float((cells["m2"].sum() + np.sum(n_i * (m_i - grand) ** 2)) / n_i.sum()) or 1.0
    s2g = np.where(s2g > 0, s2g, pooled)
    plain = plain_random(d)
    within, df = _within_cells(problem) if needs_within_cells(d) else (None, None)
    ok, s2e = within_cell_start(within, df, ng, d.n)  # s2e per group here (per record in memory)
    theta = np.empty(problem.params.n)
    s2e_mean = float(np.sum(ng * s2e) / d.n) if s2e is not None else np.nan  # the records' mean of s2e
    if not d.random:
        moments, scale = [], np.nan
    elif plain and s2e is not None:
        moments, scale = _moment_start(problem, None, pooled, s2e / s2e_mean, relative=True,
                                       level_stats=_CellLevelStats(problem, s2e / s2e_mean))
    else:
        moments, scale = _moment_start(problem, None, pooled, s2e, level_stats=_CellLevelStats(problem, s2e))
    sound = plain and 0.0 < scale <= pooled
    if sound and s2e is not None:
        within = within * (scale / s2e_mean)
    moments = list(np.clip(moments, 0.01 * pooled, pooled))
    per_record = term_starts(problem, theta, moments, lambda rb, st: _regression(problem, rb, st, pooled),
                             lambda rb, st: _correlated(problem, rb, st, s2e, pooled))
    return finish_start(problem, theta, per_record, pooled, s2g, sound and ng.size == 1, scale, ok, within, None)
