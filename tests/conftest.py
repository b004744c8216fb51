import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DGCL_CACHE", str(ROOT / ".cache"))  # the embedded dataset is built once per checkout


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
