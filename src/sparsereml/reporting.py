"""The HTML report of a fit or of several fits compared (``m.report(path)``, ``sr.report(models,
path)``, ``sparsereml fit --report``, ``sparsereml report DIR ...``).

Every section is built from :class:`~sparsereml.fitresults.FitResults` (what a fit writes), so
a report made from models in memory and one rebuilt from written results are the same.  The
sections are :class:`~sparsereml.report_content.Report` content (text, tables, figures) and
:mod:`sparsereml.report_page` lays them out as one self-contained HTML file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ModelError, SparseREMLError
from .fitresults import FitResults
from .report_content import Report
from .report_figures import Drawing, FigureTask

__all__ = ["report", "fit_report", "data_report", "results_of"]

#: tables with at least this many rows can be sorted by a click on a heading
SORTABLE_FROM = 12
#: at most this many rows of a ranked BLUP table (the CSV holds every level)
MAX_RANKED = 500
#: residual maps and variograms of at most this many residual grids
MAX_GRIDS = 8
#: at most this many rows of any other table on the page (the files hold every row)
MAX_ROWS = 2000


def results_of(obj, **inference) -> FitResults:
    """FitResults of a fitted model (with ``wald``/``predict``/``functions`` as in :func:`report`),
    or the results themselves."""
    from .results import FittedModel

    if isinstance(obj, FitResults):
        return obj
    if not isinstance(obj, FittedModel):
        raise ModelError(f"a report is made of fitted models (sr.fit(...)) or of results read with "
                         f"FitResults.read(dir); got {type(obj).__name__}")
    with obj.control.threading():  # set once for every table (each would set and restore it)
        wald = obj.wald(inference["wald"]) if inference.get("wald") else None
        predictions = [obj.predict(c, sed=False) for c in inference.get("predict") or []]
        functions = inference.get("functions")
        if callable(functions):  # per model: functions(model) -> dict of expressions or a vpredict table
            functions = functions(obj)
        return FitResults.from_model(obj, wald=wald, predictions=predictions, functions=functions)


def _figure(sec, source: int, kind: str, args: tuple, caption: str, **kwargs) -> None:
    """Reserve the place of a figure: it is drawn with the others (a :class:`~sparsereml.report_figures.Drawing`)."""
    sec.blocks.append(FigureTask(source, kind, args, caption, kwargs))


def _figure_tasks(reports: list) -> list:
    """Every figure task in ``reports``, in their order (the page's)."""
    return [b for rep in reports for sec in rep.sections for b in sec.blocks if isinstance(b, FigureTask)]


def data_report(res: FitResults, source: int = 0) -> Report:
    """The data: the response by the first factor of the fixed formula (every record a jittered,
    transparent point) and that factor's levels' n, mean, SD, minimum and maximum."""
    from .records import level_codes, records_and_names

    rep = Report()
    rec, names = records_and_names(res)
    sec = rep.add("Data")
    if rec is None or not names.get("by"):
        sec.line(names.get("why") or names.get("why_no_by"))
        return rep
    _figure(sec, source, "overview", (), f"{names['response']} by {names['by']}: every record a jittered, "
            f"transparent point; the bar is the mean")
    by = pd.Categorical.from_codes(level_codes(rec["by"], names["by_levels"]), categories=names["by_levels"])
    g = rec["response"].groupby(by, observed=True)
    table = pd.DataFrame({"n": g.size(), "mean": g.mean(), "SD": g.std(), "min": g.min(), "max": g.max()})
    table.index.name = names["by"]
    sec.line(f"{names['response']} by {names['by']}, records used by the fit")
    sec.table(table)
    return rep


def _ranked(res: FitResults, term: str) -> pd.DataFrame | None:
    """The BLUPs of a one-variance term ranked, with accuracy (:func:`sparsereml.plots.model.ranked_blups`);
    None for other terms."""
    from .plots.model import ranked_blups

    try:
        out = ranked_blups(res, term)[0]
    except ModelError:
        return None
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _has_correlations(v: dict) -> bool:
    R = v["correlation"].to_numpy()
    return R.shape[0] > 1 and not np.allclose(np.nan_to_num(R[~np.eye(R.shape[0], dtype=bool)]), 0)


def _random_sections(rep: Report, res: FitResults, source: int, alone: bool = True) -> None:
    for name, v in res.covariances.items():
        if not _has_correlations(v):
            continue
        sec = rep.add(f"Correlations of {name}")
        _figure(sec, source, "correlation_heatmap", (name,), f"estimated correlations of {name}, levels "
                "ordered by clustering")
        if "loadings" in v:
            _figure(sec, source, "fa_biplot", (name,), f"loadings of {name}")
            sec.table(v["loadings"])
    for term in res.random_terms:
        sec = rep.add(f"Random effects: {term}")
        n = len(res.blups(term))
        if alone:
            _figure(sec, source, "caterpillar", (term,), f"BLUPs of {term} with 95% prediction intervals")
        else:
            sec.line(f"the BLUPs of {term} are drawn beside the other models' under the comparison")
        ranked = _ranked(res, term)
        if ranked is not None:  # the table, not sr.plots.ranking's bars: it holds every number
            shown = f"all {n}" if n <= MAX_RANKED else f"the top {MAX_RANKED} of {n:,} (every level is in the BLUP file)"
            sec.line(f"{term} ranked by BLUP, {shown}; accuracy = sqrt(1 - PEV / variance)")
            sec.table(ranked.head(MAX_RANKED))


def _residual_sections(rep: Report, res: FitResults, source: int, alone: bool = True) -> None:
    sec = rep.add("Residuals")
    if alone or not res.holds_records:  # without records the figure is the note that says why
        _figure(sec, source, "residuals", (), "residuals against fitted values")
    else:
        sec.line("the residuals against fitted values are drawn beside the other models' under the comparison")
    flat = [g for g in res.grids.values() if not g.covariance and len(g.shape) == 2]
    for g in flat[:MAX_GRIDS]:
        _figure(sec, source, "residual_map", (g.label,), f"residuals on the field grid, {g.label}")
        _figure(sec, source, "variogram", (g.label,), f"sample variogram of the residuals, {g.label}")
    if len(flat) > MAX_GRIDS:
        sec.line(f"residual maps and variograms of the first {MAX_GRIDS} of {len(flat)} grids; "
                 "sr.plots.residual_map(m, group) draws any other")


def fit_report(res: FitResults, *, data: bool = True, source: int = 0, max_rows: int = MAX_ROWS,
               alone: bool = True) -> Report:
    """A fit's report: the summary (model, likelihood, variance components with 95% Wald intervals,
    covariance models, fixed effects), Wald tests, predictions and functions of the components
    when the results hold them, the data, random effects, residuals and the iterations; tables
    cut at ``max_rows`` rows (the files hold every row).  Not ``alone`` (one of several fits
    compared), it leaves out the caterpillars, the residuals against fitted values and the
    iteration trace: the comparison draws those of every model side by side.  Figures
    are :class:`~sparsereml.report_figures.FigureTask` of results number ``source`` until a
    :class:`~sparsereml.report_figures.Drawing` draws them."""
    rep = Report()
    for s in res.content.sections:
        rep.sections.append(s)
        if s.title == "Variance components" and res.intervals is not None:
            rep.add("95% confidence intervals of the variance components (Wald)").table(res.intervals)
    if res.functions is not None:
        rep.add("Functions of the variance components").table(res.functions)
    if res.wald is not None:
        rep.add("Wald tests of the fixed effects").table(res.wald)
    for classify, table in res.predictions.items():
        sec = rep.add(f"Predictions of {classify}").table(table)
        sed = res.info.get("sed", {}).get(classify)
        if sed:
            sec.line(f"SED: min {sed['min']:.6g}  mean {sed['mean']:.6g}  max {sed['max']:.6g}")
    if data:
        rep.sections += data_report(res, source).sections
    _random_sections(rep, res, source, alone)
    _residual_sections(rep, res, source, alone)
    sec = rep.add("Iterations")
    if alone:
        _figure(sec, source, "trace", (), f"{getattr(res, 'likelihood', 'REML')} log-likelihood and parameters "
                "by iteration")
    else:
        sec.line("the iteration trace is drawn beside the other models' under the comparison")
    it = res.iterations
    change = it["loglik"].diff()
    sec.table(pd.DataFrame({  # logL as the summary prints it: 6 significant digits would hide the changes
        "logL": [f"{v:.4f}" for v in it["loglik"]],
        "change": ["" if pd.isna(v) else f"{v:+.4g}" for v in change],
        "seconds": [f"{v:.3f}" for v in it["seconds"]]}, index=it.index))
    rep.sections = [_capped(s, max_rows) for s in rep.sections]
    return rep


def _capped(sec, max_rows: int):
    """The section with tables of more than ``max_rows`` rows cut there, saying so."""
    from .report_content import Section

    if not any(isinstance(b, pd.DataFrame) and len(b) > max_rows for b in sec.blocks):
        return sec
    out = Section(sec.title)
    for b in sec.blocks:
        if isinstance(b, pd.DataFrame) and len(b) > max_rows:
            out.table(b.head(max_rows)).line(f"the first {max_rows:,} of {len(b):,} rows; the result files hold all")
        else:
            out.blocks.append(b)
    return out


def _models(models, names) -> tuple[list, list]:
    if isinstance(models, dict):
        if names is not None:
            raise ModelError("names are the dict's keys: pass a list of models with names=, or a dict alone")
        names, models = list(models), list(models.values())
    elif not isinstance(models, (list, tuple)):
        models = [models]
    if not models:
        raise ModelError("report() needs at least one fitted model")
    from .compare import _names

    names = _names(tuple(models), names) if names is not None else (
        ["model"] if len(models) == 1 else [f"model {i + 1}" for i in range(len(models))])
    return list(models), names


def report(models, path=None, names=None, *, title: str | None = None, wald: str | None = None,
           predict=None, functions: dict | None = None, processes: int | None = None) -> Path | str:
    """Write the HTML report of one fit, or of several compared, to ``path``.

    Parameters
    ----------
    models : FittedModel, FitResults, list of them, or dict name -> model
        One fit gives its report; several give the comparison table (logL, AIC, BIC and the
        likelihood-ratio tests of :func:`sparsereml.compare`) and then each model's report.
    path : str or Path, optional
        The HTML file to write; None returns the page as a string.
    names : list of str, optional
        The models' names (default "model 1", ...; a dict's keys).
    title : str, optional
        The page's title.
    wald : {"kr", "satterthwaite", "none"}, optional
        Add the Wald tests of the fixed effects with this denominator df.
    predict : list of str, optional
        Add the predictions of these classify tables (e.g. ``["Trial"]``).
    functions : dict or callable, optional
        Functions of the variance components to add, name -> expression (as ``m.vpredict``), or a
        function of each model giving them (or their ``vpredict`` table).
    processes : int, optional
        Processes drawing the figures (default: the cores this process may use, at most 4).

    Returns
    -------
    Path or str
        The file written, or the page.
    """
    from .compare import compare
    from .report_page import fill_figures, render_page

    models, names = _models(models, names)
    if path is not None:
        path = Path(path)
        if path.is_dir() or path.suffix.lower() not in (".html", ".htm"):
            raise ModelError(f"report path {str(path)!r}: give a file name ending in .html")
        if not path.parent.exists():
            raise ModelError(f"report path {str(path)!r}: directory {str(path.parent)!r} does not exist")
    if isinstance(predict, str):
        predict = [predict]
    table = compare(models, names=names).formatted() if len(models) > 1 else None  # refused before any work
    from .report_figures import preload

    loading = preload()  # matplotlib's import while the results are built
    results = [results_of(m, wald=wald, predict=predict, functions=functions) for m in models]
    parts = []
    if table is not None:  # the data once, for every model
        intro = Report()
        intro.add("Models compared").table(table)
        intro.sections += data_report(results[0]).sections
        _compared_figures(intro, results, names)
        parts.append(("Comparison", "comparison", intro))
    for k, (name, res) in enumerate(zip(names, results)):
        parts.append((name if table is not None else "Fit", _anchor(name),
                      fit_report(res, data=table is None, source=k, alone=table is None)))
    loading.join()  # before the drawing processes are forked
    with Drawing(_figure_tasks([rep for _, _, rep in parts]), results, processes) as drawing:
        page = render_page(title or _default_title(results, names), parts)  # while the workers draw
        page = fill_figures(page, drawing.result())
    if path is None:
        return page
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise SparseREMLError(f"cannot write the report to {str(path)!r}: {exc.strerror or exc}") from None
    return path


def _compared_figures(rep: Report, results: list, names: list) -> None:
    """The figures of the models side by side: one per random term (its caterpillar in every
    model that has it), the residuals and the iteration traces (one figure each, not one per
    model: each figure costs its drawing's fixed part)."""
    terms = list(dict.fromkeys(t for res in results for t in res.random_terms))
    for term in terms:
        which = tuple(k for k, res in enumerate(results) if term in res.random_terms)
        shown = [names[k] for k in which]
        sec = rep.add(f"Random effects: {term}")
        _figure(sec, which, "caterpillars", (term,), f"BLUPs of {term} with 95% prediction intervals: "
                f"{', '.join(shown)}", names=shown)
    drawn = tuple(k for k, res in enumerate(results) if res.holds_records)  # the others say why
    if drawn:
        shown = [names[k] for k in drawn]
        _figure(rep.add("Residuals"), drawn, "compared_residuals", (), "residuals against fitted values: "
                + ", ".join(shown), names=shown)
    _figure(rep.add("Iterations"), tuple(range(len(results))), "compared_traces", (),
            "log-likelihood and parameters by iteration: " + ", ".join(names), names=list(names))


def _anchor(name: str) -> str:
    from .fitresults import safe_name

    return "m-" + (safe_name(name) or "model")


def _default_title(results: list, names: list) -> str:
    fixed = results[0].formulas.get("fixed")
    if len(results) == 1:
        return f"sparsereml fit: {fixed}"
    return f"sparsereml: {', '.join(names)} compared ({fixed})"
