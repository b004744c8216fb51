"""Every numbered notebook in nbs/ runs top to bottom: its asserts are the unit tests (nbdev_test, one case each)."""
import json
import os
from pathlib import Path

import pytest
from nbdev.config import get_config
import nbdev.test as nbdev_test

NBS = Path(__file__).resolve().parents[1] / "nbs"


def _skip_exec(nb: Path) -> bool:
    cells = json.loads(nb.read_text())["cells"]
    return bool(cells) and cells[0]["cell_type"] == "raw" and "skip_exec: true" in "".join(cells[0]["source"])


NOTEBOOKS = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_") and not _skip_exec(p))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb, monkeypatch):
    monkeypatch.chdir(NBS)
    passed, _ = nbdev_test.test_nb(nb, skip_flags=get_config().tst_flags.split(), basepath=get_config().config_path)
    assert passed, f"{nb.name} failed (its traceback is printed above)"


def test_every_component_has_a_notebook():
    names = {p.stem.split("_", 1)[1] for p in NOTEBOOKS if p.stem[:2].isdigit()}
    assert {"splits", "entropy", "density", "memory", "sampling", "loss", "trainer", "data", "model"} <= names
