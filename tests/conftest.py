"""Shared test setup: point DSM_DATA_DIR at ../shared/data when the caller did not set it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_SHARED = REPO.parent / "shared" / "data"
if not os.environ.get("DSM_DATA_DIR") and _SHARED.exists():
    os.environ["DSM_DATA_DIR"] = str(_SHARED)

# Tests are CPU-only and must not fight each other for the 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data dir the suite reads (skips nothing: a missing dir is a failure, not a skip)."""
    from dsm_utils.data import data_dir

    d = data_dir()
    assert d.exists(), f"DSM_DATA_DIR={d} does not exist; CI sets it to ../shared/data"
    return d
