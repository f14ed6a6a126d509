"""Residual structures: R for one residual group, as a Kronecker product over the dimensions of
a grid of cells, and what the REML stage needs of it.

    R_g = s2 * S_1 (x) S_2 (x) ...      (cells in C order: the first dimension outermost)

Each dimension is ``id`` (S = I), ``ar1`` (S_ij = rho^|i-j| on unit-spaced positions) or a
covariance model across the levels of a factor (``us``, ``diag``, ... ; then s2 is 1 and the
model carries the variances).  A group without dimensions is the plain ``units`` residual.
The dimensions are registered by name (:mod:`sparsereml.registry`); their class attributes
tell the design stage how to lay the records out along them (``coordinates``, ``independent``)
and :meth:`Dim.start` gives their start values.

R^-1 is a linear combination of fixed sparse basis matrices with coefficients that depend on
the parameters: AR1(rho)^-1 = [(1 + rho^2) I - rho A - rho^2 E] / (1 - rho^2), with A the
neighbour matrix and E marking the two ends; a covariance model's inverse is a combination of
the unit matrices E_ab + E_ba.  So W'R^-1 W = sum_b c_b(theta) W'B_b W, and the products
W'B_b W are formed once (crossprod.py); an iteration only recomputes the coefficients c_b.

Derivatives, with Rdot_j = dR^-1/dtheta_j:
    dlogL/dtheta_j = -1/2 [dlog|R|/dtheta_j + tr(C^-1 W'Rdot_j W) + e'Rdot_j e]
    AI: working variate q_j = dR/dtheta_j P y = -R Rdot_j e, and q_i'R^-1 q_j = e'Rdot_i R Rdot_j e,
which for a plain group is e'e / s2^3 and otherwise needs e on the cells (:meth:`q_block`).
"""
from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
from scipy.linalg import block_diag, solveh_banded

from ..errors import NotPositiveDefinite
from ..registry import COVARIANCE_DIM, register_residual_dim
from .base import ModelSlot
from .covariance import CovModel, make_cov_model, nearest_pd

__all__ = ["Ar1Dim", "IdDim", "CovDim", "GroupResidual"]


def _along(M, X: np.ndarray, axis: int) -> np.ndarray:
    """Apply the matrix M (dense or sparse, m x m) along ``axis`` of the array X."""
    Xa = np.moveaxis(X, axis, 0)
    shape = Xa.shape
    Y = M @ Xa.reshape(shape[0], -1)
    return np.moveaxis(np.asarray(Y).reshape(shape), 0, axis)


def _lag_correlation(E: np.ndarray, present: np.ndarray, axis: int) -> float:
    """Correlation of neighbours along ``axis`` among cells that both hold a record."""
    n = E.shape[axis]
    a = np.take(E, np.arange(n - 1), axis=axis)
    b = np.take(E, np.arange(1, n), axis=axis)
    both = np.take(present, np.arange(n - 1), axis=axis) & np.take(present, np.arange(1, n), axis=axis)
    a, b = a[both], b[both]
    den = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / den) if den > 0 else 0.0


def _cell_covariance(E: np.ndarray, present: np.ndarray, axis: int) -> np.ndarray:
    """Covariance between the levels of ``axis`` over the other cells (pairwise complete)."""
    X = np.moveaxis(E, axis, -1).reshape(-1, E.shape[axis])
    M = np.moveaxis(present, axis, -1).reshape(-1, E.shape[axis]).astype(float)
    n = np.maximum(M.T @ M, 1.0)
    return (X.T @ X) / n


class Dim:
    """One dimension of a residual grid with ``m`` positions.

    Class attributes
    ----------------
    name : str
        The formula name (``id``, ``ar1``; a covariance model's name for :class:`CovDim`).
    coordinates : bool
        Positions come from a numeric column (equally spaced) or a factor's level order, and
        every position between the smallest and largest is a cell (ar1).
    independent : bool
        Records along it are independent (id): only the levels present are cells.
    min_positions : int
        Fewest positions for its parameters to be estimable.
    """

    name: str
    coordinates: bool = False
    independent: bool = False
    min_positions: int = 1
    labels: list = []
    kinds: list = []

    def __init__(self, column: str, m: int):
        self.column, self.m = column, int(m)

    @classmethod
    def build(cls, name: str, column: str, m: int, levels, args: tuple) -> "Dim":
        """The dimension for the formula ``name(column, *args)`` with ``m`` positions."""
        return cls(column, m)

    def start(self, E: np.ndarray, present: np.ndarray, axis: int) -> list:
        """Start values of its parameters from OLS residuals ``E`` on the grid (``present``: cells
        with a record) along ``axis``."""
        return []

    @property
    def n_params(self) -> int:
        return len(self.labels)

    def bounds(self):
        return np.empty(0), np.empty(0)

    def basis(self) -> list[sp.csr_matrix]:
        return [sp.identity(self.m, format="csr")]

    def coef(self, th) -> np.ndarray:
        return np.ones(1)

    def dcoef(self, th) -> np.ndarray:
        return np.zeros((1, 0))

    def logdet(self, th) -> float:
        return 0.0

    def dlogdet(self, th) -> np.ndarray:
        return np.zeros(0)

    def inv(self, th):
        """S^-1 (sparse or dense)."""
        return sp.identity(self.m, format="csr")

    def dinv(self, th, j: int):
        raise IndexError(j)  # pragma: no cover - no parameters

    def cov_dinv_apply(self, th, j: int, X: np.ndarray, axis: int) -> np.ndarray:
        """S dS^-1/dtheta_j applied along ``axis``."""
        raise IndexError(j)  # pragma: no cover - no parameters


@register_residual_dim
class IdDim(Dim):
    name = "id"
    independent = True


@register_residual_dim
class Ar1Dim(Dim):
    """AR1 correlation between unit-spaced positions 0..m-1."""

    name = "ar1"
    coordinates = True
    min_positions = 2

    def start(self, E, present, axis):
        """The correlation of neighbouring OLS residuals, damped (they still hold the random effects)."""
        return [float(np.clip(0.5 * _lag_correlation(E, present, axis), -0.5, 0.7))]

    def __init__(self, column: str, m: int):
        super().__init__(column, m)
        self.labels, self.kinds = [f"{column}:cor"], ["cor"]
        off = np.ones(max(m - 1, 0))
        self._A = sp.diags([off, off], [-1, 1], shape=(m, m), format="csr")
        ends = np.zeros(m)
        ends[0] += 1.0
        ends[-1] += 1.0  # m = 1: the single position is both ends
        self._E = sp.diags(ends, format="csr")

    def bounds(self):
        return np.array([-1.0]), np.array([1.0])

    def basis(self):
        return [sp.identity(self.m, format="csr"), self._A, self._E]

    def coef(self, th):
        r = th[0]
        return np.array([1.0 + r * r, -r, -r * r]) / (1.0 - r * r)

    def dcoef(self, th):
        r = th[0]
        d = (1.0 - r * r) ** 2
        return np.array([[4.0 * r], [-(1.0 + r * r)], [-2.0 * r]]) / d

    def logdet(self, th):
        return (self.m - 1) * np.log1p(-th[0] ** 2)

    def dlogdet(self, th):
        return np.array([-2.0 * th[0] * (self.m - 1) / (1.0 - th[0] ** 2)])

    def inv(self, th):
        c = self.coef(th)
        return c[0] * sp.identity(self.m, format="csr") + c[1] * self._A + c[2] * self._E

    def dinv(self, th, j):
        c = self.dcoef(th)[:, j]
        return c[0] * sp.identity(self.m, format="csr") + c[1] * self._A + c[2] * self._E

    def cov_dinv_apply(self, th, j, X, axis):
        # S (dS^-1 X) = solve(S^-1, dS^-1 X): S^-1 is tridiagonal, so no dense m x m matrix
        if self.m == 1:  # S^-1 = 1 whatever rho
            return np.zeros_like(X)
        Y = np.moveaxis(_along(self.dinv(th, j), X, axis), axis, 0)
        shape = Y.shape
        Si = self.inv(th)
        ab = np.zeros((2, self.m))
        ab[0, 1:] = Si.diagonal(1)
        ab[1] = Si.diagonal()
        Z = solveh_banded(ab, Y.reshape(shape[0], -1), check_finite=False)
        return np.moveaxis(Z.reshape(shape), 0, axis)


class CovDim(Dim):
    """A covariance model (us, diag, corh, ...) across the k levels of a factor."""

    def __init__(self, column: str, model: CovModel):
        super().__init__(column, model.n)
        self.model = model
        self.name = model.name
        self.labels = [f"{model.name}({column})!{lab}" for lab in model.labels]
        self.kinds = list(model.kinds)
        self._pairs = [(a, b) for a in range(self.m) for b in range(a + 1)]

    @classmethod
    def build(cls, name, column, m, levels, args):
        return cls(column, make_cov_model(name, levels, args))

    def start(self, E, present, axis):
        """The model's start from the OLS residuals' covariance between the levels."""
        return list(self.model.start(nearest_pd(_cell_covariance(E, present, axis))))

    def bounds(self):
        return self.model.bounds()

    def basis(self):
        out = []
        for a, b in self._pairs:
            M = sp.lil_matrix((self.m, self.m))
            M[a, b] = M[b, a] = 1.0
            out.append(M.tocsr())
        return out

    def _sinv(self, th):
        try:
            return np.linalg.inv(self.model.sigma(th))
        except np.linalg.LinAlgError:  # a step the optimiser rejects, like any other leaving the cone
            raise NotPositiveDefinite(f"the residual covariance {self.model.name}({self.column}) is singular at "
                                      f"these parameters") from None

    def coef(self, th):
        Si = self._sinv(th)
        return np.array([Si[a, b] for a, b in self._pairs])

    def dcoef(self, th):
        Si = self._sinv(th)
        dS = self.model.dsigma(th)
        out = np.empty((len(self._pairs), self.n_params))
        for j in range(self.n_params):
            D = -Si @ dS[j] @ Si
            out[:, j] = [D[a, b] for a, b in self._pairs]
        return out

    def logdet(self, th):
        return float(np.linalg.slogdet(self.model.sigma(th))[1])

    def dlogdet(self, th):
        Si = self._sinv(th)
        return np.array([np.sum(Si * d) for d in self.model.dsigma(th)])

    def inv(self, th):
        return self._sinv(th)

    def dinv(self, th, j):
        Si = self._sinv(th)
        return -Si @ self.model.dsigma(th)[j] @ Si

    def cov_dinv_apply(self, th, j, X, axis):
        Si = self._sinv(th)
        return _along(-self.model.dsigma(th)[j] @ Si, X, axis)


class GroupResidual:
    """R of one residual group: a variance times a Kronecker product of dimensions.

    Parameters
    ----------
    label : str
        The group's label, e.g. ``units`` or ``at(Trial, 3):units``; it names the variance
        (``var_label`` instead when given: ``units!R`` beside a random ``units`` term).
    dims : list of Dim
    n_cells : int
        Cells of the grid (records plus missing cells); the number of records when there are
        no dimensions.
    """

    def __init__(self, label: str, dims: list, n_cells: int, var_label: str | None = None):
        self.label, self.dims, self.n_cells = label, list(dims), int(n_cells)
        self.var_label = var_label or label
        self.scaled = not any(isinstance(d, CovDim) for d in self.dims)  # a covariance model carries the scale
        self.labels = ([self.var_label] if self.scaled else []) + [f"{label}!{lab}" for d in self.dims for lab in d.labels]
        self.kinds = (["var"] if self.scaled else []) + [k for d in self.dims for k in d.kinds]
        k = int(self.scaled)
        self.dim_slices = []  # each dimension's parameters among the group's
        for d in self.dims:
            self.dim_slices.append(slice(k, k + d.n_params))
            k += d.n_params
        self.shape = tuple(d.m for d in self.dims)
        if self.dims and int(np.prod(self.shape)) != self.n_cells:
            raise ValueError("grid shape and number of cells disagree")  # pragma: no cover

    @property
    def n_params(self) -> int:
        return len(self.labels)

    # reported parameters: a covariance model reports its own (us: variances and covariances)
    def _report_labels_of(self, d: Dim) -> list:
        if isinstance(d, CovDim):
            return [f"{self.label}!{d.model.name}({d.column})!{lab}" for lab in d.model.report_labels]
        return [f"{self.label}!{lab}" for lab in d.labels]

    @property
    def report_labels(self) -> list:
        out = [self.var_label] if self.scaled else []
        for d in self.dims:
            out += self._report_labels_of(d)
        return out

    def covariance_models(self) -> list:
        """The covariance models across factors of this group's grid (:class:`ModelSlot`), named
        by the group's label, or with the model's label when the group has several."""
        covs = [(d, sl) for d, sl in zip(self.dims, self.dim_slices) if isinstance(d, CovDim)]
        return [ModelSlot(self.label if len(covs) == 1 else f"{self.label}!{d.model.name}({d.column})", d.model,
                          sl, self._report_labels_of(d)) for d, sl in covs]

    @property
    def report_kinds(self) -> list:
        out = ["var"] if self.scaled else []
        for d in self.dims:
            out += list(d.model.report_kinds) if isinstance(d, CovDim) else list(d.kinds)
        return out

    def report(self, theta) -> np.ndarray:
        s2, ths = self._split(theta)
        out = [np.atleast_1d(s2)] if self.scaled else []
        for d, th in zip(self.dims, ths):
            out.append(d.model.report(th) if isinstance(d, CovDim) else np.asarray(th, float))
        return np.concatenate(out) if out else np.zeros(0)

    def report_jacobian(self, theta) -> np.ndarray:
        s2, ths = self._split(theta)
        blocks = [np.eye(1)] if self.scaled else []
        for d, th in zip(self.dims, ths):
            if isinstance(d, CovDim):
                blocks.append(d.model.report_jacobian(th))
            elif d.n_params:
                blocks.append(np.eye(d.n_params))
        return np.asarray(block_diag(*blocks)) if blocks else np.zeros((0, 0))

    def move(self, theta, step) -> np.ndarray:
        """The parameters after an optimiser step (a covariance dimension moves as its model says)."""
        out = np.asarray(theta, float) + step
        for d, sl in zip(self.dims, self.dim_slices):
            if isinstance(d, CovDim):
                out[sl] = d.model.move(theta[sl], step[sl])
        return out

    @property
    def needs_cells(self) -> bool:
        """Whether the average information needs the residuals on the cells (R not diagonal)."""
        return any(d.n_params for d in self.dims)

    def bounds(self):
        lo, hi = [np.zeros(int(self.scaled))], [np.full(int(self.scaled), np.inf)]
        for d in self.dims:
            a, b = d.bounds()
            lo.append(np.asarray(a, float))
            hi.append(np.asarray(b, float))
        return np.concatenate(lo), np.concatenate(hi)

    def _split(self, theta):
        s2 = theta[0] if self.scaled else 1.0
        return s2, [theta[s] for s in self.dim_slices]

    def basis(self) -> list[sp.csr_matrix]:
        """Cell-by-cell basis matrices B_b (Kronecker products, C order); [] for a plain group."""
        if not self.dims:
            return []
        out = []
        for combo in itertools.product(*[d.basis() for d in self.dims]):
            M = combo[0]
            for B in combo[1:]:
                M = sp.kron(M, B, format="csr")
            out.append(sp.csr_matrix(M))
        return out

    @property
    def n_basis(self) -> int:
        return int(np.prod([len(d.basis()) for d in self.dims])) if self.dims else 1

    def coef(self, theta) -> np.ndarray:
        """c_b(theta) with R^-1 = sum_b c_b B_b."""
        s2, ths = self._split(theta)
        c = np.ones(1) / s2
        for d, th in zip(self.dims, ths):
            c = np.kron(c, d.coef(th))
        return c

    def dcoef(self, theta) -> np.ndarray:
        """(n_basis x n_params) d c_b / d theta_j."""
        s2, ths = self._split(theta)
        cols = []
        if self.scaled:
            cols.append(-self.coef(theta) / s2)
        coefs = [d.coef(th) for d, th in zip(self.dims, ths)]
        for k, (d, th) in enumerate(zip(self.dims, ths)):
            dc = d.dcoef(th)
            for j in range(d.n_params):
                c = np.ones(1) / s2
                for l, cl in enumerate(coefs):
                    c = np.kron(c, dc[:, j] if l == k else cl)
                cols.append(c)
        return np.column_stack(cols) if cols else np.zeros((self.n_basis, 0))

    def logdet(self, theta) -> float:
        s2, ths = self._split(theta)
        out = self.n_cells * np.log(s2) if self.scaled else 0.0
        for d, th in zip(self.dims, ths):
            out += self.n_cells // d.m * d.logdet(th)
        return float(out)

    def dlogdet(self, theta) -> np.ndarray:
        s2, ths = self._split(theta)
        out = [np.array([self.n_cells / s2])] if self.scaled else []
        for d, th in zip(self.dims, ths):
            out.append(self.n_cells // d.m * d.dlogdet(th))
        return np.concatenate(out) if out else np.zeros(0)

    def rinv_apply(self, theta, E: np.ndarray) -> np.ndarray:
        """R^-1 E for E on the grid (shape ``self.shape``)."""
        s2, ths = self._split(theta)
        out = E / s2
        for ax, (d, th) in enumerate(zip(self.dims, ths)):
            out = _along(d.inv(th), out, ax)
        return out

    def q_block(self, theta, ee: float, e_cells: np.ndarray | None) -> np.ndarray:
        """q_i'R^-1 q_j = e'Rdot_i R Rdot_j e for this group's parameters.

        ``ee`` is e'e (enough for a plain group); ``e_cells`` the residuals on the grid (missing
        cells hold their estimated value's residual, zero)."""
        s2, ths = self._split(theta)
        if not self.needs_cells:
            if not self.scaled:  # pragma: no cover - a covariance dimension has parameters
                raise AssertionError
            return np.array([[ee / s2**3]])
        E = e_cells.reshape(self.shape)
        v, w = [], []  # Rdot_j e and R Rdot_j e
        if self.scaled:
            rinv_e = self.rinv_apply(theta, E)
            v.append(-rinv_e / s2)
            w.append(-E / s2)
        for k, (d, th) in enumerate(zip(self.dims, ths)):
            for j in range(d.n_params):
                out = E / s2
                for ax, (dd, tt) in enumerate(zip(self.dims, ths)):
                    out = _along(d.dinv(th, j) if ax == k else dd.inv(tt), out, ax)
                v.append(out)
                w.append(d.cov_dinv_apply(th, j, E, k))
        V = np.stack([x.ravel() for x in v])
        Wm = np.stack([x.ravel() for x in w])
        Q = V @ Wm.T
        return 0.5 * (Q + Q.T)


register_residual_dim(CovDim, COVARIANCE_DIM)
