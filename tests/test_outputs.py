"""The component notebooks are committed with their outputs (printed checks, tables, figures), as fastcore's and nbdev's
own notebooks are, so that a reader on a code host or in JupyterLab sees them without running anything.

To refresh one after changing it, from the repository root: `OMP_NUM_THREADS=1 python tools/execute_nb.py
nbs/08_density.ipynb` (it executes in place, skips the cells nbdev skips, `#| eval: false`, and runs nbdev_clean).
Plain `jupyter nbconvert --execute --inplace` would also run those cells, which hold benchmarks meant for a shell."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"

# notebook -> does it store at least one figure (image/png)?
COMPONENTS = {
    "00_reference": False, "01_splits": False, "02_embedded": True, "03_data": True, "04_weights": True,
    "05_model": False, "06_entropy": True, "07_sampling": True, "08_density": True, "09_memory": True, "10_loss": True,
    "11_figures": True, "12_config": False, "13_step": True, "14_consistency": True, "15_evaluate": False,
    "16_trainer": False, "17_train": False, "18_infer": True, "19_bench": True, "20_ablate": False, "21_gpucheck": False,
}
MAX_BYTES = 400_000  # a notebook's stored outputs stay small: no huge printed tensors, figures at a moderate dpi
SKIPPED = re.compile(r"^#\|\s*(eval:\s*false|notest|slow)\s*$", re.M)  # cells nbdev does not run


def _src(c: dict) -> str: return "".join(c["source"]) if isinstance(c["source"], list) else c["source"]


def output_problems(nb_path: Path, need_figure: bool) -> list:
    "One line for each way the stored outputs of `nb_path` fall short; empty when they are as committed notebooks should be."
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    name, bad = nb_path.name, []
    outs = [(c, o) for c in code for o in c.get("outputs", [])]
    if not outs: bad.append(f"{name}: no cell has an output; execute it in place and commit it with its outputs")
    for c, o in outs:
        if o.get("output_type") == "error":
            bad.append(f"{name}: a stored error ({o.get('ename')}: {o.get('evalue')}) in the cell starting {_src(c)[:60]!r}")
    if need_figure and not any("image/png" in o.get("data", {}) for _, o in outs):
        bad.append(f"{name}: no figure (image/png output) is stored")
    for c in code:
        if SKIPPED.search(_src(c)) and c.get("outputs"):
            bad.append(f"{name}: the cell starting {_src(c)[:60]!r} is not run by nbdev (eval: false) but stores outputs")
        if c.get("execution_count") is not None or any(o.get("execution_count") is not None for o in c.get("outputs", [])):
            bad.append(f"{name}: execution counts are stored; run `nbdev_clean --fname {nb_path}`"); break
    if nb_path.stat().st_size > MAX_BYTES:
        bad.append(f"{name}: {nb_path.stat().st_size / 1e3:.0f} kB, above {MAX_BYTES / 1e3:.0f} kB: smaller figures or fewer printed values")
    return bad


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_component_notebook_has_outputs(name):
    nb = NBS / f"{name}.ipynb"
    assert nb.exists(), f"{nb} is missing: update COMPONENTS in tests/test_outputs.py when a notebook is renamed"
    bad = output_problems(nb, COMPONENTS[name])
    assert not bad, "\n".join(bad)


def _write(tmp_path, cells, name="x.ipynb") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return p


def _code(src, outputs=(), count=None):
    return {"cell_type": "code", "metadata": {}, "source": src, "outputs": list(outputs), "execution_count": count}


def test_checker_catches_what_it_should(tmp_path):
    text = {"output_type": "stream", "name": "stdout", "text": ["1\n"]}
    png = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "AAAA", "text/plain": "<Figure>"}}
    err = {"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []}
    assert output_problems(_write(tmp_path, [_code("print(1)", [text]), _code("plot()", [png])]), True) == []
    assert output_problems(_write(tmp_path, [_code("print(1)", [text])]), False) == []
    assert "no cell has an output" in output_problems(_write(tmp_path, [_code("print(1)")]), False)[0]
    assert "no figure" in output_problems(_write(tmp_path, [_code("print(1)", [text])]), True)[0]
    assert "stored error (ValueError: boom)" in output_problems(_write(tmp_path, [_code("f()", [err])]), False)[0]
    got = output_problems(_write(tmp_path, [_code("print(1)", [text]), _code("#| eval: false\nbench()", [text])]), False)
    assert len(got) == 1 and "not run by nbdev" in got[0]
    assert "execution counts" in output_problems(_write(tmp_path, [_code("print(1)", [text], count=3)]), False)[0]
    big = dict(text, text=["x" * 80 + "\n"] * 6000)
    assert "above 400 kB" in output_problems(_write(tmp_path, [_code("print(1)", [big])]), False)[0]
