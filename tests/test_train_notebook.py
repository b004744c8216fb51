"""The papermill notebook nbs/train.ipynb: its parameters are exactly Config's fields, and a tiny run executes."""
import ast
import dataclasses
import json
import subprocess
import sys

import pytest

from dgcl.trainer import Config


def _parameters(root):
    nb = json.loads((root / "nbs" / "train.ipynb").read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "train.ipynb needs exactly one cell tagged 'parameters'"
    tree = ast.parse("".join(cells[0]["source"]))
    return {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)}


def test_parameters_are_config_fields(root):
    params = _parameters(root)
    fields = {f.name: f.default for f in dataclasses.fields(Config)}
    assert params == fields


def test_papermill_tiny_run(root, tmp_path):
    out = tmp_path / "out.ipynb"
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "papermill", str(root / "nbs" / "train.ipynb"), str(out), "--cwd", str(root),
           "-p", "method", "dgcl", "-p", "epochs", "2", "-p", "sup_only_epochs", "1", "-p", "steps_per_epoch", "4",
           "-p", "batch_size", "2", "-p", "crop", "48", "-p", "memory_size", "30", "-p", "memory_per_update", "15",
           "-p", "head_dim", "32", "-p", "proj_dim", "32", "-p", "num_workers", "0", "-p", "run_dir", str(run_dir),
           "-p", "tau", "0.5", "-k", "python3"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["tau"] == 0.5 and m["method"] == "dgcl" and m["steps"] == 8 and 0 <= m["miou"] <= 100
    assert set(m["per_class_iou"]) and m["seconds"] > 0
    for f in ("log.csv", "checkpoint.pt", "loss_curves.png", "predictions.png", "config.json"):
        assert (run_dir / f).exists(), f
