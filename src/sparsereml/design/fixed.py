"""Fixed-effect design matrix X: R's contrast rules, then aliased columns found and dropped."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.linalg import cho_factor, cho_solve

from ..errors import AliasWarning, DataError, ModelError, warn_user
from ..formula.model_terms import FixedSpec
from ..formula.terms import Groups
from .alias import sparse_aliased
from .coding import Factor, factor_of, is_factor_column

__all__ = ["FixedDesign", "fixed_design", "fixed_from_gram", "fixed_columns", "find_aliased", "ols_from_gram"]

# up to this many columns X'X is formed dense; wider designs are checked with sparse factors
DENSE_MAX = 1000


@dataclass
class FixedDesign:
    """X (sparse CSC, full column rank) and the names of its columns.

    Attributes
    ----------
    X : scipy.sparse.csc_matrix
    names : list of str
        ``(Intercept)``, ``Trial_2``, ``x``, ``A_2:B_3``, ...
    aliased : list of str
        Columns that were linear combinations of earlier ones and were dropped.
    term_of : list of str
        The term label each kept column belongs to.
    """

    X: sp.csc_matrix
    names: list
    aliased: list
    term_of: list
    rows: sp.csr_matrix | None = None  # X again, as CSR with sorted columns (W is built from it)
    ols: np.ndarray | None = None  # OLS coefficients of y on X, when y was given


def _is_factor(var, series) -> bool:
    """Whether a fixed-formula column is coded as a factor: ``C(x)`` and text, categorical or
    boolean columns are; ``lin(x)`` and other numeric columns are covariates."""
    if var.as_covariate:
        if is_factor_column(series):
            raise DataError(f"lin({var.name}) needs a numeric column; {var.name!r} has dtype {series.dtype}")
        return False
    return var.as_factor or is_factor_column(series)


def _term_columns(term, columns: dict, coding: dict, n: int, contrast: dict):
    """Rows, columns, values and names of the columns of one term."""
    col = np.zeros(n, dtype=np.int64)
    valid = np.ones(n, dtype=bool)
    val = np.ones(n)
    names = [""]
    stride = 1
    for var in term:
        series = columns[var.name]
        if _is_factor(var, series):
            f: Factor = coding[var.name]
            codes = f.codes
            if contrast[var.name]:
                valid &= codes > 0
                idx, labels = codes - 1, f.levels[1:]
            else:
                idx, labels = codes, f.levels
            col += np.where(valid, idx, 0) * stride
            stride *= max(len(labels), 1)
            names = [f"{a}:{var.name}_{lv}" if a else f"{var.name}_{lv}" for lv in labels for a in names]
        else:
            with np.errstate(over="ignore"):  # an overflow is refused, naming the term, in fixed_design
                val = val * series.to_numpy(dtype=float)
            names = [f"{a}:{var.name}" if a else var.name for a in names]
    rows = np.flatnonzero(valid & (val != 0))
    return rows, col[rows], val[rows], names


@njit(cache=True)
def _row_gram(Xp, Xi, Xx, p):
    """X'X (dense p x p) from X's rows (CSR): a record adds the products of its few entries."""
    out = np.zeros((p, p))
    for i in range(Xp.shape[0] - 1):
        for a in range(Xp[i], Xp[i + 1]):
            va = Xx[a]
            ca = Xi[a]
            for b in range(a, Xp[i + 1]):
                out[ca, Xi[b]] += va * Xx[b]
    for a in range(p):  # each pair went to one triangle (columns are sorted within rows)
        for b in range(a + 1, p):
            out[b, a] = out[a, b]
    return out


def find_aliased(xtx: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Columns of X that are (nearly) linear combinations of earlier columns.

    A Cholesky factorisation of the scaled X'X in column order; a column whose
    pivot falls below ``tol`` is aliased and skipped (as lm, lme4 and ASReml do).

    Returns
    -------
    ndarray of bool, True for aliased columns.
    """
    p = xtx.shape[0]
    d = np.diag(xtx).copy()
    aliased = d <= 0
    scale = np.where(aliased, 1.0, np.sqrt(np.where(d > 0, d, 1.0)))
    a = xtx / np.outer(scale, scale)
    L = np.zeros((p, p))
    kept: list[int] = []
    for j in range(p):
        if aliased[j]:
            continue
        lj = L[j, kept]
        piv = a[j, j] - lj @ lj
        if piv <= tol:
            aliased[j] = True
            continue
        L[j, j] = np.sqrt(piv)
        L[j + 1:, j] = (a[j + 1:, j] - L[j + 1:, kept] @ lj) / L[j, j]
        kept.append(j)
    return aliased


def _check_saturation(n: int, aliased: np.ndarray, term_of: list) -> None:
    """Refuse a fixed part that leaves no record for the variance parameters (rank(X) >= n)."""
    rank = int(aliased.size - aliased.sum())
    if rank < n:
        return
    width: dict = {}
    for t, a in zip(term_of, aliased):
        width[t] = width.get(t, 0) + (not a)
    big = max(width, key=width.get)
    raise ModelError(f"the fixed effects leave no residual degrees of freedom: rank(X) = {rank:,} on "
                     f"{n:,} records, {width[big]:,} of the columns from term {big!r}; REML needs "
                     f"n - rank(X) > 0: fit {big!r} as a random term or drop it")


def fixed_columns(spec: FixedSpec, columns: dict, n: int, matrices: dict | None = None) -> tuple[list, list, list]:
    """The columns of X before any check: (CSC blocks by term, column names, term of each column).
    Rows of new data (a prediction grid) coded like the fit's come from here too; ``matrices``
    (the pedigrees by name) are needed by a ``groups()`` term."""
    # R's rule (model.matrix): a factor in a term is coded by contrasts when the term without
    # it is also in the model, the empty term counting as present; without an intercept the
    # first factor of the formula is coded by indicators instead, taking the intercept's place.
    model_terms = {frozenset(v.name for v in t) for t in spec.terms} | {frozenset()}
    first_factor = None
    plain_terms = [t for t in spec.terms if not isinstance(t[0], Groups)]
    if not spec.intercept:
        for t in plain_terms:
            facs = [v.name for v in t if _is_factor(v, columns[v.name])]
            if facs:
                first_factor = (t, facs[0])
                break
    coding = {}
    for t in plain_terms:
        for v in t:
            s = columns[v.name]
            if _is_factor(v, s) and v.name not in coding:
                coding[v.name] = factor_of(columns, v.name)
    blocks, names, term_of = [], [], []
    if spec.intercept:
        blocks.append(sp.csc_matrix((np.ones(n), np.arange(n), np.array([0, n])), shape=(n, 1)))
        names.append("(Intercept)")
        term_of.append("(Intercept)")
    for t in spec.terms:
        if isinstance(t[0], Groups):  # the rows of Q of each record's individual (design/groups.py)
            from .groups import fixed_group_block

            block, cnames = fixed_group_block(t, columns, n, matrices, spec.intercept)
            blocks.append(block)
            names += cnames
            term_of += [t[0].label] * len(cnames)
            continue
        tnames = frozenset(v.name for v in t)
        contrast = {v.name: (tnames - {v.name}) in model_terms for v in t}
        if first_factor is not None and first_factor[0] is t:
            contrast[first_factor[1]] = False
        rows, cols, vals, cnames = _term_columns(t, columns, coding, n, contrast)
        blocks.append(sp.csc_matrix((vals, (rows, cols)), shape=(n, len(cnames))))
        names += cnames
        term_of += [":".join(v.label for v in t)] * len(cnames)
    return blocks, names, term_of


def fixed_design(spec: FixedSpec, columns: dict, n: int, y: np.ndarray | None = None,
                 matrices: dict | None = None) -> FixedDesign:
    """Build X for the fixed terms with R's treatment-contrast rules.

    For each factor in a term, treatment contrasts are used when the term without
    that factor is also in the model (the intercept counts as the empty term);
    otherwise every level gets a column.  Aliased columns are dropped with a
    warning that names them.  Given the response ``y``, the OLS coefficients come
    along (from the X'X of the aliasing check).
    """
    blocks, names, term_of = fixed_columns(spec, columns, n, matrices)
    if not blocks:
        return FixedDesign(sp.csc_matrix((n, 0)), [], [], [])
    Xc = sp.hstack(blocks, format="csc")  # stacking columns is fast in CSC
    X = Xc.tocsr()  # X'X and W are made from the rows
    X.sort_indices()
    if not np.all(np.isfinite(X.data)):  # the data's own infinities are refused earlier: a product overflowed
        col = int(X.indices[np.flatnonzero(~np.isfinite(X.data))[0]])
        raise DataError(f"the fixed term {term_of[col]!r} has values beyond double precision (a product of "
                        f"covariates overflows); rescale its covariates")
    dense = X.shape[1] <= DENSE_MAX
    if dense:
        xtx = _row_gram(X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data.astype(float), X.shape[1])
        return fixed_from_gram(Xc, names, term_of, n, xtx, None if y is None else X.T @ y, X)
    aliased, ols = sparse_aliased(X, term_of, y)
    Xc, X, names, term_of, dropped = _drop_aliased(Xc, X, names, term_of, n, aliased)
    return FixedDesign(Xc, names, dropped, term_of, X, ols)


def _drop_aliased(Xc, X, names: list, term_of: list, n: int, aliased: np.ndarray):
    """X without its ``aliased`` columns, with the warning that names them (and the checks that
    something is left and that n - rank(X) > 0)."""
    dropped = [nm for nm, a in zip(names, aliased) if a]
    if aliased.all() and dropped:
        raise DataError("every fixed-effect column is aliased")
    _check_saturation(n, aliased, term_of)
    if dropped:
        shown = ", ".join(dropped[:10]) + (f" and {len(dropped) - 10} more" if len(dropped) > 10 else "")
        warn_user(f"fixed effects are aliased (linear combinations of earlier columns) and were "
                  f"dropped: {shown}", AliasWarning)
        keep = np.flatnonzero(~aliased)
        Xc = Xc[:, keep]
        X = Xc.tocsr()
        X.sort_indices()
        names = [names[i] for i in keep]
        term_of = [term_of[i] for i in keep]
    Xc.sort_indices()
    return Xc, X, names, term_of, dropped


def fixed_from_gram(Xc: sp.csc_matrix, names: list, term_of: list, n: int, xtx: np.ndarray,
                    xty: np.ndarray | None, X: sp.csr_matrix | None = None) -> FixedDesign:
    """The fixed design from X's columns (``Xc``, their ``names`` and terms) and the records'
    X'X (dense) and X'y: the aliased columns dropped and the OLS coefficients.  ``n`` counts the
    records; ``Xc`` may have other rows (the cells of partitioned data, whose records' X'X is
    summed over the partitions); ``X`` is ``Xc`` as CSR with sorted columns when at hand."""
    aliased = find_aliased(xtx)
    if X is None:
        X = Xc.tocsr()
        X.sort_indices()
    Xc, X, names, term_of, dropped = _drop_aliased(Xc, X, names, term_of, n, aliased)
    keep = np.flatnonzero(~aliased)
    ols = None
    if xty is not None:
        ols = ols_from_gram(xtx[np.ix_(keep, keep)], xty[keep])
    return FixedDesign(Xc, names, dropped, term_of, X, ols)


def ols_from_gram(xtx: np.ndarray, xty: np.ndarray) -> np.ndarray:
    """OLS coefficients from X'X (dense, full column rank: the aliased columns dropped) and X'y."""
    try:
        return cho_solve(cho_factor(xtx), xty)
    except np.linalg.LinAlgError:  # pragma: no cover - full column rank after the aliasing check
        return np.linalg.lstsq(xtx, xty, rcond=None)[0]
