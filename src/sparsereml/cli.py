"""Command-line tool: ``sparsereml fit`` and ``sparsereml demo`` (argument parsing and dispatch;
the demonstration itself is :mod:`sparsereml.demo`)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import SparseREMLError
from .fitresults import FitResults, blup_file_name, fit_info, plain, safe_name
from .report_content import table_text

__all__ = ["main", "fit_info"]


def _records(df) -> list:
    return df.reset_index().to_dict(orient="records")


def json_result(model, wald=None, predictions: list | None = None, functions: dict | None = None) -> dict:
    """The machine-readable result ``--json`` prints: fit.json's content and the tables."""
    out = fit_info(model)
    out["varcomp"] = _records(model.varcomp)
    out["fixed_effects"] = _records(model.fixed)
    if functions:
        out["functions"] = _records(model.vpredict(functions))
    if wald is not None:
        out["wald"] = _records(wald)
    if predictions:
        out["predictions"] = {p.classify: _records(p.table.set_index(p.table.columns[0])) for p in predictions}
    return out


def write_outputs(model, out: Path, functions: dict | None = None, wald=None, predictions: list | None = None,
                  sed: bool = False, records: bool = False) -> tuple[list[Path], FitResults]:
    """Write the results (:meth:`FitResults.write`: varcomp.csv, fixed.csv, one BLUP file per random
    term, wald.csv, functions.csv, predictions_<classify>.csv, fit.json; records.csv with ``records``),
    the breeding values of vm() terms, with --sed sed_<classify>.csv, and summary.txt."""
    results = FitResults.from_model(model, wald=wald, predictions=predictions, functions=functions)
    written = results.write(out, records=records)
    for rb in model.design.random:  # vm() terms: every individual with reliability and accuracy
        if rb.relationship is not None:
            path = out / ("breeding_values_" + blup_file_name(rb.label)[len("blup_"):])
            model.breeding_values(rb.label).to_csv(path)
            written.append(path)
    summary = model.summary(n_fixed=10**9)
    if wald is not None:
        summary += "\n\nWald tests of the fixed effects\n" + table_text(wald)
    for pred in predictions or []:
        summary += f"\n\nPredictions of {pred.classify} (predictions_{safe_name(pred.classify)}.csv)\n{_sed_line(pred)}"
        if sed and pred.has_vcov:
            path = out / f"sed_{safe_name(pred.classify)}.csv"
            pred.sed.to_csv(path)
            written.append(path)
        elif sed:  # too many cells for the matrix: the summary of the SEDs is in summary.txt
            summary += (f"\n\nSED matrix of {pred.classify} not written: {len(pred.table):,} cells "
                        f"(the SED summary is below each prediction table)")
    (out / "summary.txt").write_text(summary + "\n")
    written.append(out / "summary.txt")
    return written, results


def _sed_line(pred) -> str:
    s = pred.avsed
    return f"SED: min {s['min']:.6g}  mean {s['mean']:.6g}  max {s['max']:.6g}"


def say(*parts) -> None:
    """print(), surviving a closed standard output (``sparsereml fit ... | head``): the rest of
    the output is dropped and the work goes on (result files are still written)."""
    try:
        print(*parts, flush=True)
    except BrokenPipeError:
        _drop_stdout()


def _drop_stdout() -> None:
    # what is still buffered, and everything printed after, goes to /dev/null
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _output_dir(path: str) -> Path:
    """Create ``--out`` and check that files can be written there, before the fit."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".sparsereml-write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SparseREMLError(f"--out {path!r} cannot be written ({exc.strerror or exc}); choose another "
                              f"directory") from None
    return out


def _read_data(path: str, sep: str | None, decimal: str):
    from .data import load_table, read_csv

    if sep is None and decimal == ".":
        return load_table(path)
    if not Path(path).exists():
        raise SparseREMLError(f"data file {path!r} does not exist")
    return read_csv(path, sep=sep or ("\t" if path.lower().endswith(".tsv") else ","), decimal=decimal)


def _data_route(args):
    """(data, scheduler): a directory or a glob of Parquet or CSV files goes to sr.fit as it is (the
    partitioned route: the data pass on Dask, the records never gathered here); one file is read."""
    from .partitioned import is_partitioned

    if is_partitioned(args.data):
        if args.sep is not None or args.decimal != ".":
            raise SparseREMLError("--sep and --decimal are for one text file read in memory; partitioned CSV files "
                                  "are read with ',' and '.'")
        return args.data, _scheduler(args)
    if args.scheduler is not None:
        raise SparseREMLError(f"--scheduler is for partitioned data (a directory or a glob such as "
                              f"'trees/*.parquet'); {args.data!r} is one file, read in memory")
    return _read_data(args.data, args.sep, args.decimal), None


_SCHEDULERS = ("threads", "processes", "synchronous", "sync", "single-threaded")


def _scheduler(args):
    """--scheduler as sr.fit takes it: a Dask scheduler's name, or a dask.distributed Client connected
    to the address given (closed by :func:`main` when the command ends)."""
    value = args.scheduler
    if value is None or value in _SCHEDULERS:
        return value
    if "://" not in value and value.rpartition(":")[2].isdigit() is False:
        raise SparseREMLError(f"--scheduler {value!r}: give threads, processes, synchronous or the address of a "
                              f"dask.distributed scheduler such as tcp://host:8786")
    try:
        from distributed import Client
    except ImportError:
        raise SparseREMLError(f"--scheduler {value!r} needs dask.distributed: pip install distributed") from None
    try:
        args.client = Client(value)  # waits Dask's connect time-out (distributed.comm.timeouts.connect)
    except (OSError, TimeoutError) as exc:
        raise SparseREMLError(f"--scheduler {value!r}: no dask.distributed scheduler answers there ({exc})") from None
    return args.client


def cmd_plan(args) -> int:
    """``sparsereml plan DATA --fixed ...``: the memory forecast of that fit, without fitting."""
    from .plan import plan

    factors = [f.strip() for f in (args.factors or "").split(",") if f.strip()]
    matrices = _pedigrees(args)
    data, scheduler = _data_route(args)
    forecast = plan(args.fixed, args.random, args.residual, data=data, factors=factors or None,
                    na_action=args.na_action, matrices=matrices or None, backend=args.backend, scheduler=scheduler,
                    max_memory=args.max_memory)
    say(json.dumps(plain(forecast.to_dict()), allow_nan=False) if args.json else str(forecast))
    return 0 if forecast.fits else 4


def cmd_fit(args) -> int:
    from contextlib import nullcontext

    from .api import prepare_fit
    from .genetics import check_expressions
    from .inference.predict import check_classify
    from .progress import FitProgress

    if args.report and not args.out:
        raise SparseREMLError("--report writes report.html beside the result files: give --out DIR as well")
    out = _output_dir(args.out) if args.out else None
    factors = [f.strip() for f in (args.factors or "").split(",") if f.strip()]
    functions = dict(_function(f) for f in args.function or [])
    matrices = _pedigrees(args)
    quiet = args.quiet or args.json  # standard output carries the JSON alone
    with nullcontext() if quiet else FitProgress(write=say) as prog:
        if prog:
            prog.start(f"reading {args.data}")
        data, scheduler = _data_route(args)

        def check(labels, design):
            if functions:  # a typo in --function is reported before the fit, not after it
                check_expressions(functions, labels)
            for classify in args.predict or []:  # and a classify the model does not know
                check_classify(design, classify)

        if args.family != "gaussian":
            if scheduler is not None or args.max_memory is not None:
                raise SparseREMLError("--scheduler, --max-memory and partitioned data (a directory or a glob) are "
                                      "for Gaussian fits; a GLMM (--family) reads one file into memory")
            model = _fit_glmm(args, data, factors, matrices, check, prog)
        else:
            _gaussian_only(args)
            prepared = prepare_fit(args.fixed, args.random, args.residual, data=data, factors=factors or None,
                                   na_action=args.na_action, backend=args.backend, max_iter=args.max_iter,
                                   matrices=matrices or None, progress=prog, scheduler=scheduler,
                                   max_memory=args.max_memory)
            check(prepared.labels, prepared.problem.design)
            model = prepared.run(progress=prog)
    wald = model.wald(args.wald, args.ss) if args.wald else None
    scale = {"scale": args.scale or "link"} if args.family != "gaussian" else {}
    predictions = [model.predict(c, sed=args.sed, **scale) for c in args.predict or []]
    if out is not None:  # the files first: a long summary on a closed pipe must not lose them
        files, results = write_outputs(model, out, functions, wald, predictions, args.sed,
                                       records=args.records or args.report)
        if args.records and not model.holds_records:
            # partitioned data: the records stay partitioned, written by the workers beside the results
            files += model.write_records(out / "records", overwrite=True)
        if args.report:
            files.append(_write_report([results], [Path(args.out).resolve().name or "fit"], out / "report.html", quiet))
    if args.json:
        say(json.dumps(plain(json_result(model, wald, predictions, functions)), allow_nan=False))
        return 0 if model.converged else 3
    say()
    say(model.summary())
    if functions:
        say("\nFunctions of the variance components")
        say(model.vpredict(functions).to_string())
    if wald is not None:
        say(f"\nWald tests of the fixed effects (denominator df: {args.wald})")
        say(table_text(wald))
    for pred in predictions:
        say(f"\nPredictions of {pred.classify}")
        say(pred.table.to_string(index=False, max_rows=30))
        say(_sed_line(pred))
    if out is not None:
        say(f"\nwrote {len(files)} files to {args.out}" + (f"; the report is {out / 'report.html'}" if args.report else ""))
    return 0 if model.converged else 3


def _fit_glmm(args, data, factors, matrices, check, prog):
    """``fit --family binomial|poisson|negative.binomial``: sr.fit's GLMM path, progress as plain
    lines per iteration."""
    from .api import fit
    from .glmm import Binomial, NegativeBinomial, Poisson

    family = {"binomial": Binomial, "poisson": Poisson, "negative.binomial": NegativeBinomial}[args.family](args.link)
    if prog:
        prog.start(f"fitting a {family.label} GLMM ({args.method or 'laplace'})")
    report = (lambda row: prog(f"iteration {row['iteration']}: logL {row['loglik']:.4f}")) if prog else None
    return fit(args.fixed, args.random, args.residual, data=data, factors=factors or None, na_action=args.na_action,
               backend=args.backend, max_iter=args.max_iter, matrices=matrices or None, family=family,
               method=args.method, weights=args.weights, offset=args.offset, callback=report, before=check)


def _gaussian_only(args) -> None:
    for flag, value in (("--method", args.method), ("--weights", args.weights), ("--offset", args.offset),
                        ("--link", args.link), ("--scale", args.scale)):
        if value is not None:
            raise SparseREMLError(f"{flag} is for GLMMs: give --family binomial, poisson or negative.binomial")


def _write_report(results: list, names: list, path: Path, quiet: bool = False) -> Path:
    from .reporting import report

    if not quiet:
        say(f"writing the report ({len(results)} model{'s' if len(results) > 1 else ''}) ...")
    return report(results if len(results) > 1 else results[0], path, names=names if len(results) > 1 else None)


def cmd_report(args) -> int:
    """``sparsereml report DIR [DIR ...]``: the report again from written results."""
    dirs = [Path(d) for d in args.dirs]
    names = args.names.split(",") if args.names else [d.resolve().name for d in dirs]
    if len(names) != len(dirs):
        raise SparseREMLError(f"--names gives {len(names)} names for {len(dirs)} directories: give one per directory")
    if len(set(names)) != len(names):
        raise SparseREMLError(f"the models' names must differ ({', '.join(names)}): give them with --names a,b,c")
    path = Path(args.out) if args.out else (dirs[0] / "report.html" if len(dirs) == 1 else Path("report.html"))
    results = [FitResults.read(d) for d in dirs]  # every directory is checked before anything is drawn
    _write_report(results, names, path, args.quiet)
    say(f"wrote {path}")
    return 0


def _pedigree(spec: str, add_missing: bool = False, groups: dict | None = None) -> dict:
    """--pedigree NAME=FILE[:id,sire,dam] -> {NAME: Pedigree}, with the genetic groups
    ``groups[NAME]`` (from --groups) when given."""
    from .pedigree import Pedigree

    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise SparseREMLError(f"--pedigree wants NAME=FILE or NAME=FILE:id,sire,dam, got {spec!r}")
    path, cols = rest, ""
    head, colon, tail = rest.rpartition(":")  # the last ':' only, so that C:\\dir\\ped.csv works
    if colon and tail.count(",") == 2 and not Path(rest).exists():
        path, cols = head, tail
    names = [c.strip() for c in cols.split(",")] if cols else ["id", "sire", "dam"]
    return {name: Pedigree(path, *names, add_missing=add_missing, groups=(groups or {}).get(name))}


def _pedigrees(args) -> dict:
    """Every --pedigree, each with its --groups NAME=G1,G2,... (the names written for unknown
    parents of each origin); a --groups naming no --pedigree is refused."""
    groups = {}
    for spec in args.groups or []:
        name, sep, rest = spec.partition("=")
        listed = [g.strip() for g in rest.split(",") if g.strip()]
        if not sep or not name.strip() or not listed:
            raise SparseREMLError(f"--groups wants NAME=GROUP1,GROUP2,... (the pedigree's name as in --pedigree), "
                                  f"got {spec!r}")
        groups[name.strip()] = listed
    matrices = {}
    for spec in args.pedigree or []:
        matrices.update(_pedigree(spec, args.add_missing, groups))
    unknown = sorted(set(groups) - set(matrices))
    if unknown:
        raise SparseREMLError(f"--groups {unknown[0]}=...: no --pedigree {unknown[0]}=FILE to give them to")
    return matrices


def _function(spec: str) -> tuple[str, str]:
    """--function 'h2=4*Mother/(Mother+units)' -> (name, expression)."""
    name, sep, expr = spec.partition("=")
    if not sep or not name.strip() or not expr.strip():
        raise SparseREMLError(f"--function wants NAME=EXPRESSION, got {spec!r}")
    return name.strip(), expr.strip()


def cmd_demo(args) -> int:
    from .demo import run_demo

    report = None if args.no_report else Path(args.report)
    if report is not None and (report.suffix.lower() not in (".html", ".htm") or not report.parent.is_dir()):
        raise SparseREMLError(f"--report {args.report!r}: give an .html file in an existing directory")
    run_demo(args.seed, args.trials, args.trees, args.mothers, backend=args.backend, brief=args.brief, say=say,
             report=report, families=args.families, survival=not args.no_survival)
    return 0


def _model_arguments(f: argparse.ArgumentParser) -> None:
    """The data and model arguments ``fit`` and ``plan`` share."""
    f.add_argument("data", help="CSV or Parquet file, or a directory or glob of them (\"trees/*.parquet\": the "
                                "partitioned route, the data pass on Dask)")
    f.add_argument("--fixed", required=True, help='e.g. "dbh ~ Trial"')
    f.add_argument("--random", default=None, help='e.g. "~ Trial:Block + Mother + Trial:Mother"')
    f.add_argument("--residual", default=None,
                   help='"~ units" (default), "~ at(Trial):units", "~ at(Trial):ar1(Row):ar1(Col)", ...')
    f.add_argument("--factors", default=None, help="comma-separated numeric columns to treat as factors")
    f.add_argument("--sep", default=None, help="field separator of a text file (default ',', or tab for .tsv)")
    f.add_argument("--decimal", default=".", help="decimal mark of a text file (default '.')")
    f.add_argument("--na-action", default="error", choices=["error", "drop"])
    f.add_argument("--backend", default=None, choices=["cholmod", "qdldl", "auto"])
    f.add_argument("--pedigree", action="append", metavar="NAME=FILE[:id,sire,dam]",
                   help="a pedigree for vm(x, NAME) terms (columns id, sire, dam unless named)")
    f.add_argument("--groups", action="append", metavar="NAME=G1,G2,...",
                   help="genetic groups of pedigree NAME: the names written for unknown parents of each origin "
                        "(fit them with groups(x, NAME) in --fixed or --random)")
    f.add_argument("--add-missing", action="store_true",
                   help="ids of the data missing from a pedigree become founders instead of an error")
    f.add_argument("--scheduler", default=None, metavar="WHERE",
                   help="partitioned data: where the data pass runs: threads, processes, synchronous or a "
                        "dask.distributed address such as tcp://host:8786 (default: threads)")
    f.add_argument("--max-memory", default=None, metavar="SIZE",
                   help="memory the fit may use, e.g. 4GB or 500MB (default: the memory available); a fit "
                        "forecast to need more is refused before it factorises")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparsereml", description="REML for large linear mixed models.")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="fit a model to a CSV or Parquet file, or to partitioned data")
    _model_arguments(f)
    f.add_argument("--max-iter", type=int, default=None, help="iteration limit (default 50)")
    f.add_argument("--family", default="gaussian", choices=["gaussian", "binomial", "poisson", "negative.binomial"],
                   help="a GLMM's response distribution (default gaussian: a linear mixed model by REML); "
                        "negative.binomial is glmmTMB's nbinom2 with theta estimated")
    f.add_argument("--link", default=None, choices=["logit", "probit", "cloglog", "log"],
                   help="GLMM link (binomial: logit (default), probit, cloglog; poisson, negative.binomial: log)")
    f.add_argument("--method", default=None, choices=["laplace", "pql"], help="GLMM fitting method (default laplace)")
    f.add_argument("--weights", default=None, metavar="COLUMN",
                   help="GLMM: binomial trials of a proportion response, or Poisson prior weights")
    f.add_argument("--offset", default=None, metavar="COLUMN", help="GLMM: offset added to the linear predictor")
    f.add_argument("--scale", default=None, choices=["link", "response"],
                   help="GLMM: scale of the --predict tables (default link)")
    f.add_argument("--function", action="append", metavar="NAME=EXPRESSION",
                   help="a function of the components with its SE, e.g. 'h2=4*Mother/(Mother+units)'")
    f.add_argument("--wald", default=None, choices=["kr", "satterthwaite", "none"],
                   help="Wald F tests of the fixed terms with this denominator df (wald.csv)")
    f.add_argument("--ss", default="incremental", choices=["incremental", "conditional"],
                   help="Wald tests given the terms before (incremental) or all not containing the term")
    f.add_argument("--predict", action="append", metavar="CLASSIFY",
                   help="predicted values of a classify table, e.g. 'Trial' or 'Trial:Mother' (repeatable)")
    f.add_argument("--sed", action="store_true", help="also write the SED matrix of each --predict table")
    f.add_argument("--out", default=None, help="directory for the result files")
    f.add_argument("--records", action="store_true",
                   help="also write records.csv: per record the response, fitted value, residual, residual group and "
                        "grid position (ASReml's .yht); --report writes it too. Partitioned data: records/, one "
                        "Parquet file per input partition (part-00000.parquet ...), written where the data pass runs")
    f.add_argument("--report", action="store_true",
                   help="also write report.html (plots, tables, diagnostics) beside the result files of --out")
    f.add_argument("--quiet", action="store_true", help="no progress lines")
    f.add_argument("--json", action="store_true",
                   help="print the result as one JSON object on standard output (no progress or summary)")
    f.set_defaults(func=cmd_fit)
    pl = sub.add_parser("plan", help="print the memory forecast of a fit (no factorisation)")
    _model_arguments(pl)
    pl.add_argument("--json", action="store_true", help="print the forecast as one JSON object")
    pl.set_defaults(func=cmd_plan)
    d = sub.add_parser("demo", help="simulate a progeny-trial network and fit models m2, m2b, m2c")
    # None: the default of sparsereml.datasets.trial_network, the one place the network's size is set
    d.add_argument("--seed", type=int, default=None, help="seed of the simulation")
    d.add_argument("--trials", type=int, default=None, help="number of trials")
    d.add_argument("--trees", type=int, default=None, help="trees before full-sibs and dead trees are removed")
    d.add_argument("--mothers", type=int, default=None, help="number of open-pollinated mothers")
    d.add_argument("--backend", default=None, choices=["cholmod", "qdldl", "auto"])
    d.add_argument("--brief", action="store_true", help="summarise the per-trial at() components")
    d.add_argument("--families", default="half", choices=["half", "all"],
                   help="'all': the network also has full-sib families and clones, fitted in one analysis "
                        "(GCA overlay, SCA, clones) after m2, m2b, m2c")
    d.add_argument("--report", default="sparsereml-demo.html", metavar="FILE",
                   help="the HTML report comparing the three models (default sparsereml-demo.html)")
    d.add_argument("--no-report", action="store_true", help="fit and print only")
    d.add_argument("--no-survival", action="store_true", help="skip the survival (probit GLMM) analysis")
    d.set_defaults(func=cmd_demo)
    r = sub.add_parser("report", help="write the HTML report again from the results of sparsereml fit --out DIR")
    r.add_argument("dirs", nargs="+", metavar="DIR", help="result directories (several: a comparison)")
    r.add_argument("--out", default=None, metavar="FILE",
                   help="the HTML file (default DIR/report.html for one directory, ./report.html for several)")
    r.add_argument("--names", default=None, help="comma-separated names of the models (default: the directories')")
    r.add_argument("--quiet", action="store_true", help="say only where the report is")
    r.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SparseREMLError as exc:
        print(f"sparsereml: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # standard output closed (| head): nothing more to say
        _drop_stdout()
        return 0
    finally:
        if getattr(args, "client", None) is not None:  # a --scheduler address's client
            args.client.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
