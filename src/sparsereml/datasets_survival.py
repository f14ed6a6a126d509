"""Survival of the trees of a simulated trial network, from a genetic liability with known truth.

``trial_network(survival=True)`` keeps every planted tree and calls :func:`add_survival`, which
decides which died on the probit scale (a threshold model).  Every draw comes from a stream of
its own, so the trees, their dbh and the rest of the truth are the default network's, number
for number; only which trees lack a dbh changes (the dead ones, instead of 3% at random).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

__all__ = ["add_survival", "expected_rate", "SURVIVAL_RATES", "SIGMA2_BLOCK", "SIGMA2_MOTHER", "SIGMA2_TRIAL_MOTHER",
           "GENETIC_CORRELATION"]

#: range of the trials' expected survival (each trial's drawn uniformly in it)
SURVIVAL_RATES = (0.55, 0.97)
#: liability-scale variances (residual variance 1): block (one for all trials), mother, Trial:Mother
SIGMA2_BLOCK, SIGMA2_MOTHER, SIGMA2_TRIAL_MOTHER = 0.08, 0.12, 0.04
#: correlation of a mother's liability effect with her dbh effect (both with relationships A)
GENETIC_CORRELATION = 0.3
_STREAM = 29  # the survival draws' stream is default_rng([seed, 29]) (the families' is [seed, 17])


def add_survival(trees: pd.DataFrame, truth: dict, drawn: dict, seed: int) -> pd.DataFrame:
    """The trees with a ``survival`` column (1 alive, 0 dead) and dbh missing for the dead.

    A tree in trial t, block b, of mother m has the liability

        l = threshold_t + block_tb + mother_m + trial_mother_tm + e,    e ~ N(0, 1),

    and lives when ``l > 0``.  Block effects have variance :data:`SIGMA2_BLOCK`, Trial:Mother
    effects :data:`SIGMA2_TRIAL_MOTHER`; the mother effects are ``sqrt(SIGMA2_MOTHER) L z_s`` with
    the same Cholesky factor ``L`` of the relationship matrix as dbh's ``sqrt(sigma2_mother) L z``
    and ``z_s = r z + sqrt(1 - r^2) z_new`` (``r`` = :data:`GENETIC_CORRELATION`), so that the two
    mother effects have genetic correlation ``r``.  Each trial's expected survival ``p_t`` is drawn
    uniformly in :data:`SURVIVAL_RATES` and ``threshold_t = sqrt(V) Phi^-1(p_t)``, V the sum of the
    four variances, so that a half-sib tree lives with probability ``Phi(threshold_t / sqrt(V))``
    = ``p_t`` over the random effects.  A full-sib or clonal tree (``Father`` > 0, from
    ``families="all"``) has the mother and Trial:Mother effects of both parents, with no SCA or
    clone effect on the liability.

    Parameters
    ----------
    trees : DataFrame
        Every planted tree: integer Trial, Block, Mother, Father (0 for a half-sib) and dbh.
    truth : dict
        The network's truth (``n_blocks``, ``trial_mother_effect`` name the levels to draw);
        gains ``truth["survival"]``, a dict with ``threshold``, ``target_rate`` (``p_t``) and
        ``rate`` (realised) per trial, the liability-scale variances ``sigma2_block``,
        ``sigma2_mother``, ``sigma2_trial_mother``, ``resid_var``, ``sigma2_sca`` and
        ``sigma2_clone`` (both 0), ``total_var`` (V), ``genetic_correlation``, the realised
        effects ``mother_effect`` (``M<m>``), ``trial_mother_effect`` and ``block_effect``
        (``"<t>:<m>"``, ``"<t>:<b>"``, as in ``truth``), ``n_dead`` and the ``model`` in words.
    drawn : dict
        ``L``, ``z_mother`` and ``n_gp`` from the simulation of dbh.
    seed : int
        The network's seed.

    Returns
    -------
    DataFrame
        ``trees`` with ``survival`` after ``dbh``, and ``dbh`` NaN where ``survival`` is 0.
    """
    rng = np.random.default_rng([seed, _STREAM])
    n_trials = len(truth["trial_mean"])
    total_var = SIGMA2_BLOCK + SIGMA2_MOTHER + SIGMA2_TRIAL_MOTHER + 1.0
    target = rng.uniform(*SURVIVAL_RATES, n_trials)
    threshold = np.sqrt(total_var) * ndtri(target)

    r = GENETIC_CORRELATION
    z = drawn["z_mother"]
    z_s = r * z + np.sqrt(1.0 - r * r) * rng.standard_normal(len(z))
    mother = (np.sqrt(SIGMA2_MOTHER) * (drawn["L"] @ z_s))[drawn["n_gp"]:]

    n_blocks = np.asarray(truth["n_blocks"])
    block = [rng.normal(0.0, np.sqrt(SIGMA2_BLOCK), k) for k in n_blocks]
    tm_keys = list(truth["trial_mother_effect"])  # trial by trial, each trial's mothers in order
    tm_values = rng.normal(0.0, np.sqrt(SIGMA2_TRIAL_MOTHER), len(tm_keys))
    tm = np.full((n_trials + 1, len(mother) + 1), np.nan)  # [trial, mother], both from 1
    for key, v in zip(tm_keys, tm_values):
        t, m = key.split(":")
        tm[int(t), int(m)] = v

    t, b = trees["Trial"].to_numpy(int), trees["Block"].to_numpy(int)
    m, f = trees["Mother"].to_numpy(int), trees["Father"].to_numpy(int)
    first_block = np.concatenate([[0], np.cumsum(n_blocks)])
    liability = threshold[t - 1] + np.concatenate(block)[first_block[t - 1] + b - 1] + mother[m - 1] + tm[t, m]
    cross = f > 0
    liability[cross] += mother[f[cross] - 1] + tm[t[cross], f[cross]]
    liability += rng.standard_normal(len(trees))
    alive = (liability > 0).astype(np.int64)

    out = trees.assign(dbh=np.where(alive == 1, trees["dbh"].to_numpy(float), np.nan))
    out.insert(out.columns.get_loc("dbh") + 1, "survival", alive)
    rate = out.groupby("Trial")["survival"].mean()
    truth["survival"] = {
        "model": "l = threshold[Trial] + Trial:Block + Mother + Trial:Mother (+ Father + Trial:Father for a "
                 "cross) + e, e ~ N(0, 1); survival = 1 if l > 0 (probit scale)",
        "threshold": threshold.round(6).tolist(),
        "target_rate": target.round(6).tolist(),
        "rate": [float(rate.get(i, np.nan)) for i in range(1, n_trials + 1)],
        "sigma2_block": SIGMA2_BLOCK,
        "sigma2_mother": SIGMA2_MOTHER,
        "sigma2_trial_mother": SIGMA2_TRIAL_MOTHER,
        "resid_var": 1.0,
        "sigma2_sca": 0.0,
        "sigma2_clone": 0.0,
        "total_var": total_var,
        "genetic_correlation": r,
        "mother_effect": {f"M{i + 1}": float(v) for i, v in enumerate(mother)},
        "trial_mother_effect": dict(zip(tm_keys, tm_values.tolist())),
        "block_effect": {f"{i + 1}:{j + 1}": float(v) for i, bs in enumerate(block) for j, v in enumerate(bs)},
        "n_dead": int((alive == 0).sum()),
    }
    return out


def expected_rate(threshold: float, total_var: float) -> float:
    """Probability that a tree lives over the random effects, ``Phi(threshold / sqrt(total_var))``."""
    return float(ndtr(threshold / np.sqrt(total_var)))
