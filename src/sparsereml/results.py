"""Results stage: a fitted model shows itself as tables (every table is a DataFrame)."""
from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from .control import Control
from .equations import EquationsDescription, describe_equations
from .inference.methods import FixedEffectsInference
from .summary import SummaryMethods
from .errors import ModelError, UnknownName
from .reml.optimizer import OptimResult
from .reml.problem import LOG2PI, REMLProblem

__all__ = ["FittedModel", "save_model", "load_model"]


class FittedModel(FixedEffectsInference, SummaryMethods):
    """A model fitted by REML.

    Attributes
    ----------
    varcomp : DataFrame
        Variance parameters indexed by label: ``component``, ``std.error`` (from the
        inverse average-information matrix), ``z.ratio``, ``bound`` (P positive,
        B held at the boundary, F fixed) and ``%ch`` (percent change in the last iteration).
    loglik : float
        Full REML log-likelihood in lme4's convention (``logLik(m, REML = TRUE)``).
    loglik_asreml : float
        ``loglik + (n - p)/2 log(2 pi)``, the value ASReml prints.
    aic, bic : float
        ``-2 loglik + 2 k`` and ``-2 loglik + k log(n - p)`` with k the number of estimated
        (code P) variance parameters (asremlPlus convention, on ``loglik``).
    fixed : DataFrame
        Fixed effects: ``estimate``, ``std.error``, ``z``.
    converged : bool
    iterations : DataFrame
        One row per iteration: logL, every parameter, seconds.
    """

    def __init__(self, problem: REMLProblem, result: OptimResult, seconds: dict | None = None,
                 control: Control | None = None):
        self._problem = problem
        self.control = control if control is not None else problem.control
        self._result = result
        self.design = problem.design
        self.spec = problem.design.spec
        self.seconds = dict(seconds or {})
        ev = result.evaluation
        self.theta_working = ev.theta.copy()
        self._working_codes = np.array(result.codes, dtype=object)
        self.theta, self._jacobian = problem.report(ev.theta)
        self.labels = list(problem.report_labels)
        self.codes = self._report_codes()
        self.converged = bool(result.converged)
        self.message = result.message
        self.backend = problem.factor.backend
        self.solution = problem.uncentred(ev.solution)
        self._evaluation = ev  # its selected inverse (PEVs) is formed on first use
        self._ai = ev.ai
        self.loglik = float(ev.loglik)
        self.nobs = problem.n
        self.rank = problem.p
        self.n_dropped = problem.design.data.n_dropped
        self.n_dropped_predictors = problem.design.data.n_dropped_predictors
        self.n_dropped_infinite = problem.design.data.n_dropped_infinite
        mme = problem.mme
        self._diag_pos = np.empty(mme.N, dtype=np.int64)
        on = mme.rows == mme.cols
        self._diag_pos[mme.rows[on]] = np.flatnonzero(on)

    @property
    def problem(self) -> REMLProblem:
        """The REMLProblem fitted (structures, parameter table, equations, factor)."""
        return self._problem

    @property
    def result(self) -> OptimResult:
        """What :func:`~sparsereml.ai_reml` returned: the last evaluation, codes, history."""
        return self._result

    def _report_codes(self) -> list:
        """A reported parameter is F when all it depends on is fixed, B when any of it is at a bound."""
        out = []
        for row in self._jacobian:
            used = self._working_codes[np.abs(row) > 0]
            out.append("F" if used.size and (used == "F").all() else "B" if (used == "B").any() else "P")
        return out

    # -- likelihood summaries ---------------------------------------------------------
    likelihood = "REML"  # what loglik is (a GLMM's: "Laplace" or "PQL"); fits of different kinds are not compared

    @property
    def equations(self) -> EquationsDescription:
        """The mixed-model equations block by block (term, levels, columns, structure and how the
        factor stores them) with the totals of their factor: an
        :class:`~sparsereml.equations.EquationsDescription` that prints as a table
        (``print(m.equations)``, ``m.equations.to_frame()``; for the curious and for tuning)."""
        self._problem.hold(self._evaluation)  # a loaded model's factor is analysed, not yet factorised
        return describe_equations(self.design, self._problem.factor)

    @property
    def loglik_asreml(self) -> float:
        return self.loglik + 0.5 * (self.nobs - self.rank) * LOG2PI

    @property
    def n_params(self) -> int:
        """Number of estimated variance parameters (code P)."""
        return int(np.sum(self._working_codes == "P"))

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + self.n_params * np.log(self.nobs - self.rank)

    # -- variance parameters -----------------------------------------------------------
    def _working_vcov(self) -> np.ndarray:
        """Inverse AI over the estimated working parameters; NaN rows/columns for B and F."""
        return self._inverse_ai.copy()

    @cached_property
    def _inverse_ai(self) -> np.ndarray:
        # once per model (the results ask for it a dozen times), with one BLAS thread: from 64
        # parameters OpenBLAS starts its threads, which wait for cores on a busy machine
        free = self._working_codes == "P"
        V = np.full((free.size, free.size), np.nan)
        idx = np.flatnonzero(free)
        if idx.size:
            with self.control.threading():
                V[np.ix_(idx, idx)] = np.linalg.pinv(self._ai[np.ix_(idx, idx)])
        return V

    @cached_property
    def vcov_params(self) -> pd.DataFrame:
        """Sampling covariance of the reported parameters: the inverse average-information matrix
        over the estimated (P) working parameters, mapped by the delta method; NaN where a
        parameter depends on one held at a bound or fixed."""
        V = np.nan_to_num(self._working_vcov())
        J = self._jacobian
        out = J @ V @ J.T
        bad = np.array([c != "P" for c in self.codes])
        out[bad, :] = np.nan
        out[:, bad] = np.nan
        return pd.DataFrame(out, index=self.labels, columns=self.labels)

    def vcov_reported(self) -> np.ndarray:
        """J V J' over all reported parameters, with V the inverse AI over the estimated working
        parameters and zero for those held at a bound or fixed (they count as known): unlike
        ``vcov_params`` it keeps the uncertainty of a us() entry whose Cholesky factor has a
        held diagonal but free other entries."""
        V = np.nan_to_num(self._working_vcov())
        return self._jacobian @ V @ self._jacobian.T

    @cached_property
    def varcomp(self) -> pd.DataFrame:
        se = np.sqrt(np.clip(np.diag(self.vcov_params.to_numpy()), 0, None))
        prev = self._result.previous_theta
        if prev is not None:
            prev = self._problem.report(prev)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = (100.0 * (self.theta - prev) / prev) if prev is not None else np.zeros_like(self.theta)
            z = self.theta / se
        df = pd.DataFrame({"component": self.theta, "std.error": se, "z.ratio": z, "bound": self.codes,
                           "%ch": np.round(pct, 1) + 0.0}, index=pd.Index(self.labels, name="term"))
        return df

    # -- fixed and random effects ----------------------------------------------------------
    def _pev(self, start: int, size: int) -> np.ndarray:
        zc = self._evaluation.zc  # kept once computed: setting the thread counts costs more than a lookup
        if zc is None:
            with self.control.threading():  # the fit's thread counts, one BLAS thread for small blocks
                zc = self._problem.selected_inverse(self._evaluation)
        return zc[self._diag_pos[start:start + size]]

    @cached_property
    def fixed(self) -> pd.DataFrame:
        p = self.rank
        est = self.solution[:p]
        se = np.sqrt(self._pev(0, p))
        return pd.DataFrame({"estimate": est, "std.error": se, "z": est / se},
                            index=pd.Index(self.design.fixed.names, name="effect"))

    @property
    def formulas(self) -> dict:
        """The fixed, random and residual formulas as given."""
        return self.spec.formulas

    @property
    def response(self) -> np.ndarray:
        """The response of each record used (one value per record and trait for several traits)."""
        return self.design.y

    @property
    def holds_records(self) -> bool:
        """Whether the records are in this process (False for a fit to partitioned data)."""
        return self.design.holds_records

    @cached_property
    def response_summary(self) -> np.ndarray:
        """(values, sum of y, sum of y^2) of the response used: how :func:`sparsereml.compare`
        tells that fits without their records at hand (partitioned data, results read without
        records.csv) used the same records."""
        return self.design.response_summary()

    @property
    def fixed_names(self) -> list[str]:
        """Names of the fixed effects estimated (aliased ones dropped), as ``fixed``'s index."""
        return list(self.design.fixed.names)

    @property
    def random_terms(self) -> list[str]:
        return [rb.label for rb in self.design.random]

    def blups(self, term: str) -> pd.DataFrame:
        """BLUPs of one random term with their prediction-error variance (PEV, from the full
        MME inverse, i.e. including the uncertainty of the fixed effects) and standard error."""
        labels = self.random_terms
        if term not in labels:
            raise UnknownName(f"{term!r} is not a random term of this model (terms: {', '.join(labels)})")
        k = labels.index(term)
        rb = self.design.random[k]
        off = self.design.offsets[k]
        u = self.solution[off:off + rb.size]
        pev = self._pev(off, rb.size)
        return pd.DataFrame({"BLUP": u, "PEV": pev, "std.error": np.sqrt(pev)},
                            index=pd.Index(list(rb.levels), name=term))

    def vpredict(self, expressions) -> pd.DataFrame:
        """Functions of the variance components with delta-method standard errors, e.g.
        ``m.vpredict({"h2": "4 * Mother / (Mother + `Trial:Mother` + units)"})`` (see
        :func:`sparsereml.genetics.vpredict`)."""
        from .genetics import vpredict

        return vpredict(self, expressions)

    def confint(self, terms=None, method: str = "wald", level: float = 0.95) -> pd.DataFrame:
        """Confidence intervals of the variance parameters by label: ``estimate``, ``lower``,
        ``upper``, ``method``, ``note``; ``method="wald"`` (estimate +- z std.error) or
        ``"profile"`` (likelihood-ratio limits from refits of the same problem; see
        :func:`sparsereml.confint.confint`)."""
        from .confint import confint

        return confint(self, terms, method, level)

    def breeding_values(self, term: str) -> pd.DataFrame:
        """BLUP, PEV, reliability and accuracy of every individual of a vm() term (see
        :func:`sparsereml.genetics.breeding_values`)."""
        from .genetics import breeding_values

        return breeding_values(self, term)

    def vcov(self, term: str) -> dict:
        """The estimated covariance of a random term's effects across its structure's factor (or of
        a residual covariance model, e.g. ``vcov("units")`` for the residual between traits).

        Returns a dict with ``covariance``, its ``covariance_se`` (delta method from the inverse
        average information, parameters held at a bound taken as known) and ``correlation``
        (DataFrames indexed by the levels); for ``fa(F, k)`` also ``loadings`` (levels x
        factors) and ``specific`` variances.  A plain term gives its 1 x 1 variance, an
        at()/diag() term the diagonal.
        """
        labels = self.random_terms
        residual = self._residual_models()
        if term in residual:
            model, sl = residual[term]
            return self._cov_tables(model, self.theta_working[sl], np.nan_to_num(self._working_vcov()[sl, sl]))
        if term not in labels:
            raise UnknownName(f"{term!r} is not a random term of this model (terms: {', '.join(labels)}; "
                           f"residual covariance models: {', '.join(residual) or 'none'})")
        k = labels.index(term)
        st = self._problem.structures[k]
        th = self.theta_working[self._problem.params.term_slices[k]]
        rb = self.design.random[k]
        sl = self._problem.params.term_slices[k]
        V = np.nan_to_num(self._working_vcov()[sl, sl])  # parameters at a bound count as known
        for slot in st.covariance_models():
            return self._cov_tables(slot.model, th[slot.params], V[slot.params, slot.params])
        return self._cov_tables(_Diagonal([b.label for b in rb.blocks]), th, V)

    @property
    def residual_covariance_models(self) -> list[str]:
        """Names of the residual's covariance models (``units`` for a multivariate model's
        us(trait), ``at(F, a):units`` per group): what :meth:`vcov` takes besides random terms."""
        return list(self._residual_models())

    def _residual_models(self) -> dict:
        """Residual covariance models by name (``units`` for a multivariate model's us(trait),
        ``at(F, a):units`` per group; with the model's label when a group has several)."""
        out = {}
        prob = self._problem
        r0 = prob.params.residual_slice.start
        for res, gsl in zip(prob.residuals, prob.params.group_slices):
            for slot in res.covariance_models():
                out[slot.name] = (slot.model, slice(r0 + gsl.start + slot.params.start, r0 + gsl.start + slot.params.stop))
        return out

    @staticmethod
    def _cov_tables(model, th, V) -> dict:
        """Covariance, its standard errors (delta method) and correlation of a covariance model."""
        levels = list(model.levels)
        S = model.sigma(th)
        D = model.dsigma(th)
        S_se = np.sqrt(np.clip(np.einsum("kab,kl,lab->ab", D, V, D), 0, None))
        extra = model.describe(th)
        d = np.sqrt(np.clip(np.diag(S), 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            R = S / np.outer(d, d)
        out = {"covariance": pd.DataFrame(S, index=levels, columns=levels),
               "covariance_se": pd.DataFrame(S_se, index=levels, columns=levels),
               "correlation": pd.DataFrame(R, index=levels, columns=levels)}
        if "loadings" in extra:
            L, names = extra["loadings"]
            out["loadings"] = pd.DataFrame(L, index=levels, columns=names)
            out["specific"] = pd.Series(extra["specific"], index=levels, name="specific variance")
        return out

    @cached_property
    def fitted(self) -> pd.Series:
        """X b + Z u for each record used (indexed like the rows of the data)."""
        vals = self.design.W() @ self.solution[: self.design.n_columns]  # not the missing-cell unknowns
        index = self.design.data.index
        if self.spec.fixed.multivariate:  # one value per row and trait
            index = pd.MultiIndex.from_arrays([index, np.asarray(self.design.data.columns["trait"])],
                                              names=[index.name, "trait"])
        return pd.Series(vals, index=index, name="fitted")

    @property
    def residuals(self) -> pd.Series:
        return pd.Series(self._problem.y - self.fitted.to_numpy(), index=self.fitted.index, name="residual")

    def write_records(self, path, format: str | None = None, columns: list | None = None, overwrite: bool = False,
                      data: pd.DataFrame | None = None) -> list:
        """Write per record: the model's columns, ``columns=``, ``row``, ``fitted``, ``residual``,
        ``group`` and grid position; for a fit to partitioned data one Parquet file per partition
        in directory ``path``, by the workers (the records are not gathered here); in memory one
        file (.parquet or .csv).  Records not used are left out.  Returns the files written; see
        :func:`sparsereml.partitioned.write.write_records` for the parameters."""
        from .partitioned.write import write_records

        return write_records(self, path, format=format, columns=columns, overwrite=overwrite, data=data)

    # -- iterations and report ---------------------------------------------------------
    @cached_property
    def iterations(self) -> pd.DataFrame:
        return pd.DataFrame(self._result.history).set_index("iteration")

    @property
    def n_iterations(self) -> int:
        return len(self._result.history) - 1

    def report(self, path=None, **options):
        """Write this fit's HTML report to ``path`` (one self-contained file; None returns the page):
        the summary with intervals, the data, BLUPs ranked with accuracies, residual plots (maps
        and variograms on field grids), covariance heat maps and the iterations.  ``options`` as
        :func:`sparsereml.report` (``wald=``, ``predict=``, ``functions=``, ``title=``)."""
        from .reporting import report

        return report(self, path, **options)

    # -- saving ------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the fitted model to ``path`` (a pickle); :func:`sparsereml.load` reads it back
        with the same tables.  The factor of the equations is not stored: it is analysed again
        on loading and refactorised when PEVs are first asked for.  As with any pickle, load
        only files you trust."""
        save_model(self, path)


class _Diagonal:
    """One variance per block (plain, at() and diag() terms) in the shape of a covariance model."""

    name = "diag"

    def __init__(self, levels):
        self.levels = list(levels)

    def sigma(self, th):
        return np.diag(th)

    def dsigma(self, th):
        D = np.zeros((len(th), len(th), len(th)))
        D[np.arange(len(th)), np.arange(len(th)), np.arange(len(th))] = 1.0
        return D

    def describe(self, th):
        return {}


_FORMAT = "sparsereml fitted model"


def save_model(model: FittedModel, path) -> None:
    """Pickle ``model`` to ``path`` with a header naming the format and the package version."""
    import pickle

    from . import __version__

    try:
        with open(path, "wb") as fh:
            pickle.dump({"format": _FORMAT, "version": __version__, "model": model}, fh,
                        protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as exc:
        raise ModelError(f"cannot write the model to {str(path)!r}: {exc.strerror or exc}") from None


def load_model(path) -> FittedModel:
    """Read a model written by :meth:`FittedModel.save`."""
    import pickle

    from . import __version__

    try:
        with open(path, "rb") as fh:
            if fh.read(1) != b"\x80":  # every pickle of protocol 2 or later starts so
                raise ModelError(f"{str(path)!r} is not a model saved by sparsereml (m.save(path))")
            fh.seek(0)
            saved = pickle.load(fh)
    except FileNotFoundError:
        raise ModelError(f"no saved model at {str(path)!r}") from None
    except OSError as exc:
        raise ModelError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever unpickling a foreign file raises
        raise ModelError(f"{str(path)!r} is not a model saved by this version of sparsereml ({__version__}): "
                         f"{type(exc).__name__}: {exc}") from None
    if not isinstance(saved, dict) or saved.get("format") != _FORMAT:
        raise ModelError(f"{str(path)!r} is not a model saved by sparsereml (m.save(path))")
    return saved["model"]
