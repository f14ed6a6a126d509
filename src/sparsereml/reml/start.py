"""Default starting values from the data (moments of OLS residuals by term); the user's own are
:mod:`.user_start`'s."""
from __future__ import annotations

import numpy as np
import pandas as pd
from numba import get_num_threads, njit

from ..crossprod import group_sums
from ..formula.terms import Units
from ..linalg.threads import in_parallel
from .problem import REMLProblem

__all__ = ["default_start"]


@njit(cache=True)
def _shared_levels(Cp, Ci, total, block_of, K):
    """sum over levels a of block k and b of block j of (n_ab / n_a)^2, from W'W's lower triangle."""
    n = Cp.shape[0] - 1
    n_a = np.zeros(n)
    for c in range(n):
        for p in range(Cp[c], Cp[c + 1]):
            if Ci[p] == c:
                n_a[c] = total[p]
    E = np.zeros((K, K))
    for c in range(n):
        kc = block_of[c]
        if kc < 0:
            continue
        for p in range(Cp[c], Cp[c + 1]):
            r = Ci[p]
            kr = block_of[r]
            if kr < 0 or total[p] == 0.0:
                continue
            v = total[p]
            E[kr, kc] += (v / n_a[r]) ** 2
            if r != c:
                E[kc, kr] += (v / n_a[c]) ** 2
    return E


class _LevelStats:
    """Per level of a random term: records, mean of the OLS residuals e and (given the records'
    residual variances ``s2e``) the noise variance of that mean's sum, sum_i s2e_i / n_a^2."""

    def __init__(self, problem: REMLProblem, e: np.ndarray, s2e: np.ndarray | None):
        self.problem, self.e, self.s2e, self.sums = problem, e, s2e, None

    def __call__(self, rb, off: int) -> tuple:
        e, s2e, noise = self.e, self.s2e, None
        if rb.values is None and rb.record_column.ndim == 1 and (s2e is None or np.ptp(s2e) == 0):
            # an indicator term: its records per level and sums of e are W'W's diagonal and W'e
            if self.sums is None:
                self.sums = _column_sums(self.problem, e)
            cnt, we = self.sums[0][off: off + rb.size], self.sums[1][off: off + rb.size]
            means = we / np.maximum(cnt, 1)
            if s2e is not None:
                noise = s2e[0] * cnt / np.maximum(cnt, 1) ** 2
        else:  # one entry per record, or (an overlay: Mother + and(Father)) one per part
            ok = rb.record_column >= 0
            e_of = np.broadcast_to(e, rb.record_column.shape)
            cnt = np.bincount(rb.record_column[ok], minlength=rb.size).astype(float)
            means = np.bincount(rb.record_column[ok], weights=e_of[ok], minlength=rb.size) / np.maximum(cnt, 1)
            if s2e is not None:
                s2e_of = np.broadcast_to(s2e, rb.record_column.shape)
                noise = np.bincount(rb.record_column[ok], weights=s2e_of[ok], minlength=rb.size) / np.maximum(cnt, 1) ** 2
        return cnt, means, noise


def _moment_start(problem: REMLProblem, e: np.ndarray, pooled: float, s2e: np.ndarray | None = None,
                  relative: bool = False, level_stats=None) -> tuple[np.ndarray, float]:
    """Moment estimates of the random-term variances (in the spirit of Henderson's method 1).

    For each variance parameter k (a random term, or one at() level of it) the variance of
    the level means of the OLS residuals e has expectation about
        sum_j s2_j * E_kj + s2_e * mean_a(1 / n_a),   E_kj = mean_a sum_b (n_ab / n_a)^2,
    with n_ab the number of records shared by level a of k and level b of j (from W'W).
    Together with var(e) = sum_j s2_j f_j + s2_e (f_j: the fraction of records that parameter
    j covers, below 1 for at() levels) this is a small linear system.  When the residual
    variance of each record is known (``s2e``, from replicates within cells) the last equation
    is dropped and ``s2_e mean_a(1/n_a)`` becomes ``mean_a(sum_{i in a} s2e_i / n_a^2)``.  With
    ``relative=True`` ``s2e`` gives only the ratios between records' residual variances (mean 1):
    their common scale stays an unknown of the full system.  ``level_stats(rb, offset)`` gives
    a term's records, means of e and noise per level (default: from the records, :class:`_LevelStats`).

    Returns the random-term variances and the residual scale (NaN when ``s2e`` was taken as known).
    """
    d = problem.design
    N = problem.mme.N
    block_of = np.full(N, -1, dtype=np.int64)  # MME column -> variance-parameter block
    v, cover, inv_n = [], [], []
    K = 0
    stats = level_stats or _LevelStats(problem, e, s2e)
    for rb, off in zip(d.random, d.offsets):
        if rb.cov_levels is not None:  # correlated terms get their own start (_correlated_start)
            continue
        cnt, means, noise = stats(rb, off)
        for start, size in ((b.start, b.size) for b in rb.blocks):
            sl = slice(start, start + size)
            seen = cnt[sl] > 0  # levels without records (ancestors in a pedigree) say nothing
            block_of[off + start: off + start + size] = np.where(seen, K, -1)
            v.append(np.var(means[sl][seen], ddof=1) if seen.sum() > 1 else 0.0)
            cover.append(cnt[sl].sum() / d.n)
            inv_n.append(np.mean(noise[sl][seen]) if s2e is not None else np.mean(1.0 / cnt[sl][seen]))
            K += 1
    low = problem.cp.lower
    E = np.zeros((K + 1, K + 1))
    E[:K, :K] = _shared_levels(low.indptr.astype(np.int64), low.indices.astype(np.int64), problem.cp.total,
                               block_of, K)
    levels = np.bincount(block_of[block_of >= 0], minlength=K)
    E[:K, :K] /= levels[:, None]
    E[:K, K] = inv_n
    E[K, :K] = cover
    E[K, K] = 1.0
    known = s2e is not None and not relative
    if known:  # residual variances known: K equations in the K random variances
        E, rhs = E[:K, :K], np.asarray(v) - np.asarray(inv_n)
    else:
        rhs = np.append(v, pooled)
    try:
        sol = np.linalg.solve(E, rhs)
    except np.linalg.LinAlgError:
        sol = np.linalg.lstsq(E, rhs, rcond=None)[0]
    return sol[:K], (np.nan if known else float(sol[K]))


def _column_sums(problem: REMLProblem, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """diag(W'W) (from the cross-products) and W'e, for every MME column."""
    low = problem.cp.lower
    return problem.cp.total[low.indptr[:-1]], problem.design.W().T @ e  # diagonal first in each column


def _row_hashes(Wp, Wi, Wbits, groups):
    """A 64-bit hash of each record's row of W (column indices and the bits of the values) and
    its residual group; ranges of records on plain threads (nogil, cheaper to compile than prange)."""
    out = np.empty(Wp.shape[0] - 1, dtype=np.uint64)
    cut = np.linspace(0, out.size, get_num_threads() + 1).astype(np.int64)
    in_parallel(_hash_range, [(Wp, Wi, Wbits, groups, cut[t], cut[t + 1], out) for t in range(cut.size - 1)])
    return out


@njit(cache=True, nogil=True)
def _hash_range(Wp, Wi, Wbits, groups, r0, r1, out):
    gold = np.uint64(0x9E3779B97F4A7C15)
    mult = np.uint64(0xBF58476D1CE4E5B9)
    for i in range(r0, r1):
        h = np.uint64(groups[i]) * gold + np.uint64(1)
        for p in range(Wp[i], Wp[i + 1]):
            h ^= np.uint64(Wi[p]) + gold + (h << np.uint64(6)) + (h >> np.uint64(2))
            h *= mult
            h ^= Wbits[p] + gold + (h << np.uint64(6)) + (h >> np.uint64(2))
            h *= mult
            h ^= h >> np.uint64(31)
        out[i] = h


def plain_random(design) -> bool:
    """Whether every random term is a plain variance (no covariate values, no covariance between
    its levels)."""
    return all(rb.values is None and rb.cov_levels is None for rb in design.random)


def needs_within_cells(design) -> bool:
    """Whether the start uses the variance of y within cells (records sharing every fixed and
    random level).  With only plain variance terms the moment system covers every random term and
    estimates the residual scale itself; within-cell variances then give only the ratios between
    residual groups, and with one residual group they are not needed at all.  Their level is off
    when the model is: one residual variance fitted to trials that differ weighs the trials by
    their replicates within cells, not as REML does, and a residual scale taken from them pushes
    the moment start of a term such as Trial:Mother well above REML's.  (The in-memory start, the
    partitioned one and the workers' record pass all ask this.)"""
    return bool(design.random) and not (plain_random(design) and design.residual.n_groups == 1)


def within_cell_start(within, df, counts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Which residual groups' within-cell variances (``within`` on ``df`` degrees of freedom, or
    None) are usable: on at least max(30, 5% of the group's ``counts``) degrees of freedom (fewer
    are too noisy to start from: sd ~ sqrt(2/df)) and positive; and, when the usable groups hold
    80% of the ``n`` records, each group's residual variance for the moment system (the usable
    ones' median elsewhere), else None."""
    if within is None:
        return np.zeros(counts.size, dtype=bool), None
    ok = (df >= np.maximum(30, 0.05 * counts)) & (within > 0)
    if ok.any() and counts[ok].sum() >= 0.8 * n:
        return ok, np.where(ok, within, np.median(within[ok]))
    return ok, None


def _within_cell_variance(W, y: np.ndarray, groups: np.ndarray, n_groups: int):
    """Pooled variance of y within cells of records with identical rows of W (same fixed and
    random levels), per residual group, and its degrees of freedom.  Within a cell only the
    residual varies, so this estimates each residual variance directly."""
    W = W.tocsr()
    h = _row_hashes(W.indptr.astype(np.int64), W.indices.astype(np.int64),
                    np.ascontiguousarray(W.data, dtype=np.float64).view(np.uint64), groups.astype(np.int64))
    cell, _ = pd.factorize(h)
    cnt = np.bincount(cell)
    mean = np.bincount(cell, weights=y) / cnt
    dev = y - mean[cell]
    ss = group_sums(groups, n_groups, dev * dev)
    cell_group = np.zeros(cnt.size, dtype=np.int64)
    cell_group[cell] = groups
    df = (group_sums(groups, n_groups) - group_sums(cell_group, n_groups)).astype(np.int64)
    return np.where(df > 0, ss / np.maximum(df, 1), np.nan), df


def _regression_start(rb, structure, e: np.ndarray, pooled: float) -> np.ndarray:
    """Start of a random regression: the spread of per-unit least-squares coefficients of the OLS
    residuals (units with more records than coefficients), halved for their noise; diagonal."""
    k, q = rb.record_column.shape[0], rb.units
    unit = rb.record_column[0] // k
    coefs = []
    order = np.argsort(unit, kind="stable")
    bounds = np.searchsorted(unit[order], np.arange(q + 1))
    for m in range(q):
        idx = order[bounds[m]:bounds[m + 1]]
        if idx.size > k + 1:
            A = rb.values[:, idx].T
            b, _, rank, _ = np.linalg.lstsq(A, e[idx], rcond=None)
            if rank == k:
                coefs.append(b)
    if len(coefs) > k + 1:
        v = 0.5 * np.var(np.array(coefs), axis=0)
    else:  # too few units with enough records: the residual variance spread over the coefficients
        v = np.full(k, pooled / k) / np.maximum(np.mean(rb.values**2, axis=1), 1e-12)
    scale = np.maximum(np.mean(rb.values**2, axis=1), 1e-12)
    v = np.clip(v, 0.01 * pooled / scale, pooled / scale)
    return structure.model.start(np.diag(v))


def _correlated_start(rb, structure, e: np.ndarray, s2e: np.ndarray | None, pooled: float,
                      count: np.ndarray | None = None, e2: np.ndarray | None = None) -> np.ndarray:
    """Start values of a correlated term (us, fa, corh, ...) from a moment estimate of Sigma:
    covariances between levels from the means of e per (unit, level) over units seen at both,
    variances from their spread less the noise of the means.  Rows of the design may stand for
    ``count`` records each (the cells of partitioned data): ``e`` is then the sum of e over them,
    ``e2`` the sum of e^2 and ``s2e`` their residual variance; default one record per row."""
    q, n = rb.units, len(rb.cov_levels)
    ok = rb.record_column >= 0  # (parts x n) for an overlay: each part's entry counts
    codes = rb.record_column[ok]
    w = np.broadcast_to(1.0 if count is None else count, rb.record_column.shape)[ok]
    cnt = np.bincount(codes, weights=w, minlength=q * n).reshape(q, n)
    e_of = np.broadcast_to(e, rb.record_column.shape)
    means = np.bincount(codes, weights=e_of[ok], minlength=q * n).reshape(q, n) / np.maximum(cnt, 1)
    noise_w = (np.broadcast_to(s2e, rb.record_column.shape)[ok] if s2e is not None else pooled) * w
    noise = np.bincount(codes, weights=noise_w, minlength=q * n).reshape(q, n) / np.maximum(cnt, 1) ** 2
    seen = cnt > 0
    S = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            both = seen[:, i] & seen[:, j]
            if both.sum() < 3:
                continue
            a, b = means[both, i], means[both, j]
            S[i, j] = S[j, i] = float(np.mean((a - a.mean()) * (b - b.mean())))
        S[i, i] -= float(np.mean(noise[seen[:, i], i])) if seen[:, i].any() else 0.0
    # each level against its own scale (levels may be traits in different units): the variance of
    # the OLS residuals of its records bounds it above, 5% of that below
    lev = codes % n
    cnt_l = np.maximum(np.bincount(lev, weights=w, minlength=n), 1)
    e2_of = e_of[ok] ** 2 if e2 is None else np.broadcast_to(e2, rb.record_column.shape)[ok]
    var_l = np.bincount(lev, weights=e2_of, minlength=n) / cnt_l
    var_l = np.where(var_l > 0, var_l, pooled)
    d = np.maximum(np.diag(S), 0.05 * np.minimum(var_l, max(float(np.mean(np.diag(S))), 0.01 * pooled)))
    R = np.clip(S / np.sqrt(np.outer(d, d)), -1.0, 1.0)
    R[np.diag_indices(n)] = 1.0
    # shrink the noisy correlations towards 0 until the smallest eigenvalue is >= 0.2: a start
    # near the edge of the positive-definite cone makes the first AI steps leave it
    lam = float(np.linalg.eigvalsh(R).min())
    alpha = max(0.2, (0.2 - lam) / (1.0 - lam)) if lam < 1.0 else 0.2
    R = (1.0 - alpha) * R + alpha * np.eye(n)
    S = R * np.sqrt(np.outer(d, d))
    return structure.model.start(S)


def default_start(problem: REMLProblem) -> np.ndarray:
    """Start values from the data.

    Random-term variances: moment estimates from the residuals of an OLS fit of the fixed
    effects (:func:`_moment_start`).  Residual variances, with only plain variance terms: the
    residual scale of the same moment system, per residual group in the ratios of the variances
    of y within cells of records that share every fixed and random level
    (:func:`_within_cell_variance`) when there are enough such replicates.  With other terms:
    those within-cell variances themselves.  Otherwise: what the random terms leave of each
    group's OLS residual variance.  Values are kept between 1% and 100% of the OLS residual
    variance, so the start is always positive definite.  With ``problem.control.start_method``
    ``"equal"`` the plain variances are instead equal shares of the OLS residual variance
    (:func:`_equal_split`)."""
    if not problem.design.holds_records:  # records kept in their partitions
        from ..partitioned.start import partitioned_start
        return partitioned_start(problem)
    d = problem.design
    y = d.y
    e = problem.y_centred if d.fixed.X.shape[1] else y - y.mean()  # OLS residuals
    g = d.residual.record_group
    ng = problem.cp.counts
    ss = group_sums(g, ng.size, e * e)
    dof = np.maximum(ng * (d.n - d.p) / d.n, 1.0)
    s2g = ss / dof
    pooled = float(ss.sum() / max(d.n - d.p, 1))
    if not pooled > 0:
        pooled = float(np.var(y)) or 1.0
    s2g = np.where(s2g > 0, s2g, pooled)
    plain = plain_random(d)
    within, df = _within_cell_variance(problem.design.W(), y, g, ng.size) if needs_within_cells(d) else (None, None)
    ok, s2e = within_cell_start(within, df, ng, d.n)
    s2e = s2e[g] if s2e is not None else None  # per record
    theta = np.empty(problem.params.n)
    moments, scale = (_moment_start(problem, e, pooled, s2e / s2e.mean(), relative=True) if plain and s2e is not None
                      else _moment_start(problem, e, pooled, s2e)) if d.random else ([], np.nan)
    # the moments' residual scale, unless the system could not tell it apart (e.g. a vm() term with
    # a level per record): then the within-cell variances, or what the random terms leave
    sound = plain and 0.0 < scale <= pooled
    if sound and s2e is not None:  # the within-cell ratios at the moments' scale
        within = within * (scale / s2e.mean())
    moments = list(np.clip(moments, 0.01 * pooled, pooled))
    per_record = term_starts(problem, theta, moments,
                             lambda rb, st: (_regression_start(rb, st, e, pooled), np.mean(rb.values**2, axis=1)),
                             lambda rb, st: _correlated_start(rb, st, e, s2e, pooled))
    return finish_start(problem, theta, per_record, pooled, s2g, sound and ng.size == 1, scale, ok, within, e)


def term_starts(problem: REMLProblem, theta: np.ndarray, moments: list, regression, correlated) -> float:
    """Fill each random term's slice of ``theta``: a random regression's from ``regression(rb,
    st)`` -> (its parameters, the mean square of each of its covariates), a correlated
    structure's from ``correlated(rb, st)``, a plain term's from ``moments`` in order.  Returns the
    variance the terms add to a record on average (for the residual's start)."""
    per_record = 0.0
    for rb, st, sl in zip(problem.design.random, problem.structures, problem.params.term_slices):
        if rb.regression:
            theta[sl], mean_a2 = regression(rb, st)
            per_record += float(np.mean(np.diag(st.model.sigma(theta[sl])) * mean_a2))
        elif rb.cov_levels is not None:
            theta[sl] = correlated(rb, st)
            per_record += float(np.mean(np.diag(st.model.sigma(theta[sl]))))
        else:
            theta[sl] = [moments.pop(0) for _ in range(sl.stop - sl.start)]
            per_record += float(np.mean(theta[sl]))
    return per_record


def finish_start(problem: REMLProblem, theta: np.ndarray, per_record: float, pooled: float, s2g, one_sound: bool,
                 scale: float, ok, within, e) -> np.ndarray:
    """The residual parameters' start once the random terms' are in ``theta``: what the random
    terms leave of the pooled variance per record (or the moment system's ``scale`` when it is
    sound and there is one group, ``one_sound``), or the within-cell variances where ``ok``; then
    the nugget split and ``start_method="equal"``."""
    fallback = s2g * max(1.0 - per_record / pooled, 0.3)
    if one_sound:
        fallback = np.array([max(scale, 0.01 * pooled)])
    s2_res = np.where(ok, np.clip(np.nan_to_num(within), 0.01 * pooled, None), fallback) \
        if within is not None else fallback
    _split_nugget(problem, theta, s2_res)
    theta[problem.params.residual_slice] = _residual_start(problem, s2_res, e)
    if problem.control.start_method == "equal":
        _equal_split(problem, theta, pooled)
    return theta


def _equal_split(problem: REMLProblem, theta: np.ndarray, pooled: float) -> None:
    """``start_method="equal"``: the pooled OLS residual variance split equally among the plain
    variance components, each variance of a plain random term (one per at() level) and each
    residual group's variance; correlated terms, random regressions and the correlations of
    residual grids keep their start from the data (in place)."""
    params = problem.params
    plain = [sl for rb, sl in zip(problem.design.random, params.term_slices)
             if rb.values is None and rb.cov_levels is None]
    r0 = params.residual_slice.start
    groups = [r0 + gsl.start for res, gsl in zip(problem.residuals, params.group_slices) if res.scaled]
    share = pooled / max(sum(sl.stop - sl.start for sl in plain) + len(groups), 1)
    for sl in plain:
        theta[sl] = share
    theta[groups] = share


def _split_nugget(problem: REMLProblem, theta: np.ndarray, s2_res: np.ndarray) -> None:
    """A random ``units`` term (a nugget) and the residual share one variance that moments cannot
    split: start the nugget at 30% of it and the residual at 70% (in place)."""
    groups = list(problem.design.residual.labels)
    for rb, sl in zip(problem.design.random, problem.params.term_slices):
        if not any(isinstance(f, Units) for f in rb.term.factors):
            continue
        for j, label in enumerate(b.label for b in rb.blocks):
            g = groups.index(label) if label in groups else None
            base = s2_res[g] if g is not None else float(np.mean(s2_res))
            theta[sl.start + j] = 0.3 * base
            if g is not None:
                s2_res[g] = 0.7 * base
        if len(rb.blocks) == 1 and rb.blocks[0].label not in groups:
            s2_res *= 0.7


def _residual_start(problem: REMLProblem, s2: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Residual parameters: the group variances ``s2``; each grid dimension's from the OLS
    residuals on the grid (its ``start``: an ar1 correlation from neighbouring residuals, a
    covariance model from their covariance between its levels)."""
    out = []
    for g, res in enumerate(problem.residuals):
        grid = problem.design.residual.grids[g]
        if grid is None:
            out.append([s2[g]])
            continue
        E = np.zeros(grid.n_cells)
        if e is None:  # partitioned data: the residuals on the grid came back with the group's products
            E[:] = problem.cp.cells[g][1]
        else:
            E[grid.cells] = e[grid.records]
        present = np.zeros(grid.n_cells, dtype=bool)
        present[grid.cells] = True
        E, present = E.reshape(grid.shape), present.reshape(grid.shape)
        vals = [s2[g]] if res.scaled else []
        for axis, d in enumerate(res.dims):
            vals.extend(d.start(E, present, axis))
        out.append(vals)
    return np.concatenate([np.asarray(v, float) for v in out])
