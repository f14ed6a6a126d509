"""Pedigrees: reading and checking, inbreeding, the sparse inverse of the numerator
relationship matrix A.

    ped = sr.Pedigree("ped.csv", id="id", sire="sire", dam="dam")
    ped.ainverse()      # scipy.sparse CSC, rows in ped.ids order
    ped.inbreeding      # pandas Series by id
    ped.A(["M1", "M7"]) # dense A of a few individuals (tabular method over their ancestors)
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data import load_table
from ..errors import DataError, UnknownName
from . import _kernels

__all__ = ["Pedigree", "PedigreeWarning"]

_UNKNOWN = ["", "0", "0.0", ".", "na", "nan", "none", "<na>"]


class PedigreeWarning(UserWarning):
    """Something about a pedigree worth knowing that is not an error (reordered rows, ...)."""


def _keys(col: pd.Series) -> np.ndarray:
    """Ids of one column as hashable keys: whole numbers as int64 text-free codes ('1.0' and 1
    are the same id), everything else as stripped text; missing values as ''."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        vals = col.to_numpy(dtype=float, na_value=np.nan)
        fin = np.isfinite(vals)
        if np.all(vals[fin] == np.round(vals[fin])):
            return np.where(fin, np.nan_to_num(vals), -1).astype(np.int64)  # -1: missing
    text = col.astype("string").str.strip().fillna("")
    return text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True).to_numpy(dtype=object)  # '2.0' is '2'


def _deduplicate(ids, sires, dams, labels):
    """Identical repeated rows are dropped; one id with two parent pairs is an error."""
    order = np.argsort(ids, kind="stable")
    dup = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if dup.size == 0:
        return ids, sires, dams
    a, b = order[dup], order[dup + 1]
    clash = (sires[a] != sires[b]) | (dams[a] != dams[b])
    if clash.any():
        k = a[clash][0]
        rows = np.flatnonzero(ids == ids[k])
        name = lambda c: labels[c] if c >= 0 else "?"  # noqa: E731
        shown = "; ".join(sorted({f"sire {name(sires[r])}, dam {name(dams[r])}" for r in rows})[:3])
        raise DataError(f"id {labels[ids[k]]!r} appears with different parents ({shown}); "
                        f"{int(clash.sum())} repeated row(s) like this")
    keep = np.ones(ids.size, dtype=bool)
    keep[b] = False
    return ids[keep], sires[keep], dams[keep]


class Pedigree:
    """A pedigree with parents before offspring, coded 1..n (0 = unknown parent).

    Parameters
    ----------
    data : DataFrame or path (CSV or Parquet)
    id, sire, dam : str
        Column names.  Unknown parents may be 0, NA, empty or ".".
    sort : bool
        Reorder so that parents precede offspring (default).  With ``sort=False`` a parent
        listed after its offspring is an error naming both.
    add_missing : bool
        When the pedigree is matched to data (``vm(Mother, ped)``), ids of the data missing from
        the pedigree are added as founders instead of raising an error.
    groups : list of str, optional
        Genetic groups (unknown parent groups): names written in the sire and dam columns for an
        unknown parent of that origin.  They are unknown parents for A, and give each
        individual's group contributions (:func:`~sparsereml.pedigree.groups.group_contributions`)
        and A^-1 with group equations (:func:`~sparsereml.pedigree.groups.ainverse_with_groups`).

    Attributes
    ----------
    ids : tuple of str
        Individuals in coded order (parents first).
    sire, dam : ndarray of int
        Codes of the parents (0 unknown), aligned with ``ids`` (entry k for ids[k]).
    added : list of str
        Parents without a row of their own, added as founders.
    monoecious : list of str
        Ids that are a sire of some and a dam of others (allowed, e.g. monoecious plants).
    """

    def __init__(self, data, id: str = "id", sire: str = "sire", dam: str = "dam", *, sort: bool = True,
                 add_missing: bool = False, groups=None):
        df = load_table(data)
        for name in (id, sire, dam):
            if name not in df.columns:
                raise DataError(f"the pedigree has no column {name!r} (columns: {', '.join(map(str, df.columns))})")
        self.add_missing = bool(add_missing)
        self.id_dtype = "numeric" if pd.api.types.is_numeric_dtype(df[id]) else "text"
        # every id as a code into one table of labels; unknown parents -1
        keys = [_keys(df[c]) for c in (id, sire, dam)]
        if len({k.dtype.kind for k in keys}) > 1 or any(k.dtype == object for k in keys):
            keys = [k.astype(str).astype(object) if k.dtype != object else k for k in keys]
            keys = [np.where(k == "-1", "", k) if k.dtype == object else k for k in keys]
        codes, labels = pd.factorize(np.concatenate(keys), use_na_sentinel=True)
        labels = np.asarray(labels).astype(str).astype(object)
        n = len(df)
        unknown = np.flatnonzero(pd.Series(labels).str.lower().isin(_UNKNOWN + ["-1"]).to_numpy())
        codes = np.where(np.isin(codes, unknown), -1, codes)
        ids, sires, dams = codes[:n], codes[n:2 * n], codes[2 * n:]
        if np.any(ids < 0):
            rows = [int(r) + 1 for r in np.flatnonzero(ids < 0)[:5]]
            raise DataError(f"pedigree rows {rows} have no id, or an id that reads as an unknown parent "
                            f"(0, NA, empty or '.'); rename those individuals")
        sires, dams, slots = _group_slots(ids, sires, dams, labels, groups)
        ids, sires, dams = _deduplicate(ids, sires, dams, labels)
        self._build(ids, sires, dams, labels, sort)
        self.groups = list(slots[0]) if slots else []
        self.sire_group = self.dam_group = None
        if slots:  # each individual's group for an unknown sire and dam, -1 for none
            at = {lab: k for k, lab in enumerate(self._labels)}
            self.sire_group, self.dam_group = np.full(len(self), -1), np.full(len(self), -1)
            for lab, (sg, dg) in slots[1].items():
                self.sire_group[at[lab]], self.dam_group[at[lab]] = sg, dg

    # -- construction -------------------------------------------------------------------
    def _build(self, ids, sires, dams, labels, sort: bool) -> None:
        """Codes (into ``labels``) of each row and its parents -> parents-first 1-based codes."""
        own = np.flatnonzero((ids == sires) | (ids == dams))
        if own.size:
            raise DataError(f"individual {labels[ids[own[0]]]!r} is listed as its own parent")
        row_of = np.full(labels.size, -1, dtype=np.int64)
        row_of[ids] = np.arange(ids.size)
        parents = np.concatenate([sires, dams])
        missing = parents[(parents >= 0) & (row_of[np.maximum(parents, 0)] < 0)]
        added = pd.unique(missing)
        row_of[added] = ids.size + np.arange(added.size)
        all_codes = np.concatenate([ids, added])
        s_idx = np.concatenate([np.where(sires >= 0, row_of[np.maximum(sires, 0)], -1), np.full(added.size, -1)])
        d_idx = np.concatenate([np.where(dams >= 0, row_of[np.maximum(dams, 0)], -1), np.full(added.size, -1)])
        # added founders go first
        first = np.concatenate([np.arange(ids.size, all_codes.size), np.arange(ids.size)])
        back = np.empty(first.size, dtype=np.int64)
        back[first] = np.arange(first.size)
        all_codes = all_codes[first]
        s_idx = np.where(s_idx[first] >= 0, back[np.maximum(s_idx[first], 0)], -1)
        d_idx = np.where(d_idx[first] >= 0, back[np.maximum(d_idx[first], 0)], -1)
        pos = np.arange(all_codes.size)
        late = np.flatnonzero((s_idx > pos) | (d_idx > pos))
        order = pos
        if late.size:
            order = _parents_first(s_idx, d_idx, labels[all_codes])  # raises on a loop
            if not sort:
                child = late[0]
                parent = max(s_idx[child], d_idx[child])
                raise DataError(f"parent {labels[all_codes[parent]]!r} is listed after its offspring "
                                f"{labels[all_codes[child]]!r}; pass sort=True (the default) to reorder the pedigree")
            warnings.warn("the pedigree was reordered so that parents precede their offspring", PedigreeWarning,
                          stacklevel=3)
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        self._labels = labels[all_codes[order]]
        # 1-based codes of the parents, 0 for unknown
        self.sire = np.where(s_idx[order] >= 0, rank[np.maximum(s_idx[order], 0)] + 1, 0)
        self.dam = np.where(d_idx[order] >= 0, rank[np.maximum(d_idx[order], 0)] + 1, 0)
        self.added = list(labels[added])
        both = np.intersect1d(sires[sires >= 0], dams[dams >= 0])
        self.monoecious = sorted(labels[both])
        self._lookup = pd.Index(self._labels)
        self._F = self._D = self._ainv = None

    @property
    def ids(self) -> tuple:
        return tuple(self._labels)

    def without_groups(self) -> "Pedigree":
        """The same pedigree with its genetic groups read as plain unknown parents (A is unchanged:
        groups never enter A), for a vm() term that is not to fit them."""
        out = copy.copy(self)
        out.groups, out.sire_group, out.dam_group = [], None, None
        return out

    # -- basic facts ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        n_s = int(np.count_nonzero(self.sire))
        n_d = int(np.count_nonzero(self.dam))
        extra = f", {len(self.added)} parents added as founders" if self.added else ""
        mono = f", {len(self.monoecious)} both sire and dam" if self.monoecious else ""
        return f"Pedigree({len(self)} individuals, {n_s} known sires, {n_d} known dams{extra}{mono})"

    def index(self, ids) -> np.ndarray:
        """0-based positions of ``ids`` (KeyError naming the first unknown one)."""
        ids = np.asarray([str(i) for i in ids], dtype=object)
        pos = self._lookup.get_indexer(ids)
        if np.any(pos < 0):
            raise UnknownName(f"{ids[np.flatnonzero(pos < 0)[0]]!r} is not in the pedigree")
        return pos.astype(np.int64)

    def _codes(self):
        s = np.concatenate([[0], self.sire]).astype(np.int64)
        d = np.concatenate([[0], self.dam]).astype(np.int64)
        return s, d

    def _compute(self) -> None:
        if self._F is None:
            s, d = self._codes()
            F, D = _kernels.inbreeding(s, d)
            self._F, self._D = F[1:], D[1:]

    # -- results ------------------------------------------------------------------------
    @property
    def inbreeding(self) -> pd.Series:
        """Inbreeding coefficient of every individual (Meuwissen and Luo 1992)."""
        self._compute()
        return pd.Series(self._F, index=pd.Index(self.ids, name="id"), name="F")

    @property
    def mendelian_variances(self) -> np.ndarray:
        """D of A = T D T' (1 for founders, 1/2 - (F_s + F_d)/4 with both parents known)."""
        self._compute()
        return self._D

    def logdet(self) -> float:
        """log |A| = sum of log D."""
        return float(np.sum(np.log(self.mendelian_variances)))

    def ainverse(self) -> sp.csc_matrix:
        """A^-1 (sparse, symmetric, rows and columns in ``ids`` order) by Henderson's rules with
        inbreeding (Quaas 1976), in time linear in the pedigree."""
        if self._ainv is None:
            self._compute()
            s, d = self._codes()
            r, c, v = _kernels.ainverse_triplets(s, d, np.concatenate([[0.0], self._D]))
            n = len(self)
            low = sp.csc_matrix((v, (r, c)), shape=(n, n))
            low.sum_duplicates()
            self._ainv = (low + sp.tril(low, -1, format="csc").T).tocsc()
        return self._ainv

    def A(self, ids=None) -> pd.DataFrame:
        """Dense A of ``ids`` (all if None; meant for small sets) by the tabular method over
        them and their ancestors."""
        want = self.index(ids if ids is not None else self.ids)
        keep = _ancestors(self.sire, self.dam, want)
        sub = {int(k): j + 1 for j, k in enumerate(keep)}  # old 0-based -> new 1-based
        s = np.array([0] + [sub.get(int(self.sire[k]) - 1, 0) if self.sire[k] else 0 for k in keep], dtype=np.int64)
        d = np.array([0] + [sub.get(int(self.dam[k]) - 1, 0) if self.dam[k] else 0 for k in keep], dtype=np.int64)
        A = _kernels.tabular_a(s, d)
        pos = [sub[int(k)] - 1 for k in want]
        labels = [self.ids[k] for k in want]
        return pd.DataFrame(A[np.ix_(pos, pos)], index=labels, columns=labels)

    def to_frame(self) -> pd.DataFrame:
        """id, sire, dam (parents first; unknown parents as '0') and inbreeding."""
        par = np.array(("0",) + self.ids, dtype=object)
        return pd.DataFrame({"id": self.ids, "sire": par[self.sire], "dam": par[self.dam],
                             "inbreeding": self.inbreeding.to_numpy()})


def _group_slots(ids, sires, dams, labels, groups):
    """Parents that are genetic groups become unknown (-1); returns the parents and, with groups,
    (group names, {individual: (sire group, dam group)}) with -1 for no group."""
    if groups is None:
        return sires, dams, None
    names = [str(g) for g in groups]
    if not names or len(set(names)) != len(names):
        raise DataError(f"groups must be distinct names, got {names!r}")
    index = {g: k for k, g in enumerate(names)}
    own = set(labels[ids])
    clash = [g for g in names if g in own]
    if clash:
        raise DataError(f"group {clash[0]!r} is also an individual of the pedigree (it has a row); rename the "
                        f"group or the individual")
    lab = np.asarray(labels, dtype=object)
    gs = np.array([index.get(lab[c], -1) if c >= 0 else -1 for c in sires])
    gd = np.array([index.get(lab[c], -1) if c >= 0 else -1 for c in dams])
    unused = [g for k, g in enumerate(names) if not ((gs == k) | (gd == k)).any()]
    if unused:
        raise DataError(f"group {unused[0]!r} is no individual's parent; check its spelling in the sire and dam columns")
    slots = {lab[i]: (int(a), int(b)) for i, a, b in zip(ids, gs, gd)}
    return np.where(gs >= 0, -1, sires), np.where(gd >= 0, -1, dams), (names, slots)


def _parents_first(s_idx: np.ndarray, d_idx: np.ndarray, ids) -> np.ndarray:
    """A stable order with parents before offspring (generation number, then input order);
    a loop is an error that prints it."""
    gen, indeg = _kernels.generations(s_idx, d_idx)
    if np.any(indeg > 0):
        raise DataError(f"the pedigree has a loop: {' -> '.join(_cycle(s_idx, d_idx, indeg, ids))} "
                        f"(an individual is its own ancestor)")
    return np.lexsort((np.arange(s_idx.size), gen))


def _cycle(s_idx, d_idx, indeg, ids) -> list:
    """One cycle among the individuals left with parents unresolved, written parent -> child."""
    start = int(np.flatnonzero(indeg > 0)[0])
    path, where, j = [], {}, start
    while j not in where:  # walk up through an unresolved parent until a repeat
        where[j] = len(path)
        path.append(j)
        j = next(p for p in (s_idx[j], d_idx[j]) if p >= 0 and indeg[p] > 0)
    loop = path[where[j]:] + [j]
    return [str(ids[k]) for k in reversed(loop)]


def _ancestors(sire: np.ndarray, dam: np.ndarray, want: np.ndarray) -> np.ndarray:
    """``want`` and all their ancestors (0-based codes), sorted (parents first)."""
    keep = set(int(k) for k in want)
    stack = list(keep)
    while stack:
        k = stack.pop()
        for p in (sire[k], dam[k]):
            if p and int(p) - 1 not in keep:
                keep.add(int(p) - 1)
                stack.append(int(p) - 1)
    return np.array(sorted(keep), dtype=np.int64)
