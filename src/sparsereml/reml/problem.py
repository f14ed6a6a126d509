"""The REML objective in MME space: log-likelihood, exact scores, average information.

    logL = -1/2 [ (n - p) log 2pi + log|C| + log|R| + log|G| + y'Py ],   y'Py = y'R^-1y - s'rhs

Scores use the selected inverse of C; the average information uses working
variates solved with the same factor (docs/DESIGN.md: "Exact scores", "Average information").
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.linalg import block_diag

from ..control import Control, resolve_control
from ..crossprod import CrossProducts, cross_products
from ..design import Design
from ..design.alias import sparse_aliased
from ..design.fixed import DENSE_MAX
from ..errors import ModelError
from ..linalg import SparseLDL
from ..mme import MixedModelEquations
from .parameters import ParameterTable, parameter_table, residuals_for, structures_for

__all__ = ["REMLProblem", "RecordPart", "record_part", "Evaluation", "ParameterTable", "structures_for", "residuals_for"]

LOG2PI = float(np.log(2.0 * np.pi))


@dataclass
class Evaluation:
    """Everything computed at one parameter vector; derivatives filled on request."""

    theta: np.ndarray
    loglik: float
    solution: np.ndarray  # of the equations for y - Xb (ols_centring); REMLProblem.uncentred for y's
    parts: dict
    score: np.ndarray | None = None
    ai: np.ndarray | None = None
    curvature: np.ndarray | None = None  # second-derivative term AI omits (nonlinear parameters)
    zc: np.ndarray | None = None
    seconds: dict = field(default_factory=dict)
    rough: bool = False  # scores from a selected inverse with its dense block in single precision


WIDE_FIXED = 100  # a fixed term with more columns is ordered like a random term, not in the last group


def fixed_groups(design: Design, k: int, n: int) -> np.ndarray:
    """Ordering groups of the ``n`` unknowns (filled in for the random terms by the caller): the fixed
    effects form the last group, labelled ``k`` + the number of wide fixed terms, except that a
    fixed term with more than WIDE_FIXED columns (contemporary groups, family as fixed) gets a
    group of its own, so its levels are ordered and absorbed like a random term's instead of
    joining the dense block."""
    term_of = np.asarray(design.fixed.term_of, dtype=object)
    labels, counts = np.unique(term_of, return_counts=True) if term_of.size else ([], [])
    wide = [t for t, c in zip(labels, counts) if c > WIDE_FIXED]
    groups = np.full(n, k + len(wide), dtype=np.int64)
    for i, t in enumerate(wide):
        groups[:design.p][term_of == t] = k + i
    return groups


def ols_centring(design: Design, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The OLS coefficients b of y (default the design's response) on X, and y - Xb.

    The REML log-likelihood, its scores and the average information see y only through Py, and
    PX = 0: the equations are formed from y - Xb instead of y (any b would do; OLS is at hand).
    The OLS residuals are far smaller than y (within-trial deviations against the trials' means),
    so y'R^-1 y - s'r cancels far less and logL keeps digits that the step control's tolerance
    needs near the optimum on large data (docs/DESIGN.md).  The fixed effects' solution then lacks
    b (:meth:`REMLProblem.uncentred` adds it back)."""
    X = design.fixed.X
    own = y is None
    y = design.y if own else y
    if X.shape[1] == 0:
        return np.zeros(0), y
    b = design.fixed.ols if own else None
    if b is None and X.shape[1] > DENSE_MAX:  # a wide design built without its response
        b = sparse_aliased(sp.csr_matrix(X), design.fixed.term_of, y)[1]
    elif b is None:
        b = np.linalg.lstsq((X.T @ X).toarray(), X.T @ y, rcond=None)[0]
    return b, y - X @ b


@dataclass
class RecordPart:
    """The part of a problem that the records' response and weights give (the dynamic part):
    what :meth:`REMLProblem.reweight` forms again.

    Attributes
    ----------
    y : ndarray
        The response the equations are formed from.
    weights : ndarray or None
        Record weights: record i's residual variance is R_ii / w_i (None: all 1).
    ols, y_centred : ndarray
        :func:`ols_centring` of ``y``.
    cp : CrossProducts
        The data pass over sqrt(w) [X Z] and sqrt(w) (y - Xb).
    sum_log_weights : float
        sum_i log w_i, which log|R| loses to the weights.
    """

    y: np.ndarray
    weights: np.ndarray | None
    ols: np.ndarray
    y_centred: np.ndarray
    cp: CrossProducts
    sum_log_weights: float = 0.0


def record_part(design: Design, y: np.ndarray | None, weights: np.ndarray | None, extra: list,
                grids: list) -> RecordPart:
    """The data pass for response ``y`` (None: the design's) and record ``weights`` (None: all 1).

    A weighted record enters as its row of [X Z] and its response times sqrt(w_i): the
    cross-products are then W'DW and W'Dy, and a structured residual group's R becomes
    D^-1/2 R D^-1/2 (the same model as in ASReml and lme4).  A design whose records stay in their
    partitions (:mod:`sparsereml.partitioned`) runs its own pass over them."""
    partitions = getattr(design, "partitions", None)
    if partitions is not None:
        if y is not None or weights is not None:
            raise ModelError("a fit to partitioned data cannot be reweighted or given a new response yet (its "
                             "records stay in their partitions); fit the data in memory for that")
        return partitions.record_part(design, extra, grids)
    ols, y_centred = ols_centring(design, y)
    W = design.W()
    yc, total = y_centred, 0.0
    if weights is not None:
        sqrt_w = np.sqrt(weights)
        W = sp.csr_matrix(sp.diags(sqrt_w) @ W)
        yc, total = y_centred * sqrt_w, float(np.sum(np.log(weights)))
    cp = cross_products(W, yc, design.residual.record_group, design.residual.n_groups, extra, grids)
    return RecordPart(design.y if y is None else y, weights, ols, y_centred, cp, total)


def _checked_records(values, name: str, n: int, positive: bool) -> np.ndarray:
    """``values`` as n finite floats (positive ones for weights), else a ModelError naming them."""
    try:
        arr = np.array(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ModelError(f"{name} must be {n:,} numbers, one per record of the fit; got "
                         f"{type(values).__name__}") from None
    if arr.size != n:
        raise ModelError(f"{name} must hold one value per record of the fit ({n:,}), got {arr.size:,}")
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else False)
    if bad.any():
        what = "positive and finite" if positive else "finite"
        raise ModelError(f"{name} must be {what}: record {int(np.flatnonzero(bad)[0])} (0-based, of the "
                         f"records fitted) is {arr[bad][0]!r}; {int(bad.sum()):,} such records")
    return arr


def _check_contrasts(design: Design, structures: list, residuals: list) -> None:
    """Refuse (before the data pass) a model with fewer REML contrasts n - rank(X) than variance
    parameters: the likelihood of those contrasts cannot identify them."""
    k = sum(st.n_params for st in structures) + sum(res.n_params for res in residuals)
    left = design.n - design.p
    if left >= k:
        return
    term_of = design.fixed.term_of
    big = max(set(term_of), key=term_of.count) if term_of else "(Intercept)"
    raise ModelError(f"the fixed effects leave {left:,} residual degrees of freedom (n - rank(X) = "
                     f"{design.n:,} - {design.p:,}; term {big!r} has {term_of.count(big):,} columns), "
                     f"fewer than the {k} variance parameters; fit {big!r} as a random term or drop it")


def _stack_columns(blocks: list, offsets: list, n: int) -> sp.csc_matrix:
    """[B_1 ... B_k] as one n-row CSC matrix, block i's rows moved down by offsets[i] (what
    shifting each block and sp.hstack give, without their checks: this runs every iteration)."""
    if not blocks:
        return sp.csc_matrix((n, 0))
    data = np.concatenate([B.data for B in blocks])
    indices = np.concatenate([B.indices.astype(np.int64) + off for B, off in zip(blocks, offsets)])
    ptr, start = [np.zeros(1, dtype=np.int64)], 0
    for B in blocks:
        ptr.append(B.indptr[1:].astype(np.int64) + start)
        start += B.nnz
    return sp.csc_matrix((data, indices, np.concatenate(ptr)), shape=(n, sum(B.shape[1] for B in blocks)))


class REMLProblem:
    """Everything that stays fixed while the variance parameters change.

    A static part, made once: the structures of the random terms and residual groups, the
    parameter table (``params``), the pattern of the mixed-model equations and the factor's
    symbolic analysis (``factor``).  A dynamic part, :class:`RecordPart` (``records``): the
    response, record weights and the cross-products of the data pass, formed again by
    :meth:`reweight` without a new analysis.

    Parameters
    ----------
    design : Design
    control : Control, optional
        Backend, star switch and thread counts of the analysis, kept as ``problem.control`` for
        the iterations (:func:`~sparsereml.ai_reml`) and start values.
    backend : {"cholmod", "qdldl", "auto"}, optional
        Shortcut that replaces ``control.backend``.
    """

    def __init__(self, design: Design, control: Control | None = None, *, backend: str | None = None,
                 structures: list | None = None):
        self.control = resolve_control(control, backend=backend)
        with self.control.threading():
            self._setup(design, structures)

    def _setup(self, design: Design, structures: list | None) -> None:
        # the static part: structures, parameter table, pattern of the equations, its analysis
        t0 = time.perf_counter()
        self.design = design
        self.n = design.n
        self.p = design.p
        self.structures = structures if structures is not None else structures_for(design)
        self.residuals = residuals_for(design)
        _check_contrasts(design, self.structures, self.residuals)
        self.params = parameter_table(self.structures, self.residuals)
        self._extra = []  # G^-1 entries off the diagonal that W'W may not have
        for off, st in zip(design.offsets, self.structures):
            r, c = st.pattern()
            if np.any(r != c):
                self._extra.append((r + off, c + off))
        self._grids = [None if lay is None else (lay, res.basis())
                       for lay, res in zip(design.residual.grids, self.residuals)]
        # the dynamic part: the data pass for the design's response, unweighted
        self.records = record_part(design, None, None, self._extra, self._grids)
        self.mme = MixedModelEquations(self.records.cp, self.p, design.offsets, self.structures)
        self._components = [np.flatnonzero(self.cp.group_of == g) for g in range(len(self.residuals))]
        t1 = time.perf_counter()
        groups = fixed_groups(design, len(self.structures), self.mme.N)
        for k, (off, st) in enumerate(zip(design.offsets, self.structures)):
            groups[off: off + st.size] = k
        self.column_groups = groups  # each equation's term: what the ordering keeps together
        self.factor = SparseLDL(self.mme.lower, self.control.backend, groups=groups, star=self.control.star)
        self._factored_at = None  # theta of the factorisation the factor holds
        self.seconds = {"data_pass": t1 - t0, "analyse": time.perf_counter() - t1}

    def reweight(self, weights=None, y=None) -> None:
        """Form the equations again for record ``weights`` and/or a new response ``y``, keeping
        the structures, the parameter table and the factor's symbolic analysis.

        Parameters
        ----------
        weights : array of n positive numbers, optional
            Record i's residual variance becomes R_ii / w_i (prior weights, as lme4's and
            ASReml's); None: all 1.  Weights are not cumulative: each call gives the weights anew.
        y : array of n numbers, optional
            The response (records in the order of the fit); None keeps the current one.

        This is the data pass only (one pass over the records); what a GLMM's re-weighting, a
        profile likelihood or a data pass run elsewhere needs between fits."""
        n = self.n
        w = None if weights is None else _checked_records(weights, "weights", n, positive=True)
        y = self.records.y if y is None else _checked_records(y, "y", n, positive=False)
        with self.control.threading():
            t0 = time.perf_counter()
            records = record_part(self.design, y, w, self._extra, self._grids)
            mme = MixedModelEquations(records.cp, self.p, self.design.offsets, self.structures)
        old = self.mme.lower
        if not (np.array_equal(mme.lower.indptr, old.indptr) and np.array_equal(mme.lower.indices, old.indices)):
            raise ModelError("the reweighted equations do not have the pattern the factor was analysed for; "
                             "build a new REMLProblem")
        self.records, self.mme, self._factored_at = records, mme, None
        self.seconds["reweight"] = time.perf_counter() - t0

    # -- the dynamic part ------------------------------------------------------------
    @property
    def cp(self) -> CrossProducts:
        """The cross-products of the current response and weights."""
        return self.records.cp

    @property
    def y(self) -> np.ndarray:
        """The response the equations are formed from."""
        return self.records.y

    @property
    def weights(self) -> np.ndarray | None:
        """The record weights (None: all 1)."""
        return self.records.weights

    @property
    def ols(self) -> np.ndarray:
        return self.records.ols

    @property
    def y_centred(self) -> np.ndarray:
        return self.records.y_centred

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_factored_at"] = None  # an unpickled factor holds no factorisation
        return state

    def uncentred(self, solution: np.ndarray) -> np.ndarray:
        """The MME solution for y itself: the equations are formed from y less its OLS fit
        (:func:`ols_centring`), so the fixed effects get the OLS coefficients back."""
        out = solution.copy()
        out[:self.p] += self.ols
        return out

    # -- reported parameters ------------------------------------------------------
    @property
    def report_labels(self) -> list:
        return [lab for st in self.structures for lab in st.report_labels] + \
            [lab for res in self.residuals for lab in res.report_labels]

    @property
    def report_kinds(self) -> list:
        return [k for st in self.structures for k in st.report_kinds] + \
            [k for res in self.residuals for k in res.report_kinds]

    def report(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reported parameter values and d(reported)/d(working) (block diagonal)."""
        th_terms, th_res = self.split(theta)
        th_groups = self.residual_parts(th_res)
        vals = [st.report(th) for st, th in zip(self.structures, th_terms)] + \
            [res.report(th) for res, th in zip(self.residuals, th_groups)]
        J = block_diag(*[st.report_jacobian(th) for st, th in zip(self.structures, th_terms)],
                       *[res.report_jacobian(th) for res, th in zip(self.residuals, th_groups)])
        return np.concatenate(vals), np.asarray(J)

    # -- pieces ------------------------------------------------------------------
    def split(self, theta: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        return [theta[s] for s in self.params.term_slices], theta[self.params.residual_slice]

    def move(self, theta: np.ndarray, step: np.ndarray) -> np.ndarray:
        """theta after a step, each structure moving its own parameters (us() steps in Sigma)."""
        out = theta + step
        for st, sl in zip(self.structures, self.params.term_slices):
            out[sl] = st.move(theta[sl], step[sl])
        r = self.params.residual_slice
        for res, sl in zip(self.residuals, self.params.group_slices):
            a, b = r.start + sl.start, r.start + sl.stop
            out[a:b] = res.move(theta[a:b], step[a:b])
        return out

    def residual_parts(self, th_res: np.ndarray) -> list[np.ndarray]:
        """The residual parameters split by group."""
        return [th_res[s] for s in self.params.group_slices]

    def residual_coef(self, th_res: np.ndarray) -> np.ndarray:
        """Coefficients c_k of the residual components (R^-1 = sum_k c_k B_k)."""
        coef = np.empty(self.cp.n_components)
        for res, th, comp in zip(self.residuals, self.residual_parts(th_res), self._components):
            coef[comp] = res.coef(th)
        return coef

    def residual_dcoef(self, th_res: np.ndarray) -> np.ndarray:
        """(K x n residual parameters) d c_k / d theta_j."""
        D = np.zeros((self.cp.n_components, th_res.size))
        for res, th, comp, sl in zip(self.residuals, self.residual_parts(th_res), self._components,
                                     self.params.group_slices):
            D[np.ix_(comp, np.arange(sl.start, sl.stop))] = res.dcoef(th)
        return D

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        """Log-likelihood and MME solution at ``theta`` (one factorisation)."""
        t0 = time.perf_counter()
        th_terms, th_res = self.split(theta)
        C, H, rhs, yry = self.mme.assemble(th_terms, self.residual_coef(th_res))
        self._factored_at = None
        self.factor.factorize(C)
        self._factored_at = theta.copy()
        t1 = time.perf_counter()
        sol = self.factor.solve(rhs)
        logdet_c = self.factor.logdet()
        logdet_r = sum(res.logdet(th) for res, th in zip(self.residuals, self.residual_parts(th_res))) \
            - self.records.sum_log_weights
        logdet_g = sum(st.logdet(th) for st, th in zip(self.structures, th_terms))
        ypy = yry - float(sol @ rhs)
        loglik = -0.5 * ((self.n - self.p) * LOG2PI + logdet_c + logdet_r + logdet_g + ypy)
        parts = {"logdet_C": logdet_c, "logdet_R": logdet_r, "logdet_G": logdet_g, "yPy": ypy,
                 "C": C, "H": H, "rhs": rhs}
        return Evaluation(theta.copy(), loglik, sol, parts,
                          seconds={"factor": t1 - t0, "solve": time.perf_counter() - t1})

    def derivatives(self, ev: Evaluation, scores: bool = True, rough: bool = False, ai: bool = True) -> Evaluation:
        """Fill the scores (exact unless ``rough``) and the average-information matrix of ``ev``.

        With ``ai=False`` only the scores are formed (what numerical second derivatives need).

        With ``scores=False`` only the average information is formed: it needs solves with the
        factor, not its selected inverse.  With ``rough=True`` a wide dense block of the selected
        inverse may be inverted in single precision (see ``SparseLDL.selected_inverse``): the
        scores then carry rounding errors that do not matter for a step far from the optimum;
        ``ev.rough`` says whether that happened, and then the selected inverse is not kept for
        PEVs.  AI is exact either way: an ``ev`` that has it keeps it (exact scores after rough
        ones need only a new selected inverse)."""
        t0 = time.perf_counter()
        self.hold(ev)
        th_terms, th_res = self.split(ev.theta)
        # AI's arrays live until the scores are done: freed before the selected inverse, the
        # allocator returns them to the system and the inverse's own arrays take fresh pages
        ai_arrays = None
        if ev.ai is None and ai:
            ev.ai, ee, ai_arrays = self._average_information(ev, th_terms, th_res)
        else:
            ee = self._residual_ss(ev.solution)
        t1 = time.perf_counter()
        if scores:
            zc = self.factor.selected_inverse(single=rough)
            ev.score, ev.curvature = self._scores(ev, zc, th_terms, th_res, ee)
            ev.rough = bool(rough and self.factor.single_used)
            ev.zc = None if ev.rough else zc
        ev.seconds.update(derivatives=t1 - t0, selinv=time.perf_counter() - t1)
        del ai_arrays
        return ev

    def _residual_ss(self, s: np.ndarray) -> np.ndarray:
        """e'B_k e for every residual component, e = y - W s."""
        sr, scs = self.mme.component_sr_scs(s)
        return self.cp.yty - 2.0 * sr + scs

    def _average_information(self, ev: Evaluation, th_terms: list, th_res: np.ndarray):
        """AI = 1/2 (Q - T'C^-1 T), T = W'R^-1 [q_1 ... q_m] (working variates q), e'B_k e, and
        the arrays made on the way."""
        s, mme = ev.solution, self.mme
        # working variates of the random-term parameters, in MME coordinates
        beta = _stack_columns([sp.csc_matrix(st.working_variates(th, s[off: off + st.size]))
                               for st, th, off in zip(self.structures, th_terms, mme.offsets)], mme.offsets, mme.N)
        # H beta_i, kept sparse (before e'B_k e: it may form W'W s on the way)
        T_g = mme.h_products(ev.parts["H"], self.residual_coef(th_res), beta, s) if beta.shape[1] else beta
        ee = self._residual_ss(s)
        T_r = -(mme.component_residual_rhs(s) @ sp.csc_matrix(self.residual_dcoef(th_res)))  # -W'Rdot_j e
        # dense when H beta came back dense (mostly nonzero working variates)
        T = np.column_stack([T_g, T_r.toarray()]) if isinstance(T_g, np.ndarray) else \
            sp.hstack([T_g, T_r], format="csc")
        ng = beta.shape[1]
        Q = np.zeros((self.params.n, self.params.n))
        BT = beta.T @ T
        Q[:ng, :] = BT if isinstance(BT, np.ndarray) else BT.toarray()  # beta_i'H beta_j and beta_i'T_j
        Q[ng:, :ng] = Q[:ng, ng:].T
        Q[ng:, ng:] = self._residual_q(self.residual_parts(th_res), ee, s)
        ai = 0.5 * (Q - self.factor.inverse_quadratic(T))
        return 0.5 * (ai + ai.T), ee, (beta, T_g, T_r, T, BT)

    def _scores(self, ev: Evaluation, zc: np.ndarray, th_terms: list, th_res: np.ndarray, ee: np.ndarray):
        """Scores from the selected inverse ``zc``, and the second-derivative term AI omits."""
        s, mme = ev.solution, self.mme
        score = np.empty(self.params.n)
        curvature = np.zeros((self.params.n, self.params.n))
        for k, (st, th, off, pos) in enumerate(zip(self.structures, th_terms, mme.offsets, mme.ginv_pos)):
            u = s[off: off + st.size]
            sl = self.params.term_slices[k]
            score[sl] = st.score(th, zc[pos], u)
            curvature[sl, sl] = st.curvature(th, zc[pos], u)
        # residual parameters: dlogL/dtheta_j = -1/2 [dlog|R| + sum_k dc_k (tr(C^-1 C_k) + e'B_k e)]
        tr = mme.component_trace(zc)
        dlogdet_r = np.concatenate([res.dlogdet(th) for res, th in zip(self.residuals, self.residual_parts(th_res))])
        score[self.params.residual_slice] = -0.5 * (dlogdet_r + self.residual_dcoef(th_res).T @ (tr + ee))
        return score, curvature

    def selected_inverse(self, ev: Evaluation) -> np.ndarray:
        """C^-1 on the pattern of C at ``ev`` (kept in ``ev.zc``); the equations are factorised
        again when the factor has moved on to another point since."""
        if ev.zc is None:
            self.hold(ev)
            ev.zc = self.factor.selected_inverse()
        return ev.zc

    def hold(self, ev: Evaluation) -> None:
        """Factorise again at ``ev.theta`` if the factor has moved on to another point (or holds
        no factorisation, as after unpickling)."""
        if self._factored_at is None or not np.array_equal(self._factored_at, ev.theta):
            self.evaluate(ev.theta)

    def _residual_q(self, th_groups: list, ee: np.ndarray, s: np.ndarray) -> np.ndarray:
        """q_i'R^-1 q_j for the residual parameters: block diagonal by group; a structured group
        needs its residuals on the grid (the one pass over records in an iteration)."""
        blocks = []
        for g, (res, th, comp) in enumerate(zip(self.residuals, th_groups, self._components)):
            if res.needs_cells:
                Wc, yc = self.cp.cells[g]
                blocks.append(res.q_block(th, 0.0, yc - Wc @ s))
            else:
                blocks.append(res.q_block(th, float(ee[comp].sum()), None))
        return np.asarray(block_diag(*blocks)) if blocks else np.zeros((0, 0))
