"""The covariance of the fixed effects and its derivatives by the variance parameters, in MME space.

With C the mixed-model equations' matrix at the REML estimates,

    Phi = (X'V^-1X)^-1 = (C^-1)_XX,     M = (C^-1)_{.X} Phi^-1  (N x p, top block I),

and, because V^-1 X = R^-1 W M (W = [X Z], M's random rows are -G Z'V^-1X), every quantity that
Kenward-Roger and Satterthwaite need is a p x p product formed from p solves with the factor
already at hand, the structures' G^-1 and dG, and the residual components' cross-products:

    P_i = d(X'V^-1X)/d theta_i = -X'V^-1 V_i V^-1 X
        random term k:    -A_k' dG_i A_k,          A_k = Z_k'V^-1X = -G_k^-1 M_k
        residual:         sum_c dc_c/dtheta_i M'H_c M   (R^-1 = sum_c c_c B_c, H_c = W'B_c W)
    Q_ij = X'V^-1 V_i V^-1 V_j V^-1 X = F_i'P F_j + P_i Phi P_j,   F_i = V_i V^-1 X

(docs/DESIGN.md, "Tests of fixed effects").  No n x n matrix and no dense V is formed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError
from ..reml.problem import Evaluation, REMLProblem

__all__ = ["FixedEffectsCovariance", "MAX_ENTRIES"]

MAX_ENTRIES = 250_000_000  # numbers (2 GB) an array of these quantities may hold


@dataclass
class FixedEffectsCovariance:
    """Phi = var(b-hat) at ``ev`` and its exact derivatives (see the module docstring).

    Attributes
    ----------
    phi : ndarray (p x p)
    M : ndarray (N x p)
        (C^-1)_{.X} Phi^-1.
    """

    problem: REMLProblem
    ev: Evaluation
    phi: np.ndarray = field(init=False)
    M: np.ndarray = field(init=False)

    def __post_init__(self):
        prob = self.problem
        p, N = prob.p, prob.mme.N
        if N * p > MAX_ENTRIES:
            raise ModelError(f"tests of fixed effects need C^-1's {p:,} fixed-effect columns ({N:,} x {p:,} numbers, "
                             f"{8 * N * p / 1e9:.1f} GB); fit the widest fixed terms as random, or test fewer "
                             f"columns")
        prob.hold(self.ev)  # the factor must hold the reported point
        E = np.zeros((N, p))
        E[np.arange(p), np.arange(p)] = 1.0
        S = prob.factor.solve(E)
        phi = S[:p]
        self.phi = 0.5 * (phi + phi.T)
        self.M = np.linalg.solve(self.phi, S.T).T  # S Phi^-1 (Phi symmetric)
        self._th_terms, self._th_res = prob.split(self.ev.theta)
        self._P = None
        self._T = None
        self._Q = None
        self._HcM = None

    # -- first derivatives -----------------------------------------------------------
    def _random_blocks(self):
        """Per random term: (structure, its parameters, offset, A_k = Z_k'V^-1X)."""
        prob = self.problem
        for st, th, off in zip(prob.structures, self._th_terms, prob.mme.offsets):
            Mk = self.M[off: off + st.size]
            A = -np.column_stack([st.ginv_apply(th, Mk[:, c]) for c in range(Mk.shape[1])]) \
                if Mk.shape[1] else np.zeros((st.size, 0))
            yield st, th, off, A

    def _component_products(self) -> list:
        """H_c M for every residual component c (H_c on the equations' pattern), formed once."""
        if self._HcM is None:
            prob = self.problem
            WtW = prob.cp.WtW.tocsc()
            self._HcM = [prob.mme.matvec(WtW[:, c].toarray().ravel(), self.M) for c in range(WtW.shape[1])]
        return self._HcM

    @property
    def P(self) -> list[np.ndarray]:
        """P_i = d(X'V^-1X)/d theta_i for every working parameter, in the order of ``params``."""
        if self._P is None:
            self._P, self._T = self._first_derivatives()
        return self._P

    def _first_derivatives(self):
        prob = self.problem
        P, T = [], []
        for st, th, off, A in self._random_blocks():
            # dG_i A for each parameter i: the columns of A one at a time
            per_col = [st.dG_apply(th, A[:, c]).toarray() for c in range(A.shape[1])]
            for i in range(st.n_params):
                dGA = np.column_stack([d[:, i] for d in per_col]) if per_col else np.zeros((st.size, 0))
                P.append(-(A.T @ dGA))
                Ti = np.zeros((prob.mme.N, A.shape[1]))
                Ti[off: off + st.size] = dGA
                T.append(Ti)
        MHM = [self.M.T @ HM for HM in self._component_products()]
        D = prob.residual_dcoef(self._th_res)  # (components x residual parameters)
        for j in range(D.shape[1]):
            P.append(sum(D[c, j] * MHM[c] for c in range(D.shape[0]) if D[c, j] != 0.0))
            T.append(None)
        return [0.5 * (x + x.T) for x in P], T

    def dphi(self) -> list[np.ndarray]:
        """d Phi / d theta_i = -Phi P_i Phi."""
        return [-(self.phi @ Pi @ self.phi) for Pi in self.P]

    # -- second-order products (Kenward-Roger) ------------------------------------------
    def Q(self) -> np.ndarray:
        """Q_ij = X'V^-1 V_i V^-1 V_j V^-1 X (k x k x p x p), for models whose residual groups
        are independent records with one variance each (formed once)."""
        if self._Q is None:
            self._Q = self._second_products()
        return self._Q

    def _second_products(self) -> np.ndarray:
        prob = self.problem
        k, p = len(self.P), self.phi.shape[0]
        if k * k * p * p > MAX_ENTRIES:
            raise ModelError(f"Kenward-Roger needs {k} x {k} products of {p} x {p} matrices "
                             f"({8 * k * k * p * p / 1e9:.1f} GB) here; use ddf='satterthwaite'")
        if any(res.n_params != 1 or res.needs_cells for res in prob.residuals):
            raise ModelError("Kenward-Roger needs independent residuals with one variance per group "
                             "(no residual grid or correlation); use ddf='satterthwaite'")
        P = self.P
        k, p = len(P), self.phi.shape[0]
        H = self.ev.parts["H"]
        mme = prob.mme
        U = []  # U_i = W'R^-1 F_i
        n_random = sum(st.n_params for st in prob.structures)
        groups = [np.flatnonzero(prob.cp.group_of == g) for g in range(len(prob.residuals))]
        sig = np.array([float(th[0]) for th in prob.residual_parts(self._th_res)])
        HcM = [self._component_products()[comp[0]] for comp in groups]
        for i in range(k):
            if i < n_random:
                U.append(mme.matvec(H, self._T[i]))
            else:
                g = i - n_random
                U.append(HcM[g] / sig[g] ** 2)
        R = np.zeros((k, k, p, p))
        for i in range(k):
            for j in range(i, k):
                if i < n_random:
                    R[i, j] = self._T[i].T @ U[j]
                elif i == j:
                    g = i - n_random
                    R[i, j] = (self.M.T @ HcM[g]) / sig[g] ** 3
                R[j, i] = R[i, j].T
        CU = [prob.factor.solve(u) for u in U]
        Q = np.empty((k, k, p, p))
        for i in range(k):
            for j in range(i, k):
                fpf = R[i, j] - U[i].T @ CU[j]
                Q[i, j] = fpf + P[i] @ self.phi @ P[j]
                Q[j, i] = Q[i, j].T
        return Q
