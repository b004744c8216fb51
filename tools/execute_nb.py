"""Execute notebooks in place and clean them, so they are committed with their outputs:
`OMP_NUM_THREADS=1 python tools/execute_nb.py nbs/08_density.ipynb [more.ipynb ...]`.

Like `jupyter nbconvert --to notebook --execute --inplace`, but cells that nbdev does not run (`#| eval: false`, and the
`tst_flags` of settings.ini: `#| notest`, `#| slow`) are not run here either and keep no output: they hold long
benchmarks meant for a shell. The kernel starts in the notebook's folder, as nbdev runs it. Then the environment's
"IProgress not found" warning of tqdm (no ipywidgets installed) is dropped, and `nbdev_clean` strips the metadata and
execution counts; outputs stay."""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

SKIP = re.compile(r"^#\|\s*(eval:\s*false|notest|slow)\s*$", re.M)


def execute(path: Path, timeout: int = 900) -> None:
    "Run every cell of `path` that nbdev runs, store the outputs in place."
    import nbformat
    from nbclient import NotebookClient

    class NbdevClient(NotebookClient):
        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            if cell.cell_type == "code" and SKIP.search(cell.source):
                cell.outputs, cell.execution_count = [], None
                return cell
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    nb = nbformat.read(path, as_version=4)
    NbdevClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)


def drop_noise(path: Path) -> None:
    "Remove tqdm's 'IProgress not found' warning (an artefact of a Jupyter without ipywidgets) from the stored outputs."
    nb = json.loads(path.read_text(encoding="utf-8"))
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"] = [o for o in c["outputs"] if not (o["output_type"] == "stream" and o.get("name") == "stderr"
                            and "TqdmWarning: IProgress not found" in "".join(o["text"]))]
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="+", help="notebooks to execute in place")
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    a = p.parse_args(argv)
    paths = [Path(n) for n in a.notebooks]
    missing = [str(n) for n in paths if not n.is_file()]
    if missing:
        print(f"execute_nb: error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    for path in paths:
        t0 = time.time()
        execute(path, a.timeout)
        drop_noise(path)
        subprocess.run(["nbdev_clean", "--fname", str(path)], check=True)
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        pngs = sum("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
        print(f"{path}: {sum(bool(c['outputs']) for c in code)}/{len(code)} code cells with outputs, {pngs} figures, "
              f"{path.stat().st_size / 1e3:.0f} kB, {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
