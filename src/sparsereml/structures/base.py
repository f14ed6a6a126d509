"""Variance-structure layer: what each random term contributes to the MME.

A structure describes G(theta) for the q columns of one random term through
its inverse on a fixed sparse pattern (local, lower triangle with diagonal),
its log-determinant and their derivatives.  The REML stage needs nothing else:

    score_i = -1/2 [ dlog|G|/dtheta_i + tr(dGinv_i C^-1_kk) + u' dGinv_i u ]
    working variate of theta_i: beta_i = dG/dtheta_i G^-1 u  (in the term's columns)

New structures subclass :class:`Structure`; the covariance models (diag, us, fa, ...) are in ``covariance.py``
and the other modules of this package, each registered by name (:mod:`sparsereml.registry`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["Structure", "IdentityBlocks", "ModelSlot"]


@dataclass(frozen=True)
class ModelSlot:
    """A covariance model inside a structure (random term or residual group).

    Attributes
    ----------
    name : str
        What ``FittedModel.vcov`` calls it: the term's label, or the residual group's.
    model : CovModel
    params : slice
        Its parameters among the structure's.
    report_labels : list
        Labels of its reported parameters, as in ``varcomp``.
    """

    name: str
    model: object
    params: slice
    report_labels: list


class Structure(ABC):
    """Covariance structure G(theta) of one random term."""

    size: int
    labels: list

    @property
    def n_params(self) -> int:
        return len(self.labels)

    @abstractmethod
    def pattern(self) -> tuple[np.ndarray, np.ndarray]:
        """Local (row, col) of the lower-triangle nonzeros of G^-1, row >= col."""

    @abstractmethod
    def ginv(self, theta: np.ndarray) -> np.ndarray:
        """Values of G^-1 on :meth:`pattern`."""

    @abstractmethod
    def dginv(self, theta: np.ndarray) -> sp.csr_matrix:
        """(n_params x nnz) sparse: derivative of G^-1's pattern values by each parameter."""

    @abstractmethod
    def logdet(self, theta: np.ndarray) -> float:
        """log |G|."""

    @abstractmethod
    def dlogdet(self, theta: np.ndarray) -> np.ndarray:
        """d log|G| / d theta_i."""

    @abstractmethod
    def dG_apply(self, theta: np.ndarray, x: np.ndarray) -> sp.csc_matrix:
        """(size x n_params) sparse: column i is (dG/dtheta_i) x."""

    @property
    def kinds(self) -> list:
        """'var', 'cor', 'cov' or 'load' for each parameter."""
        return ["var"] * self.n_params

    def covariance_models(self) -> list:
        """The covariance models of this structure (:class:`ModelSlot`); none for variances only."""
        return []

    def move(self, theta: np.ndarray, step: np.ndarray) -> np.ndarray:
        """The parameters after an optimiser step (plain addition unless a structure says otherwise)."""
        return theta + step

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest admissible value of each parameter."""
        return np.zeros(self.n_params), np.full(self.n_params, np.inf)

    # Reported parameters (what varcomp shows) are the working ones unless a structure
    # reparametrises (us() works on a Cholesky factor).
    @property
    def report_labels(self) -> list:
        return list(self.labels)

    @property
    def report_kinds(self) -> list:
        return list(self.kinds)

    def report(self, theta: np.ndarray) -> np.ndarray:
        return np.asarray(theta, dtype=float)

    def report_jacobian(self, theta: np.ndarray) -> np.ndarray:
        return np.eye(self.n_params)

    def ginv_apply(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        """G^-1 u from the pattern values."""
        r, c = self.pattern()
        v = self.ginv(theta)
        out = np.bincount(r, weights=v * u[c], minlength=self.size)
        off = r != c
        out += np.bincount(c[off], weights=v[off] * u[r[off]], minlength=self.size)
        return out

    def working_variates(self, theta: np.ndarray, u: np.ndarray) -> sp.csc_matrix:
        """(size x n_params): column i is dG/dtheta_i G^-1 u (the BLUPs' part of q_i)."""
        return self.dG_apply(theta, self.ginv_apply(theta, u))

    def curvature(self, theta: np.ndarray, zpat: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Second-derivative term of -d2logL missing from AI (zero for parameters linear in G)."""
        return np.zeros((self.n_params, self.n_params))

    def score(self, theta: np.ndarray, zpat: np.ndarray, u: np.ndarray) -> np.ndarray:
        """dlogL/dtheta from the selected inverse on the pattern (``zpat``) and the BLUPs ``u``."""
        r, c = self.pattern()
        w = np.where(r == c, 1.0, 2.0)
        D = self.dginv(theta)
        return -0.5 * (self.dlogdet(theta) + D @ (w * zpat) + D @ (w * u[r] * u[c]))


class IdentityBlocks(Structure):
    """G = diag(theta_1 I_q1, theta_2 I_q2, ...): one variance per block of columns.

    A plain random term is one block; ``at(F):T`` is one block per level of F.
    """

    def __init__(self, sizes: list[int], labels: list[str]):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.labels = list(labels)
        self.size = int(self.sizes.sum())
        self.block_of = np.repeat(np.arange(len(sizes)), self.sizes)
        self._ptr = np.concatenate([[0], np.cumsum(self.sizes)])  # block i: columns ptr[i]..ptr[i+1]-1

    def pattern(self):
        i = np.arange(self.size, dtype=np.int64)
        return i, i

    def ginv(self, theta):
        return 1.0 / theta[self.block_of]

    def ginv_apply(self, theta, u):
        return u / theta[self.block_of]  # G is diagonal: no pass over its pattern

    def dginv(self, theta):
        vals = -1.0 / theta[self.block_of] ** 2
        return sp.csr_matrix((vals, (self.block_of, np.arange(self.size))), shape=(self.n_params, self.size))

    def logdet(self, theta):
        return float(np.sum(self.sizes * np.log(theta)))

    def dlogdet(self, theta):
        return self.sizes / theta

    def dG_apply(self, theta, x):
        # the blocks are contiguous: column i holds x on block i
        return sp.csc_matrix((np.asarray(x, dtype=float), np.arange(self.size), self._ptr),
                             shape=(self.size, self.n_params))

    def score(self, theta, zpat, u):
        # closed form of the generic rule: -1/2 [q/s2 - (tr C^-1_kk + u'u)/s2^2]
        t = np.bincount(self.block_of, weights=zpat + u * u, minlength=self.n_params)
        return -0.5 * (self.sizes / theta - t / theta**2)
