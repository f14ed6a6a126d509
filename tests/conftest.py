"""Shared test fixtures: reference numbers, the factorisation backend under test, data sets."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

HERE = Path(__file__).parent
REFERENCE = HERE / "reference"
REFDATA = HERE / "refdata"


def reference(name: str) -> dict:
    """Numbers produced with R by the script of the same name in tests/reference/."""
    return json.loads((REFERENCE / name).read_text())


def refdata(name: str) -> pd.DataFrame:
    """A published data set copied from the project's reference collection (see tests/refdata/README.md)."""
    return pd.read_csv(REFDATA / name)


@pytest.fixture(scope="session")
def backend() -> str | None:
    """The backend every fit in the suite uses: SPARSEREML_BACKEND, else the default."""
    return os.environ.get("SPARSEREML_BACKEND") or None
