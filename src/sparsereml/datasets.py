"""Simulated multi-site half-sib progeny-trial networks with known truth.

A port of the project's reference simulator (``simulate_trees.py``): the same
seed gives the same trees, pedigree and truth, number for number; only the
slow Python loops were vectorised.  Each trial is a randomized complete block
design on a Row x Col grid; mothers (open-pollinated families) are shared
across trials and related through a shallow pedigree; a few full-sib trees and
dead trees (missing dbh) are mixed in.  ``trial_network(survival=True)`` instead
decides which trees died from a genetic liability (:mod:`sparsereml.datasets_survival`).
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

__all__ = ["simulate_trees", "trial_network", "contemporary_groups", "repartition"]


def _relationship_cholesky(sire: np.ndarray, dam: np.ndarray) -> np.ndarray:
    """Dense lower Cholesky of the numerator relationship matrix (tabular method)."""
    n = len(sire)
    A = np.zeros((n, n))
    for i in range(n):
        s, d = sire[i] - 1, dam[i] - 1
        a = np.zeros(i)
        if s >= 0:
            a = a + 0.5 * A[:i, s]
        if d >= 0:
            a = a + 0.5 * A[:i, d]
        A[i, :i] = a
        A[:i, i] = a
        A[i, i] = 1.0 + (0.5 * A[s, d] if s >= 0 and d >= 0 else 0.0)
    return np.linalg.cholesky(A)


def _ar1_field(rng, n_row: int, n_col: int, rho_row: float, rho_col: float) -> np.ndarray:
    """Unit-variance Gaussian field with covariance AR1(rho_row) (x) AR1(rho_col)."""
    z = rng.standard_normal((n_row, n_col))
    for i in range(1, n_row):
        z[i] = rho_row * z[i - 1] + np.sqrt(1 - rho_row**2) * z[i]
    for j in range(1, n_col):
        z[:, j] = rho_col * z[:, j - 1] + np.sqrt(1 - rho_col**2) * z[:, j]
    return z


def simulate_trees(seed: int = 2011, trials: int = 31, trees: int = 198_000, mothers: int = 1100,
                   spatial: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Simulate a trial network.

    Parameters
    ----------
    seed : int
    trials : int
        Number of trials (sites).
    trees : int
        Trees before removing full-sibs and dead trees.
    mothers : int
        Number of open-pollinated mothers (families).
    spatial : bool
        Make part of each trial's residual an AR1(Row) x AR1(Col) field.

    Returns
    -------
    trees : DataFrame
        Trial, Block, Row, Col, Tree, Mother, Father (0 = half-sib), dbh (NaN = dead).
    pedigree : DataFrame
        id, sire, dam ("0" = unknown); mother m is ``M<m>``.
    truth : dict
        Every variance and effect used (``sigma2_mother``, ``sigma2_trial_mother``,
        ``resid_var`` and ``block_var`` per trial, ...).
    """
    trees_df, pedigree, truth, _ = _simulate(seed, trials, trees, mothers, spatial)
    return trees_df, pedigree, truth


def _simulate(seed, trials, trees, mothers, spatial) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """:func:`simulate_trees`, and what the survival simulation reuses: ``dbh_planted`` (every
    tree's dbh before the 3% of dead trees are set missing, rounded like ``dbh``), the Cholesky
    factor ``L`` of the pedigree's relationship matrix, the standard normals ``z_mother`` behind
    the mother effects (``mother_effect = sqrt(sigma2_mother) L z``) and ``n_gp``, the number of
    grandparents that precede the mothers in the pedigree.  Drawing order and numbers are those of
    the reference simulator."""
    net = _Network(seed, trials, trees, mothers, spatial)
    parts, planted = [], []
    for t in range(trials):
        frame, y = net.trial(t)
        parts.append(frame)
        planted.append(y)
    trees_df = pd.concat(parts, ignore_index=True)
    trees_df["dbh"] = trees_df["dbh"].round(1)
    dbh_planted = pd.Series(np.concatenate(planted)).round(1).to_numpy()
    return trees_df, net.pedigree(), net.truth(), {"dbh_planted": dbh_planted, "L": net.L,
                                                   "z_mother": net.z_mother, "n_gp": net.n_gp}


class _Network:
    """The network's shared draws (pedigree, mother effects, trial parameters), then its trials
    one at a time (:meth:`trial`, in order): what lets a large network be written trial by trial
    without holding it all (:mod:`sparsereml.datasets_parquet`)."""

    def __init__(self, seed: int, trials: int, trees: int, mothers: int, spatial: bool):
        _check_sizes(trials, trees, mothers)
        n_trials, n_trees, n_mothers = trials, trees, mothers
        self.seed, self.spatial, self.n_mothers = seed, spatial, n_mothers
        rng = self.rng = np.random.default_rng(seed)
        srng = self.srng = np.random.default_rng(seed + 1)  # spatial draws leave the main stream unchanged

        n_gp = self.n_gp = max(20, n_mothers // 8)
        sire, dam = [0] * n_gp, [0] * n_gp
        related = rng.random(n_mothers) < 0.35
        for m in range(n_mothers):
            if related[m]:
                p = rng.choice(n_gp, size=2, replace=False) + 1
                sire.append(int(p[0]))
                dam.append(int(p[1]) if rng.random() < 0.5 else 0)
            else:
                sire.append(0)
                dam.append(0)
        self.sire, self.dam = sire, dam
        self.L = _relationship_cholesky(np.array(sire), np.array(dam))
        n_ped = n_gp + n_mothers

        self.sigma2_mother, self.sigma2_trial_mother = 30.0, 22.5
        self.z_mother = rng.standard_normal(n_ped)
        mother_all = np.sqrt(self.sigma2_mother) * (self.L @ self.z_mother)
        self.mother_effect = mother_all[n_gp:]

        self.trial_mean = rng.uniform(120.0, 320.0, n_trials)
        self.resid_var = np.exp(rng.normal(np.log(950.0), 0.35, n_trials))
        self.block_var = rng.gamma(0.8, 77.0 / 0.8, n_trials)
        self.n_blocks = rng.integers(6, 41, n_trials)
        weights = rng.gamma(2.0, 1.0, n_trials)
        self.trees_per_trial = np.maximum(600, (weights / weights.sum() * n_trees).astype(int))

        self.spatial_share = srng.uniform(0.3, 0.7, n_trials) if spatial else np.zeros(n_trials)
        self.rho_row = srng.uniform(0.2, 0.8, n_trials)
        self.rho_col = srng.uniform(-0.2, 0.6, n_trials)
        self.tm_effects, self.block_effects = {}, {}
        self.tree_id = 0
        self.next_trial = 0

    def trial(self, t: int) -> tuple[pd.DataFrame, np.ndarray]:
        """Trial ``t``'s trees (dbh not yet rounded) and their dbh before the dead were set missing;
        trials must be drawn in order, as they share the random streams."""
        assert t == self.next_trial, "trials are drawn in order"
        self.next_trial += 1
        rng, srng, n_mothers = self.rng, self.srng, self.n_mothers
        k = int(rng.integers(max(30, n_mothers // 8), max(60, n_mothers // 3)))
        moth = np.sort(rng.choice(n_mothers, size=k, replace=False))
        tm = rng.normal(0.0, np.sqrt(self.sigma2_trial_mother), k)
        b = rng.normal(0.0, np.sqrt(self.block_var[t]), self.n_blocks[t])
        self.tm_effects.update({f"{t + 1}:{m + 1}": float(v) for m, v in zip(moth, tm)})
        self.block_effects.update({f"{t + 1}:{j + 1}": float(v) for j, v in enumerate(b)})
        nt = self.trees_per_trial[t]
        blk = rng.integers(0, self.n_blocks[t], nt)
        mj = rng.integers(0, k, nt)
        e = rng.normal(0.0, np.sqrt(self.resid_var[t]), nt)
        n_col = int(np.ceil(np.sqrt(nt)))
        pos = np.empty(nt, dtype=int)
        pos[np.argsort(blk, kind="stable")] = np.arange(nt)
        row, col = pos // n_col, pos % n_col
        if self.spatial:
            f = _ar1_field(srng, row.max() + 1, n_col, self.rho_row[t], self.rho_col[t])
            share = self.spatial_share[t]
            e = np.sqrt(1 - share) * e + np.sqrt(share * self.resid_var[t]) * f[row, col]
        y = self.trial_mean[t] + b[blk] + self.mother_effect[moth[mj]] + tm[mj] + e
        father = np.zeros(nt, dtype=int)
        fs = rng.random(nt) < 0.04
        father[fs] = rng.integers(1, 60, fs.sum())
        y[fs] += rng.normal(0.0, 8.0, fs.sum())
        planted = y.copy()
        y[rng.random(nt) < 0.03] = np.nan
        frame = pd.DataFrame({
            "Trial": np.full(nt, t + 1, dtype=np.int64), "Block": (blk + 1).astype(np.int64),
            "Row": (row + 1).astype(np.int64), "Col": (col + 1).astype(np.int64),
            "Tree": np.arange(self.tree_id + 1, self.tree_id + nt + 1, dtype=np.int64),
            "Mother": (moth[mj] + 1).astype(np.int64), "Father": father.astype(np.int64), "dbh": y})
        self.tree_id += nt
        return frame, planted

    def pedigree(self) -> pd.DataFrame:
        ids = [f"G{i}" for i in range(1, self.n_gp + 1)] + [f"M{m}" for m in range(1, self.n_mothers + 1)]
        return pd.DataFrame({"id": ids,
                             "sire": [f"G{i}" if i > 0 else "0" for i in self.sire],
                             "dam": [f"G{i}" if i > 0 else "0" for i in self.dam]})

    def truth(self) -> dict:
        """Every variance and effect used (the trials' effects once all are drawn)."""
        spatial, share = self.spatial, self.spatial_share
        return {
            "seed": self.seed,
            "sigma2_mother": self.sigma2_mother,
            "sigma2_trial_mother": self.sigma2_trial_mother,
            "sigma2_block_pooled": 77.0,
            "trial_mean": self.trial_mean.round(4).tolist(),
            "resid_var": self.resid_var.round(4).tolist(),
            "block_var": self.block_var.round(4).tolist(),
            "spatial": bool(spatial),
            "spatial_share": share.round(4).tolist(),
            "spatial_var": (share * self.resid_var).round(4).tolist(),
            "independent_resid_var": ((1 - share) * self.resid_var).round(4).tolist(),
            "rho_row": self.rho_row.round(4).tolist() if spatial else [],
            "rho_col": self.rho_col.round(4).tolist() if spatial else [],
            "n_blocks": self.n_blocks.tolist(),
            "mother_effect": {f"M{m + 1}": float(v) for m, v in enumerate(self.mother_effect)},
            "trial_mother_effect": self.tm_effects,
            "block_effect": self.block_effects,
            "note": "Mother ids in trees.csv are integers m; the pedigree names them 'M<m>'.",
        }


def _check_sizes(trials, trees, mothers) -> None:
    """Refuse sizes the simulation cannot draw, naming the argument (before any drawing)."""
    from .errors import DataError

    for name, value, least, why in (("trials", trials, 1, "a network needs a trial"),
                                     ("trees", trees, 1, "a network needs trees"),
                                     ("mothers", mothers, 60, "each trial draws 30 to 59 of the mothers or more")):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise DataError(f"{name}={value!r}: give a whole number of at least {least} ({why})")


#: variances of the families added by ``trial_network(families="all")``
SCA_VARIANCE, CLONE_VARIANCE = 15.0, 40.0


def trial_network(seed: int = 2011, trials: int = 31, trees: int = 198_000, mothers: int = 1100,
                  spatial: bool = False, families: str = "half",
                  survival: bool = False, out: str | None = None,
                  partitions: int | None = None) -> tuple[pd.DataFrame | list, dict]:
    """The trees with a diameter (what models m2, m2b and m2c are fitted to), and the truth;
    with ``survival=True`` every planted tree, dead or alive.

    Trial, Block and Mother are categorical columns, so that ``dbh ~ Trial`` fits one
    mean per trial (a numeric column in a fixed formula is a covariate).

    Parameters
    ----------
    seed, trials, trees, mothers, spatial
        As :func:`simulate_trees`.
    families : {"half", "all"}
        ``"half"``: the open-pollinated (half-sib) trees, ``Father`` 0.  ``"all"``: the same trees,
        number for number, and full-sib families (crosses among the mothers in each trial) and
        clonal tests (ramets of clones from such crosses) drawn from a separate stream, with
        columns ``Type`` (half-sib, full-sib, clone) and ``Clone`` (a clone's id; a tree's own id
        ``T<tree>`` otherwise).  A full-sib tree of m x f has GCA_m + GCA_f + Trial:m + Trial:f +
        SCA_mf (GCA the mothers' effects, variance ``sigma2_mother``; SCA variance
        ``sigma2_sca``); a ramet adds its clone's effect (variance ``sigma2_clone``).
    survival : bool
        False (the default): the network as it always was, its dead trees (3%, at random) left
        out.  True: every planted tree is a row, with a column ``survival`` (1 alive, 0 dead)
        from a probit-scale liability with trial thresholds, block, mother (genetically
        correlated with dbh's) and Trial:Mother effects; ``dbh`` is NaN exactly where
        ``survival`` is 0, and a living tree's ``dbh`` is the default network's, number for
        number.  Drawn from a stream of its own; see :func:`sparsereml.datasets_survival.add_survival`
        for the model and ``truth["survival"]`` for its parameters and effects.
    out : str, optional
        A directory: write the trees as Parquet files ``part-00000.parquet``, ... there instead of
        returning them, drawing trial by trial so that only one file's trees are held at a time
        (a network of tens of millions of trees can be made this way; half-sib trees only, without
        survival).  Trial, Block and Mother are categorical in every file, with the same categories.
    partitions : int, optional
        With ``out``: the number of files (default 1), each of whole trials (a trial is never split),
        of about equal numbers of trees.

    Returns
    -------
    trees : DataFrame or list of str
        Trial, Block, Row, Col, Tree, Mother, Father, dbh (and Type, Clone with ``families="all"``;
        survival with ``survival=True``).  With ``out``: the paths of the files written, in order;
        reading them and concatenating gives the in-memory network, row for row.
    truth : dict
        As :func:`simulate_trees`, with the families' and the survival's parameters when asked for.
    """
    from .errors import DataError

    if families not in ("half", "all"):
        raise DataError(f"families={families!r}: give 'half' (open-pollinated families) or 'all' (also "
                        f"full-sib families and clones)")
    if not isinstance(survival, (bool, np.bool_)):
        raise DataError(f"survival={survival!r}: give True (a survival column; dead trees kept with "
                        f"dbh missing) or False")
    if out is not None:
        if families != "half" or survival:
            raise DataError("trial_network(out=...) writes the half-sib network without survival; "
                            "drop families='all' and survival=True, or build those in memory")
        from .datasets_parquet import write_network

        net = _Network(seed, trials, trees, mothers, spatial)
        files = write_network(net, trials, os.fspath(out), 1 if partitions is None else partitions)
        return files, net.truth()
    if partitions is not None:
        raise DataError(f"partitions={partitions!r} is for trial_network(out='directory'): the files to write")
    df, _, truth, drawn = _simulate(seed, trials, trees, mothers, spatial)
    half = df[(df["Father"] == 0) & df["dbh"].notna()].reset_index(drop=True)
    if survival:
        from .datasets_survival import add_survival

        # every planted half-sib tree, dbh before the default's 3% were set missing
        planted = df.assign(dbh=drawn["dbh_planted"])[df["Father"] == 0].reset_index(drop=True)
        out = _with_families(half, truth, seed, planted) if families == "all" else planted
        out = add_survival(out, truth, drawn, seed)
    else:
        out = _with_families(half, truth, seed) if families == "all" else half
    for col in ("Trial", "Block", "Mother"):
        out[col] = out[col].astype("category")
    return out, truth


def _with_families(half: pd.DataFrame, truth: dict, seed: int, planted: pd.DataFrame | None = None) -> pd.DataFrame:
    """The half-sibs with full-sib families and clones added (a stream of their own: the half-sibs
    stay as they are), and their variances and effects in ``truth``.

    ``half`` (the default network's half-sibs) sets how many trees each trial gets, so the added
    trees and their dbh are the same whatever ``planted`` is.  ``planted``, when given, replaces
    ``half`` in the result and numbers the added trees and their rows after its own (it holds the
    dead trees too), so that no added tree shares a tree id or a cell with one of them."""
    layout = half if planted is None else planted
    rng = np.random.default_rng([seed, 17])
    gca = {int(k[1:]): v for k, v in truth["mother_effect"].items()}
    tm = truth["trial_mother_effect"]
    sca: dict = {}
    parts, tree = [], int(layout["Tree"].max())
    for t, n_t in half.groupby("Trial").size().items():
        present = sorted(int(k.split(":")[1]) for k in tm if k.split(":")[0] == str(t))
        n_blocks = truth["n_blocks"][t - 1]
        n_rows, n_cols = (int(layout.loc[layout.Trial == t, c].max()) for c in ("Row", "Col"))
        spot = 0  # the added trees fill rows after the trial's own, one cell each
        for kind, n_cross, per in (("full-sib", 12, max(4, n_t // 200)), ("clone", 6, 5)):
            for _ in range(n_cross):
                m, f = (int(v) for v in rng.choice(present, 2, replace=False))
                pair = (min(m, f), max(m, f))
                if pair not in sca:
                    sca[pair] = float(rng.normal(0.0, np.sqrt(SCA_VARIANCE)))
                genetic = gca[m] + gca[f] + tm[f"{t}:{m}"] + tm[f"{t}:{f}"] + sca[pair]
                clones = [None] * per if kind == "full-sib" else [f"C{tree + 1 + i}" for i in range(per)]
                for clone in clones:
                    ramets = 1 if clone is None else 3
                    c_eff = 0.0 if clone is None else float(rng.normal(0.0, np.sqrt(CLONE_VARIANCE)))
                    blocks = rng.choice(n_blocks, ramets, replace=ramets > n_blocks) + 1
                    for b in blocks:
                        tree += 1
                        e = rng.normal(0.0, np.sqrt(truth["resid_var"][t - 1]))
                        y = truth["trial_mean"][t - 1] + truth["block_effect"][f"{t}:{b}"] + genetic + c_eff + e
                        parts.append((t, int(b), n_rows + 1 + spot // n_cols, 1 + spot % n_cols, tree, m, f,
                                      round(float(y), 1), kind, clone or f"T{tree}"))
                        spot += 1
    extra = pd.DataFrame(parts, columns=["Trial", "Block", "Row", "Col", "Tree", "Mother", "Father", "dbh",
                                         "Type", "Clone"])
    out = layout.assign(Type="half-sib", Clone="T" + layout["Tree"].astype(str))
    truth.update(sigma2_gca=truth["sigma2_mother"], sigma2_sca=SCA_VARIANCE, sigma2_clone=CLONE_VARIANCE,
                 sca_effect={f"{a} x {b}": v for (a, b), v in sca.items()})
    return pd.concat([out, extra], ignore_index=True)


def contemporary_groups(trees: pd.DataFrame, n_levels: int) -> pd.Series:
    """A contemporary-group-like factor with about ``n_levels`` levels: each trial's trees, in
    the order of their ``Tree`` number, cut into consecutive groups of equal size (blocks are
    drawn at random per tree, so groups cross blocks and ``Trial:Block`` stays identifiable).

    Returns a categorical Series (levels numbered 1, 2, ... across trials) aligned with ``trees``.
    """
    n = len(trees)
    size = n / max(int(n_levels), 1)
    codes = np.empty(n, dtype=np.int64)
    start = 0
    for _, idx in sorted(trees.groupby("Trial", observed=True).indices.items()):
        idx = idx[np.argsort(trees["Tree"].to_numpy()[idx], kind="stable")]
        k = min(len(idx), max(1, int(round(len(idx) / size))))
        codes[idx] = start + (np.arange(len(idx)) * k) // len(idx)
        start += k
    return pd.Series(pd.Categorical(codes + 1), index=trees.index, name="CG")


from .datasets_parquet import repartition  # noqa: E402  (Parquet partitions with whole groups)
