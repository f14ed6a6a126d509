"""Descriptions of the equations' blocks (m.equations) and how the factor stores each unknown
(SparseLDL.storage)."""
import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

import sparsereml as sr
from sparsereml.design import build_design
from sparsereml.design.random import ColumnBlock
from sparsereml.equations import BlockDescription, EquationsDescription
from sparsereml.formula import model_spec
from sparsereml.linalg import SparseLDL
from sparsereml.linalg.factor import STORAGE

from .conftest import refdata
from .structures.met_data import met_data

ABSORBED, LEAF, DENSE, SPARSE = (STORAGE.index(s) for s in ("absorbed", "star leaf", "dense block", "sparse"))


@pytest.fixture(scope="module")
def data():
    return met_data()[0]


@pytest.fixture(scope="module")
def m2(data, backend):
    return sr.fit("y ~ 0 + Trial", "~ Trial:Block + Mother + Trial:Mother", data=data, backend=backend)


def _lower(A):
    low = sp.tril(sp.csc_matrix(A)).tocsc()
    low.sort_indices()
    return low


def _star_matrix(n_leaves=8, width=5, n_dense=60, seed=0):
    """Leaves of ``width`` unknowns, each coupled to a few of the last ``n_dense`` unknowns, which
    are all coupled with each other (a star whose dense block is the last n_dense unknowns)."""
    rng = np.random.default_rng(seed)
    n0 = n_leaves * width
    n = n0 + n_dense
    A = np.zeros((n, n))
    A[n0:, n0:] = 0.1
    for k in range(n_leaves):
        leaf = np.arange(k * width, (k + 1) * width)
        A[np.ix_(leaf, leaf)] = 0.2
        shared = n0 + rng.choice(n_dense, 6, replace=False)
        A[np.ix_(leaf, shared)] = A[np.ix_(shared, leaf)] = 0.3
    A += np.diag(np.abs(A).sum(axis=1) + 1.0)
    return A


def test_random_blocks_are_typed_and_tile_the_term(data):
    d = build_design(model_spec("y ~ 0 + Trial", "~ at(Trial):Block + Mother"), data)
    at, mother = d.random
    assert all(isinstance(b, ColumnBlock) for b in at.blocks)
    assert [b.start for b in at.blocks] == [0] + [b.stop for b in at.blocks[:-1]]
    assert at.blocks[-1].stop == at.size
    assert mother.blocks == [ColumnBlock("Mother", 0, mother.size)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        mother.blocks[0].size = 3


def test_storage_finds_the_star_leaves_and_its_dense_block():
    """The unknowns shuffled (so that the factor's order is not theirs): storage() still names
    the shared unknowns as the dense block and the rest as leaves, in the matrix's own order."""
    A = _star_matrix()
    shuffle = np.random.default_rng(5).permutation(A.shape[0])
    A = A[np.ix_(shuffle, shuffle)]
    shared = shuffle >= 40
    f = SparseLDL(_lower(A), star=True, absorb=False, groups=shared.astype(np.int64))
    with pytest.raises(RuntimeError, match="first factorisation"):
        f.storage()
    f.factorize(_lower(A).data)
    code = f.storage()
    assert not np.array_equal(f.ldl.perm, np.arange(A.shape[0]))
    np.testing.assert_array_equal(code == DENSE, shared)
    np.testing.assert_array_equal(code == LEAF, ~shared)
    assert f.dense_block_size == 60


def test_storage_of_absorbed_unknowns_is_an_independent_set():
    """Cells (unknowns tied to a few others only, none to each other) are absorbed; what the
    factor holds after them is a star or the backend's."""
    rng = np.random.default_rng(1)
    n_cells, n_rest = 300, 40
    n = n_cells + n_rest
    A = np.zeros((n, n))
    A[n_cells:, n_cells:] = rng.uniform(0, 0.1, (n_rest, n_rest)) * (rng.uniform(size=(n_rest, n_rest)) < 0.3)
    for j in range(n_cells):
        A[j, n_cells + rng.choice(n_rest, 3, replace=False)] = 0.5
    A = A + A.T
    A += np.diag(np.abs(A).sum(axis=1) + 1.0)
    low = _lower(A)
    f = SparseLDL(low, absorb=True, star=False)
    f.factorize(low.data)
    code = f.storage()
    absorbed = np.flatnonzero(code == ABSORBED)
    assert absorbed.size == f.n_absorbed >= 250
    assert not (A[np.ix_(absorbed, absorbed)] - np.diag(np.diag(A)[absorbed])).any()  # none touch
    assert not (code == LEAF).any()  # no star asked for
    assert (code == DENSE).sum() == f.dense_block_size


def test_equations_describe_every_unknown_once(m2):
    eq = m2.equations
    assert isinstance(eq, EquationsDescription) and all(isinstance(b, BlockDescription) for b in eq.blocks)
    assert [b.term for b in eq.blocks] == ["fixed effects", "Trial:Block", "Mother", "Trial:Mother"]
    starts = [b.start for b in eq.blocks]
    assert starts == [0] + list(np.cumsum([b.columns for b in eq.blocks[:-1]]))
    assert sum(b.columns for b in eq.blocks) == eq.unknowns == m2.solution.size
    for b in eq.blocks:
        assert b.absorbed + b.star_leaf + b.dense_block + b.sparse == b.columns
    assert sum(b.absorbed for b in eq.blocks) == eq.absorbed
    assert sum(b.dense_block for b in eq.blocks) == eq.dense_block
    assert eq.blocks[0].structure == "fixed" and eq.blocks[0].columns == m2.rank
    assert {b.structure for b in eq.blocks[1:]} == {"identity"}
    assert eq.blocks[2].levels == len(m2.blups("Mother"))
    assert eq.largest_supernode >= eq.dense_block
    assert eq.factorisation in ("cholmod", "qdldl") or eq.factorisation.startswith("leaves")


def test_equations_print_as_a_table_and_convert(m2):
    eq = m2.equations
    text = str(eq)
    assert repr(eq) == text
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("term"))
    rows = lines[head + 1:]
    assert len(rows) == len(eq.blocks)
    col = lines[head].index("columns") + len("columns")  # numbers are right-aligned under the header
    for row, b in zip(rows, eq.blocks):
        assert row.startswith(b.term) and row[:col].endswith(f"{b.columns:,}") and b.storage in row
    assert f"{eq.unknowns:,} unknowns" in lines[0]
    df = eq.to_frame()
    assert list(df["term"]) == [b.term for b in eq.blocks]
    assert list(df.columns[:5]) == ["term", "levels", "columns", "structure", "storage"]
    assert df["columns"].sum() == eq.unknowns
    d = eq.to_dict()
    assert d["unknowns"] == eq.unknowns and d["ordering"] == eq.ordering and "blocks" not in d
    assert f"{eq.unknowns:,} unknowns" in m2.summary()


def test_storage_names_one_way_or_the_counts():
    one = BlockDescription("Mother", 10, 10, "identity", 0, absorbed=10)
    assert one.storage == "absorbed"
    mixed = BlockDescription("Mother", 1200, 1200, "identity", 0, absorbed=5, dense_block=1195)
    assert mixed.storage == "dense block 1,195, absorbed 5"


def test_structures_are_named_as_written(data, backend):
    m = sr.fit("y ~ 0 + Trial", "~ at(Trial):Block + fa(Trial, 1):Mother", data=data, backend=backend)
    eq = m.equations
    at = [b for b in eq.blocks if b.term.startswith("at(Trial")]
    assert len(at) == data["Trial"].nunique() and {b.structure for b in at} == {"identity"}
    fa = eq.blocks[-1]
    assert fa.term == "fa(Trial, 1):Mother" and fa.structure == "fa(Trial, 1)"
    assert fa.columns == fa.levels * data["Trial"].nunique() and fa.levels == data["Mother"].nunique()


def test_related_terms_name_their_matrix(backend):
    ped = sr.Pedigree(refdata("wam_gryphonped.csv"), id="id", sire="father", dam="mother")
    df = refdata("wam_gryphon.csv")
    df["animal"] = df["animal"].astype(str)
    m = sr.fit("bwt ~ 1", "~ vm(animal, ped)", data=df, matrices={"ped": ped}, backend=backend)
    b = m.equations.blocks[-1]
    assert b.structure == "vm(animal, ped)" and b.columns == len(ped)  # ancestors without records too


def test_a_loaded_model_describes_the_same_equations(m2, tmp_path):
    path = tmp_path / "m2.pkl"
    m2.save(path)
    assert sr.load(path).equations == m2.equations
