"""The REML objective in MME space: log-likelihood, exact scores, average information.

    logL = -1/2 [ (n - p) log 2pi + log|C| + log|R| + log|G| + y'Py ],   y'Py = y'R^-1y - s'rhs

Scores use the selected inverse of C; the average information uses working
variates solved with the same factor (shared/design/REML_IN_MME_SPACE.md).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.linalg import block_diag

from ..crossprod import cross_products
from ..design import Design
from ..linalg import SparseLDL
from ..mme import MixedModelEquations
from ..structures import IdentityBlocks, KronStructure, Structure, make_cov_model

__all__ = ["REMLProblem", "Evaluation", "ParameterTable"]

LOG2PI = float(np.log(2.0 * np.pi))


@dataclass
class ParameterTable:
    """Labels and bookkeeping of the variance parameters, random terms first, residual last."""

    labels: list
    term_slices: list  # slice of theta for each random term
    residual_slice: slice
    lower: np.ndarray  # smallest admissible value (0 for variances, -1 for correlations)
    upper: np.ndarray  # largest admissible value (inf, or 1 for correlations)
    kinds: list  # 'var', 'cor', 'cov' or 'load'

    @property
    def n(self) -> int:
        return len(self.labels)

    def index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(label) from None


@dataclass
class Evaluation:
    """Everything computed at one parameter vector; derivatives filled on request."""

    theta: np.ndarray
    loglik: float
    solution: np.ndarray
    parts: dict
    score: np.ndarray | None = None
    ai: np.ndarray | None = None
    curvature: np.ndarray | None = None  # second-derivative term AI omits (nonlinear parameters)
    zc: np.ndarray | None = None
    seconds: dict = field(default_factory=dict)


def structures_for(design: Design) -> list[Structure]:
    """One variance structure per random term: identity blocks (plain, at() and diag() terms) or
    a covariance model across a factor (us, fa, corh, ...) for correlated terms."""
    out = []
    for rb in design.random:
        if rb.cov_levels is not None:
            st = rb.term.struct
            out.append(KronStructure(make_cov_model(st.kind, rb.cov_levels, st.args), rb.units, rb.label))
        else:
            out.append(IdentityBlocks([b[2] for b in rb.blocks], [b[0] for b in rb.blocks]))
    return out


class REMLProblem:
    """Everything that stays fixed while the variance parameters change.

    Parameters
    ----------
    design : Design
    backend : {"cholmod", "qdldl", "auto"}, optional
    """

    def __init__(self, design: Design, backend: str | None = None, structures: list | None = None):
        t0 = time.perf_counter()
        self.design = design
        self.n = design.n
        self.p = design.p
        self.structures = structures if structures is not None else structures_for(design)
        extra = []
        for off, st in zip(design.offsets, self.structures):
            r, c = st.pattern()
            if np.any(r != c):
                extra.append((r + off, c + off))
        self.cp = cross_products(design.W(), design.y, design.residual.codes, design.residual.n_groups, extra)
        self.mme = MixedModelEquations(self.cp, self.p, design.offsets, self.structures)
        t1 = time.perf_counter()
        groups = np.full(self.mme.N, len(self.structures), dtype=np.int64)  # fixed effects: last group
        for k, (off, st) in enumerate(zip(design.offsets, self.structures)):
            groups[off: off + st.size] = k
        self.factor = SparseLDL(self.mme.lower, backend, groups=groups)
        self.seconds = {"data_pass": t1 - t0, "analyse": time.perf_counter() - t1}
        labels, slices, lower, upper, kinds, k = [], [], [], [], [], 0
        for st in self.structures:
            labels += st.labels
            slices.append(slice(k, k + st.n_params))
            lo, hi = st.bounds()
            lower.append(lo)
            upper.append(hi)
            kinds += st.kinds
            k += st.n_params
        ng = design.residual.n_groups
        labels += list(design.residual.labels)
        lower.append(np.zeros(ng))
        upper.append(np.full(ng, np.inf))
        kinds += ["var"] * ng
        self.params = ParameterTable(labels, slices, slice(k, len(labels)), np.concatenate(lower),
                                     np.concatenate(upper), kinds)

    # -- reported parameters ------------------------------------------------------
    @property
    def report_labels(self) -> list:
        return [lab for st in self.structures for lab in st.report_labels] + \
            self.params.labels[self.params.residual_slice]

    @property
    def report_kinds(self) -> list:
        return [k for st in self.structures for k in st.report_kinds] + ["var"] * self.design.residual.n_groups

    def report(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reported parameter values and d(reported)/d(working) (block diagonal)."""
        th_terms, s2 = self.split(theta)
        vals = [st.report(th) for st, th in zip(self.structures, th_terms)] + [s2]
        J = block_diag(*[st.report_jacobian(th) for st, th in zip(self.structures, th_terms)],
                       np.eye(s2.size))
        return np.concatenate(vals), np.asarray(J)

    # -- pieces ------------------------------------------------------------------
    def split(self, theta: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        return [theta[s] for s in self.params.term_slices], theta[self.params.residual_slice]

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        """Log-likelihood and MME solution at ``theta`` (one factorisation)."""
        t0 = time.perf_counter()
        th_terms, s2 = self.split(theta)
        C, H, rhs, yry = self.mme.assemble(th_terms, s2)
        self.factor.factorize(C)
        t1 = time.perf_counter()
        sol = self.factor.solve(rhs)
        logdet_c = self.factor.logdet()
        logdet_r = float(self.cp.counts @ np.log(s2))
        logdet_g = sum(st.logdet(th) for st, th in zip(self.structures, th_terms))
        ypy = yry - float(sol @ rhs)
        loglik = -0.5 * ((self.n - self.p) * LOG2PI + logdet_c + logdet_r + logdet_g + ypy)
        parts = {"logdet_C": logdet_c, "logdet_R": logdet_r, "logdet_G": logdet_g, "yPy": ypy,
                 "C": C, "H": H, "rhs": rhs}
        return Evaluation(theta.copy(), loglik, sol, parts,
                          seconds={"factor": t1 - t0, "solve": time.perf_counter() - t1})

    def derivatives(self, ev: Evaluation) -> Evaluation:
        """Fill the exact scores and the average-information matrix of ``ev``."""
        t0 = time.perf_counter()
        th_terms, s2 = self.split(ev.theta)
        s, mme = ev.solution, self.mme
        zc = self.factor.selected_inverse()
        t1 = time.perf_counter()
        score = np.empty(self.params.n)
        curvature = np.zeros((self.params.n, self.params.n))
        betas = []  # working variates of the random-term parameters, in MME coordinates
        for k, (st, th, off, pos) in enumerate(zip(self.structures, th_terms, mme.offsets, mme.ginv_pos)):
            u = s[off: off + st.size]
            sl = self.params.term_slices[k]
            score[sl] = st.score(th, zc[pos], u)
            curvature[sl, sl] = st.curvature(th, zc[pos], u)
            B = st.dG_apply(th, st.ginv_apply(th, u)).tocoo()
            betas.append(sp.csc_matrix((B.data, (B.row + off, B.col)), shape=(mme.N, st.n_params)))
        sr, scs = mme.group_sr_scs(s)
        ee = self.cp.yty - 2.0 * sr + scs  # e_g'e_g
        tr = mme.group_trace(zc)
        n_g = self.cp.counts
        score[self.params.residual_slice] = -0.5 * (n_g / s2 - tr / s2**2 - ee / s2**2)
        # average information: AI = 1/2 (Q - T'C^-1 T)
        beta = sp.hstack(betas, format="csc") if betas else sp.csc_matrix((mme.N, 0))
        T_g = mme.matvec(ev.parts["H"], beta) if betas else beta  # H beta_i, kept sparse
        T_r = mme.group_residual_rhs(s) @ sp.diags(1.0 / s2**2)
        T = sp.hstack([T_g, T_r], format="csc")
        ng = beta.shape[1]
        Q = np.zeros((self.params.n, self.params.n))
        Q[:ng, :] = (beta.T @ T).toarray()  # q_i'R^-1 q_j = beta_i'H beta_j and beta_i'(r_g - C_g s)/s2_g^2
        Q[ng:, :ng] = Q[:ng, ng:].T
        Q[ng:, ng:] = np.diag(ee / s2**3)
        ai = 0.5 * (Q - self.factor.inverse_quadratic(T))
        ev.score, ev.ai, ev.zc, ev.curvature = score, 0.5 * (ai + ai.T), zc, curvature
        ev.seconds.update(selinv=t1 - t0, derivatives=time.perf_counter() - t1)
        return ev
