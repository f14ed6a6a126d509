"""The demonstration behind ``sparsereml demo``: models m2, m2b and m2c on a simulated network,
and the survival of its trees.

A half-sib progeny-trial network is simulated (:func:`sparsereml.datasets.trial_network`),
the three models are fitted, and each model's variance components are printed beside the
values the simulator used, wherever a component has one.  Then the same network with every
planted tree and its survival (0/1, from a genetic liability) is fitted by a probit GLMM
(:data:`SURVIVAL`), with heritabilities on the liability and observed scales.  Every true value
is read from the simulator's truth, never typed in here.
"""
from __future__ import annotations

import re
import time
from typing import Callable

import pandas as pd

from .api import fit, lrt
from .datasets import trial_network
from .results import FittedModel

__all__ = ["MODELS", "ALL_FAMILIES", "true_value", "varcomp_with_truth", "heritabilities", "run_demo"]

#: name -> (fixed, random, residual) formulas of the demonstration's models
MODELS: dict[str, tuple[str, str, str]] = {
    "m2": ("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", "~ units"),
    "m2b": ("dbh ~ Trial", "~ Trial:Block + Mother + Trial:Mother", "~ at(Trial):units"),
    "m2c": ("dbh ~ Trial", "~ at(Trial):Block + Mother + Trial:Mother", "~ at(Trial):units"),
}

# a per-trial component, e.g. "at(Trial, 12):units", and the truth key of its per-trial values
_PER_TRIAL = re.compile(r"at\(Trial, (\d+)\):(Block|units)")
_PER_TRIAL_KEY = {"Block": "block_var", "units": "resid_var"}
_SINGLE_KEY = {"Mother": "sigma2_mother", "Trial:Mother": "sigma2_trial_mother", "sca(Mother, Father)": "sigma2_sca",
               "at(Type, clone):Clone": "sigma2_clone"}

#: the analysis of every family of ``trial_network(families="all")``: GCA of each parent whichever
#: its role (and() overlays), its interaction with trials, SCA of each cross, clones' genotypes
ALL_FAMILIES: tuple[str, str, str] = (
    "dbh ~ Trial",
    "~ Trial:Block + Mother + and(Father) + Trial:Mother + and(Trial:Father) + sca(Mother, Father)"
    " + at(Type, clone):Clone",
    "~ at(Trial):units")


#: survival of every planted tree: a probit GLMM (Laplace) on the liability scale
SURVIVAL: tuple[str, str] = ("survival ~ Trial", "~ Trial:Block + Mother + Trial:Mother")
_SURVIVAL_TRUTH = {"Trial:Block": "sigma2_block", "Mother": "sigma2_mother", "Trial:Mother": "sigma2_trial_mother"}
_H2_LIABILITY = "4 * Mother / (`Trial:Block` + Mother + `Trial:Mother` + latent)"


def _mean(values: list) -> float:
    return sum(values) / len(values)


def true_value(label: str, truth: dict) -> float:
    """The simulator's value of the variance component ``label``.

    Parameters
    ----------
    label : str
        A row label of ``FittedModel.varcomp``: ``Mother``, ``Trial:Mother``, ``sca(Mother, Father)``,
        ``at(Type, clone):Clone`` (the last two from ``families="all"``), or a per-trial
        component ``at(Trial, t):Block`` or ``at(Trial, t):units`` (trial numbers start at 1).
    truth : dict
        The truth returned by :func:`sparsereml.datasets.trial_network`.

    Returns
    -------
    float
        The simulated variance, or NaN for a component the simulator has no single value for
        (a block or residual variance pooled over trials, whose true variances differ).
    """
    if label in _SINGLE_KEY:
        return float(truth[_SINGLE_KEY[label]])
    m = _PER_TRIAL.fullmatch(label)
    if m:
        return float(truth[_PER_TRIAL_KEY[m.group(2)]][int(m.group(1)) - 1])
    return float("nan")


def varcomp_with_truth(model: FittedModel, truth: dict) -> pd.DataFrame:
    """``model.varcomp`` with a ``truth`` column (:func:`true_value` of every row).

    Parameters
    ----------
    model : FittedModel
    truth : dict
        The truth returned by :func:`sparsereml.datasets.trial_network`.

    Returns
    -------
    DataFrame
    """
    return model.varcomp.assign(truth=[true_value(label, truth) for label in model.varcomp.index])


def heritabilities(model: FittedModel, truth: dict | None = None) -> pd.DataFrame:
    """Narrow-sense heritability of dbh from the half-sib family variance, 4 Mother / (Mother +
    Trial:Mother + residual): one per trial when the residual variance is per trial (``at(Trial)``),
    else one; with standard errors (``vpredict``) and, given the simulator's truth, its true value."""
    per_trial = [lab for lab in model.varcomp.index if (m := _PER_TRIAL.fullmatch(lab)) and m.group(2) == "units"]
    residuals = {f"h2 trial {_PER_TRIAL.fullmatch(lab).group(1)}": f"`{lab}`" for lab in per_trial} or {"h2": "units"}
    table = model.vpredict({name: f"4 * Mother / (Mother + `Trial:Mother` + {res})" for name, res in residuals.items()})
    if truth is not None:
        s2m, s2tm = truth["sigma2_mother"], truth["sigma2_trial_mother"]
        if per_trial:
            true = [4 * s2m / (s2m + s2tm + true_value(lab, truth)) for lab in per_trial]
        else:
            true = [float("nan")]  # one residual variance for trials whose true variances differ
        table = table.assign(truth=true)
    return table


def write_report(fits: dict, truth: dict, path, say: Callable[..., None] = print) -> None:
    """The comparison report of the demonstration's fits, with each model's heritabilities (against
    the truth) and predicted trial means."""
    from .reporting import report

    t0 = time.perf_counter()
    report(fits, path, predict=["Trial"], functions=lambda m: heritabilities(m, truth),
           title=f"sparsereml demo: {', '.join(fits)} on a simulated progeny-trial network")
    fit_seconds = sum(m.seconds.get("total", 0.0) for m in fits.values())
    say(f"\nwrote the report comparing {', '.join(fits)} to {path} ({time.perf_counter() - t0:.1f} s; "
        f"the fits took {fit_seconds:.1f} s): open it in a browser")


def run_demo(seed: int | None = None, trials: int | None = None, trees: int | None = None,
             mothers: int | None = None, *, backend: str | None = None, brief: bool = False,
             say: Callable[..., None] = print, report=None, families: str = "half",
             survival: bool = True) -> dict[str, FittedModel]:
    """Simulate a trial network, fit :data:`MODELS` to it and report them against the truth.

    Parameters
    ----------
    seed, trials, trees, mothers : int, optional
        Passed to :func:`sparsereml.datasets.trial_network`; None keeps its default.
    backend : {"cholmod", "qdldl", "auto"}, optional
        Factorisation backend of the fits.
    brief : bool
        Print only the components that are not per-trial (``at()``) when a model has more
        than eight.
    say : callable
        Prints one line (called like ``print``); the CLI passes one that survives a closed pipe.
    report : str or Path, optional
        Write the HTML report comparing the models here (:func:`write_report`).
    families : {"half", "all"}
        ``"all"``: the network also has full-sib families and clones; :data:`MODELS` are fitted
        to its half-sibs as before, then :data:`ALL_FAMILIES` to every tree (fits key ``"all"``).
    survival : bool
        Also fit :data:`SURVIVAL` to the network's planted trees (fits key ``"survival"``).

    Returns
    -------
    dict
        Model name -> its FittedModel, in the order of :data:`MODELS`.
    """
    sizes = {"seed": seed, "trials": trials, "trees": trees, "mothers": mothers}
    t0 = time.perf_counter()
    everything, truth = trial_network(**{k: v for k, v in sizes.items() if v is not None}, families=families)
    df = everything
    if families == "all":
        df = everything[everything["Type"] == "half-sib"].drop(columns=["Type", "Clone"]).reset_index(drop=True)
    say(f"simulated {len(df)} half-sib trees with dbh in {df['Trial'].nunique()} trials, "
        f"{df['Mother'].nunique()} mothers ({time.perf_counter() - t0:.1f} s)")
    say(f"truth: Mother {truth['sigma2_mother']}, Trial:Mother {truth['sigma2_trial_mother']}, "
        f"block variances averaging {_mean(truth['block_var']):.1f}, "
        f"residual variances averaging {_mean(truth['resid_var']):.1f}\n")
    fits = {}
    for name, (fx, rnd, res) in MODELS.items():
        fits[name] = _fit_and_say(name, (fx, rnd, res), df, truth, backend, brief, say)
    for a, b in (("m2", "m2b"), ("m2b", "m2c")):
        say(f"LRT {a} vs {b}: {lrt(fits[a], fits[b])}")
    if report is not None:
        write_report(fits, truth, report, say)
    if families == "all":
        kinds = everything["Type"].value_counts()
        say(f"\nthe whole network: {len(everything)} trees, {kinds.get('full-sib', 0)} full-sibs and "
            f"{kinds.get('clone', 0)} ramets of {everything.loc[everything.Type == 'clone', 'Clone'].nunique()} "
            f"clones beside the half-sibs; truth: SCA {truth['sigma2_sca']}, clones {truth['sigma2_clone']}")
        fits["all"] = _fit_and_say("all families", ALL_FAMILIES, everything, truth, backend, brief, say)
    if survival:
        fits["survival"] = fit_survival({k: v for k, v in sizes.items() if v is not None}, backend, say)
    return fits


def fit_survival(sizes: dict, backend, say: Callable[..., None] = print) -> FittedModel:
    """Fit :data:`SURVIVAL` to ``trial_network(**sizes, survival=True)`` and print its components
    and heritabilities (liability and observed scales) beside the simulator's values."""
    from .glmm import Binomial, observed_scale

    df, truth = trial_network(**sizes, survival=True)
    s = truth["survival"]
    model = fit(*SURVIVAL, data=df, backend=backend, family=Binomial("probit"))
    alive = float(df["survival"].mean())
    say(f"\n== survival of {len(df):,} planted trees ({alive:.1%} alive): probit GLMM, {SURVIVAL[0]}, "
        f"random {SURVIVAL[1]}")
    say(f"   logL {model.loglik:.3f} (Laplace approximation), {model.n_iterations} iterations, "
        f"{model.seconds['total']:.2f} s; variances on the liability scale")
    vc = model.varcomp[["component", "std.error"]]
    say(vc.assign(truth=[s[_SURVIVAL_TRUTH[lab]] for lab in vc.index]).to_string())
    h2 = model.vpredict({"h2": _H2_LIABILITY})
    obs = observed_scale(h2, alive)
    true_h2 = 4 * s["sigma2_mother"] / s["total_var"]
    say(f"   h2 of survival: liability scale {h2.loc['h2', 'estimate']:.3f} (SE {h2.loc['h2', 'std.error']:.3f}; "
        f"truth {true_h2:.3f}), observed 0/1 scale {obs.loc['h2', 'estimate']:.3f} "
        f"(SE {obs.loc['h2', 'std.error']:.3f}; truth {float(observed_scale(true_h2, alive)['estimate'].iloc[0]):.3f})")
    return model


def _fit_and_say(name: str, formulas: tuple, df: pd.DataFrame, truth: dict, backend, brief: bool,
                 say: Callable[..., None]) -> FittedModel:
    fx, rnd, res = formulas
    model = fit(fx, rnd, res, data=df, backend=backend)
    say(f"== {name}: {fx}, random {rnd}, residual {res}")
    say(f"   logL {model.loglik:.3f}  (ASReml convention {model.loglik_asreml:.3f}), "
        f"{model.n_iterations} iterations, {model.seconds['total']:.2f} s")
    vc = varcomp_with_truth(model, truth)
    if brief and len(vc) > 8:
        at_rows = vc.index.map(lambda lab: bool(_PER_TRIAL.fullmatch(lab))).to_numpy(dtype=bool)
        say(vc[~at_rows].to_string())
        say(f"   ... and {int(at_rows.sum())} per-trial at() components; without --brief all are printed")
    else:
        say(vc.to_string())
    say()
    return model
