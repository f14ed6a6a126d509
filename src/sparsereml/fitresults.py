"""The written form of a fit: :class:`FitResults` holds every table and record-level value that
the report shows (variance components and their intervals, fixed effects, BLUPs, covariance
models, fitted values and residuals with their grid positions, iterations, and the summary's
sections), taken from a fitted model or read back from the files ``sparsereml fit --out DIR``
wrote.  The HTML report and the plots draw from either, so a report rebuilt from a directory
(``sparsereml report DIR``) shows the same numbers as one made from the model in memory.

Files of a results directory: ``fit.json`` (the fit's description, small tables and the summary's
sections), ``varcomp.csv``, ``fixed.csv``, ``blup_<term>.csv``, ``records.csv`` (per record:
response, fitted value, residual, residual group and grid position, like ASReml's .yht file) and,
when asked for, ``wald.csv``, ``functions.csv`` and ``predictions_<classify>.csv``
(``records.csv`` too: the command line writes it with ``--report`` or ``--records``).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ModelError, UnknownName
from .report_content import Report

__all__ = ["FitResults", "GridInfo", "fit_info", "plain", "blup_file_name", "safe_name"]

RESULTS_FORMAT = "sparsereml results 1"


def safe_name(text: str) -> str:
    """``text`` with every run of characters other than letters, digits, ``_ . -`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def blup_file_name(term: str) -> str:
    return "blup_" + safe_name(term) + ".csv"


def plain(obj):
    """JSON-safe values: numpy numbers as Python ones, NaN and infinities as null (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def fit_info(model) -> dict:
    """The fit's description: formulas, sizes, logL (and what kind), AIC/BIC, convergence, control,
    timings, iterations; a GLMM's family and method.  A number the fit does not have (a GLMM's
    ASReml-convention REML logL, PQL's AIC) is null."""
    kind = getattr(model, "likelihood", "REML")
    out = {
        "fixed": model.formulas.get("fixed"), "random": model.formulas.get("random"),
        "residual": model.spec.residual.label, "nobs": model.nobs, "n_dropped": model.n_dropped,
        "rank_X": model.rank, "likelihood": kind, "loglik": model.loglik,
        "loglik_asreml": model.loglik_asreml if kind == "REML" else None,
        "aic": model.aic if kind != "PQL" else None, "bic": model.bic if kind != "PQL" else None,
        "converged": model.converged, "message": model.message,
        "backend": model.backend, "control": model.control.to_dict(), "seconds": model.seconds,
        "iterations": model.iterations.reset_index().to_dict(orient="records"),
        "response_summary": [float(v) for v in model.response_summary],
    }
    if kind != "REML":  # the family sets the residual variance
        out.update(residual=model.family.label, family=model.family.name, link=model.family.link,
                   method=model.method)
    return out


def frame_to_json(df: pd.DataFrame) -> dict:
    return {"index_name": df.index.name, "index": list(df.index), "columns": [str(c) for c in df.columns],
            "data": df.to_numpy(dtype=object).tolist()}


def frame_from_json(d: dict) -> pd.DataFrame:
    df = pd.DataFrame(d["data"], index=d["index"], columns=d["columns"])
    df.index.name = d.get("index_name")
    return df.infer_objects()


@dataclass
class GridInfo:
    """A residual group's grid as the spatial plots need it.

    ``dims`` are the grid's column names (first = rows), ``structure`` its dimensions as the
    formula names them (``ar1(Row):ar1(Col)``), ``shape`` its positions per dimension,
    ``covariance`` True when a dimension is a covariance model over levels (not a field
    position), ``ticks`` per dimension the column's value at each position ("" where no record
    sits)."""

    label: str
    dims: list
    structure: str
    shape: list
    covariance: bool
    ticks: list

    def to_json(self) -> dict:
        return plain(self.__dict__)


@dataclass
class FitResults:
    """A fit's results as tables: what the report draws, from a model or from written files.

    It answers the read-only questions of :class:`~sparsereml.FittedModel` that the plots and
    the report ask (``varcomp``, ``fixed``, ``blups(term)``, ``vcov(term)``, ``iterations``,
    ``loglik``, ``aic``, ...) without the equations.  Build it with :meth:`from_model`, write it
    with :meth:`write` and read it with :meth:`read`.
    """

    info: dict
    varcomp: pd.DataFrame
    fixed: pd.DataFrame
    blup_tables: dict = field(default_factory=dict)
    covariances: dict = field(default_factory=dict)
    records: pd.DataFrame | None = None
    grids: dict = field(default_factory=dict)
    wald: pd.DataFrame | None = None
    predictions: dict = field(default_factory=dict)
    functions: pd.DataFrame | None = None
    content: Report = field(default_factory=Report)
    intervals: pd.DataFrame | None = None

    # -- the FittedModel questions the report and the plots ask -------------------------------
    loglik = property(lambda self: self.info["loglik"])
    loglik_asreml = property(lambda self: self.info["loglik_asreml"])
    aic = property(lambda self: self.info["aic"])
    bic = property(lambda self: self.info["bic"])
    nobs = property(lambda self: self.info["nobs"])
    converged = property(lambda self: bool(self.info["converged"]))
    message = property(lambda self: self.info["message"])
    formulas = property(lambda self: {k: self.info.get(k) for k in ("fixed", "random", "residual")})
    likelihood = property(lambda self: self.info.get("likelihood", "REML"))

    @property
    def labels(self) -> list:
        return list(self.varcomp.index)

    @property
    def codes(self) -> list:
        return list(self.varcomp["bound"])

    @property
    def fixed_names(self) -> list:
        return list(self.info.get("fixed_names") or self.fixed.index)

    @property
    def response(self) -> np.ndarray:
        if self.records is None:
            raise ModelError("these results have no records.csv: the response of each record is not known")
        return self.records["response"].to_numpy(dtype=float)

    @property
    def holds_records(self) -> bool:
        return self.records is not None

    @property
    def response_summary(self) -> np.ndarray | None:
        """(values, sum of y, sum of y^2) of the response, as the fit wrote it (None from results
        written before it was kept, and without records.csv)."""
        if self.info.get("response_summary") is not None:
            return np.asarray(self.info["response_summary"], dtype=float)
        if self.records is None:
            return None
        from .design import response_summary

        return response_summary(self.response)

    @property
    def iterations(self) -> pd.DataFrame:
        return pd.DataFrame(self.info["iterations"]).set_index("iteration")

    @property
    def n_iterations(self) -> int:
        return len(self.info["iterations"]) - 1

    @property
    def random_terms(self) -> list:
        return list(self.blup_tables)

    def blups(self, term: str) -> pd.DataFrame:
        if term not in self.blup_tables:
            raise UnknownName(f"{term!r} is not a random term of this model (terms: {', '.join(self.blup_tables)})")
        return self.blup_tables[term]

    def vcov(self, term: str) -> dict:
        if term not in self.covariances:
            raise UnknownName(f"{term!r} is not a random term or residual covariance model of this model "
                              f"(known: {', '.join(self.covariances)})")
        return self.covariances[term]

    def summary(self) -> str:
        return self.content.to_text()

    def _repr_html_(self) -> str:
        return self.content.to_html()

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, *, wald: pd.DataFrame | None = None, predictions: list | None = None,
                   functions=None) -> "FitResults":
        """The results of ``model``, with optional Wald tests, predictions (``m.predict`` results)
        and functions of the components (a DataFrame from ``m.vpredict`` or a dict of expressions)."""
        from .records import grid_infos, record_table, structured_names

        if isinstance(functions, dict) and functions:
            functions = model.vpredict(functions)
        info = fit_info(model)
        info["fixed_names"] = model.fixed_names
        records, info["records"] = record_table(model)
        cov = {name: model.vcov(name) for name in model.random_terms + structured_names(model)}
        preds = {p.classify: p.table for p in predictions or []}
        info["sed"] = {p.classify: dict(p.avsed) for p in predictions or []}
        return cls(info=info, varcomp=model.varcomp, fixed=model.fixed,
                   blup_tables={t: model.blups(t) for t in model.random_terms}, covariances=cov,
                   records=records, grids=grid_infos(model) if records is not None else {},
                   wald=wald, predictions=preds, functions=functions if functions is not None and len(functions) else None,
                   content=model.report_content(n_fixed=10**9), intervals=model.confint())

    # -- files -------------------------------------------------------------------------------
    def write(self, out, records: bool = True) -> list[Path]:
        """Write the results to directory ``out`` (created); returns the files written.
        ``records=False`` leaves out ``records.csv`` (per record values: 15 MB and most of the
        writing time for 184,000 records); a report read back then says its record plots are missing."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files = {"varcomp": "varcomp.csv", "fixed": "fixed.csv",
                 "blups": {t: blup_file_name(t) for t in self.blup_tables}}
        written = [out / "varcomp.csv", out / "fixed.csv"]
        self.varcomp.to_csv(written[0])
        self.fixed.to_csv(written[1])
        for term, name in files["blups"].items():
            self.blup_tables[term].to_csv(out / name)
            written.append(out / name)
        for key, table in (("records", self.records if records else None), ("wald", self.wald),
                           ("functions", self.functions)):
            if table is not None:
                files[key] = f"{key}.csv"
                table.to_csv(out / files[key])
                written.append(out / files[key])
        files["predictions"] = {}
        for classify, table in self.predictions.items():
            files["predictions"][classify] = f"predictions_{safe_name(classify)}.csv"
            table.to_csv(out / files["predictions"][classify], index=False)
            written.append(out / files["predictions"][classify])
        doc = dict(self.info, format=RESULTS_FORMAT, files=files, report=self.content.to_json(),
                   covariances={k: {n: frame_to_json(v.to_frame() if isinstance(v, pd.Series) else v)
                                    for n, v in d.items()} for k, d in self.covariances.items()},
                   grids={k: g.to_json() for k, g in self.grids.items()},
                   intervals=frame_to_json(self.intervals) if self.intervals is not None else None)
        (out / "fit.json").write_text(json.dumps(plain(doc), indent=1, allow_nan=False))
        written.append(out / "fit.json")
        return written

    @classmethod
    def read(cls, directory) -> "FitResults":
        """Read the results ``sparsereml fit --out DIR`` (or :meth:`write`) put in ``directory``."""
        d = Path(directory)
        path = d / "fit.json"
        if not path.is_file():
            raise ModelError(f"{str(d)!r} holds no fit.json: give a directory written by `sparsereml fit --out DIR`")
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{str(path)!r} cannot be read as JSON ({exc})") from None
        if doc.get("format") != RESULTS_FORMAT:
            raise ModelError(f"{str(path)!r} was written by another version of sparsereml (format "
                             f"{doc.get('format')!r}, not {RESULTS_FORMAT!r}): fit the model again with --out")
        files = doc["files"]

        def csv(name, **kw):
            p = d / name
            if not p.is_file():
                raise ModelError(f"{str(p)!r} is missing: {str(path)!r} lists it; write the results again")
            return pd.read_csv(p, **kw)

        def indexed(name):
            t = csv(name, index_col=0, keep_default_na=False, na_values=[""])
            t.index = t.index.astype(str)
            return t

        records = None
        if "records" in files:
            records = csv(files["records"], index_col=0, dtype={"group": str, "by": str})
        covs = {k: {n: _cov_frame(n, v) for n, v in c.items()} for k, c in doc.get("covariances", {}).items()}
        return cls(info=doc, varcomp=indexed(files["varcomp"]), fixed=indexed(files["fixed"]),
                   blup_tables={t: indexed(n) for t, n in files["blups"].items()}, covariances=covs,
                   records=records, grids={k: GridInfo(**g) for k, g in doc.get("grids", {}).items()},
                   wald=indexed(files["wald"]) if "wald" in files else None,
                   predictions={c: csv(n) for c, n in files.get("predictions", {}).items()},
                   functions=indexed(files["functions"]) if "functions" in files else None,
                   content=Report.from_json(doc["report"]),
                   intervals=frame_from_json(doc["intervals"]) if doc.get("intervals") else None)


def _cov_frame(name: str, d: dict):
    df = frame_from_json(d)
    return df.iloc[:, 0].rename(df.columns[0]) if name == "specific" else df
