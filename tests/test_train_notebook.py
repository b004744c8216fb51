"""The papermill notebook nbs/train.ipynb: its parameters are Config fields with Config's defaults, every other field
is reachable through `overrides` (or by name), unknown names are refused, and a tiny run executes."""
import ast
import json
import subprocess
import sys

import pytest

from dgcl.config import config_fields
from dgcl.trainer import Config


def _cells(root):
    return json.loads((root / "nbs" / "train.ipynb").read_text())["cells"]


def _parameters(root):
    cells = [c for c in _cells(root) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "train.ipynb needs exactly one cell tagged 'parameters'"
    tree = ast.parse("".join(cells[0]["source"]))
    return {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)}


def _config_from_notebook(root, injected: dict) -> Config:
    "Run the notebook's own cells up to the Config — setup, parameters, papermill's injected assignments, `cfg = …`."
    cells = [c for c in _cells(root) if c["cell_type"] == "code"]
    i = next(k for k, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    cfg_src = "".join(cells[i + 1]["source"])
    cfg_src = cfg_src[:cfg_src.index("\n", cfg_src.index("notebook_config("))]  # up to `cfg = …`, no Trainer
    ns = {}
    for src in ("".join(cells[i - 1]["source"]), "".join(cells[i]["source"]),
                "\n".join(f"{k} = {v!r}" for k, v in injected.items()), cfg_src):  # as papermill injects them
        exec(compile(src, "train.ipynb", "exec"), ns)
    return ns["cfg"]


def test_parameters_are_config_fields(root):
    params = _parameters(root)
    fields = {k: f.default for k, (_, f) in config_fields().items()}
    assert params.pop("overrides") == {}, "the parameters cell needs `overrides = {}`"
    assert set(params) <= set(fields), set(params) - set(fields)
    assert {k: fields[k] for k in params} == params  # the notebook's defaults are Config's
    assert len(params) <= 16, "the parameters cell holds the common fields only"


def test_every_config_field_reachable_from_papermill(root):
    common = set(_parameters(root)) - {"overrides"}
    assert _config_from_notebook(root, {}) == Config()
    for name in config_fields():  # a group's fields by their own names
        value = ("set", name)  # not any field's default
        injected = {name: value} if name in common else {"overrides": {name: value}}
        assert _config_from_notebook(root, injected).flat()[name] == value, f"{name} is not reachable"
        if name not in common:  # `-y "overrides: …"` as YAML text, and `-p name value` by name
            assert _config_from_notebook(root, {"overrides": f"{{{name}: 7}}"}).flat()[name] == 7
            assert _config_from_notebook(root, {name: value}).flat()[name] == value


@pytest.mark.parametrize("injected, message", [
    ({"overrides": {"tua": 0.1}}, "overrides: 'tua' is not a field of dgcl.trainer.Config (did you mean 'tau'?)"),
    ({"memroy_size": 30}, "parameter 'memroy_size' is not a field of dgcl.trainer.Config (did you mean 'memory_size'?)"),
    ({"overrides": {"tau": 0.1}}, "'tau' is a parameter of the notebook too"),
    ({"overrides": "[crop, 48]"}, "is not a mapping"),
])
def test_unknown_names_are_refused(root, injected, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        _config_from_notebook(root, injected)


def test_papermill_tiny_run(root, tmp_path):
    out = tmp_path / "out.ipynb"
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "papermill", str(root / "nbs" / "train.ipynb"), str(out), "--cwd", str(root),
           "-p", "method", "dgcl", "-p", "epochs", "2", "-p", "run_dir", str(run_dir), "-p", "tau", "0.5",
           "-y", "overrides: {sup_only_epochs: 1, steps_per_epoch: 4, batch_size: 2, crop: 48, memory_size: 30, "
                 "memory_per_update: 15, head_dim: 32}",
           "-p", "proj_dim", "32", "-p", "num_workers", "0", "-k", "python3"]  # by name too, as dgcl-ablate passes them
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["tau"] == 0.5 and m["method"] == "dgcl" and m["steps"] == 8 and 0 <= m["miou"] <= 100
    assert m["crop"] == 48 and m["head_dim"] == 32 and m["proj_dim"] == 32
    assert set(m["per_class_iou"]) and m["seconds"] > 0
    for f in ("log.csv", "checkpoint.pt", "loss_curves.png", "predictions.png", "config.json"):
        assert (run_dir / f).exists(), f


def test_papermill_refuses_an_unknown_field(root, tmp_path):
    cmd = [sys.executable, "-m", "papermill", str(root / "nbs" / "train.ipynb"), str(tmp_path / "out.ipynb"),
           "--cwd", str(root), "-p", "overrides", "{tua: 0.1}", "-p", "run_dir", str(tmp_path / "run"), "-k", "python3"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "'tua' is not a field of dgcl.trainer.Config (did you mean 'tau'?)" in r.stderr + r.stdout
    assert not (tmp_path / "run").exists()  # nothing written
