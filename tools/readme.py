"""README.md is generated from nbs/index.ipynb: `python tools/readme.py` writes it, `--check` only compares.

(`--from-readme` goes the other way, for a README.md edited by hand or merged: it rewrites nbs/index.ipynb.)

`nbdev_readme` (nbdev 2.4.14) renders `readme_nb` through Quarto, which cannot be installed here, so this renders the
notebook itself, deterministically and with the standard library only:
- a markdown cell is copied verbatim; cells are separated by one blank line; the file ends with one newline;
- a raw cell (front matter such as `skip_exec: true`) is left out;
- a code cell is shown as a ```python block, unless it says `#| hide` (left out) or `#| echo: false` (source left
  out); its stored outputs follow: `text/markdown` verbatim (a table computed from `runs/`, say), text in a plain
  ``` block. An image output is refused: save the figure under `runs/` and link it from a markdown cell.
"""
import argparse
import difflib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "nbs" / "index.ipynb"
README = ROOT / "README.md"


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _directives(src: str) -> dict:
    "The `#| key: value` lines of a code cell (`#| hide` gives {'hide': True})."
    out = {}
    for line in src.splitlines():
        m = re.match(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$", line)
        if m: out[m.group(1)] = m.group(2) or True
    return out


def _code(cell: dict, i: int) -> list[str]:
    src = _src(cell)
    d = _directives(src)
    if d.get("hide") is True or str(d.get("include", "")).lower() == "false": return []
    parts = []
    body = "\n".join(l for l in src.splitlines() if not re.match(r"^\s*#\|", l)).strip("\n")
    if str(d.get("echo", "")).lower() != "false" and body: parts.append(f"```python\n{body}\n```")
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream": text = _src({"source": o["text"]})
        else:
            data = o.get("data", {})
            if any(k.startswith("image/") for k in data):
                raise ValueError(f"index.ipynb cell {i}: an image output cannot go into README.md; save it under runs/ and link it")
            if "text/markdown" in data:
                parts.append(_src({"source": data["text/markdown"]}).strip("\n")); continue
            text = _src({"source": data.get("text/plain", "")})
        if text.strip(): parts.append(f"```\n{text.strip(chr(10))}\n```")
    return parts


def render(nb: Path = NB) -> str:
    "The README text that `nb` generates."
    return render_cells(json.loads(Path(nb).read_text(encoding="utf-8"))["cells"])


def render_cells(cells: list[dict]) -> str:
    parts = []
    for i, c in enumerate(cells):
        if c["cell_type"] == "markdown": parts.append(_src(c).rstrip("\n"))
        elif c["cell_type"] == "code": parts.extend(_code(c, i))
    return "\n\n".join(p for p in parts if p) + "\n"


def to_notebook(text: str) -> dict:
    """A markdown-only index notebook that renders back to `text` exactly: one cell per `##`/`###` section (and per
    `**Table ...` paragraph), for moving hand edits of README.md (a merge, say) back into nbs/index.ipynb."""
    chunks, cur, fence = [], [], False
    for line in text.splitlines(True):
        if line.lstrip().startswith("```"): fence = not fence
        if not fence and cur and (line.startswith(("## ", "### ", "**Table "))): chunks.append("".join(cur)); cur = []
        cur.append(line)
    chunks.append("".join(cur))
    chunks = [c for c in chunks if c.strip()]
    cells = [{"cell_type": "markdown", "id": f"readme-{i:02d}", "metadata": {}, "source": c.rstrip("\n").splitlines(True)}
             for i, c in enumerate(chunks)]
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    return nb


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if README.md is not what nbs/index.ipynb generates")
    p.add_argument("--from-readme", action="store_true",
                   help="the other way: rewrite nbs/index.ipynb (markdown cells only) from README.md, then run nbdev_clean")
    a = p.parse_args(argv)
    if a.from_readme:
        text = README.read_text(encoding="utf-8")
        if any(c["cell_type"] == "code" for c in json.loads(NB.read_text(encoding="utf-8"))["cells"]):
            print(f"{NB} has code cells, which --from-readme would replace by their output: move the edit by hand")
            return 2
        nb = to_notebook(text)
        if render_cells(nb["cells"]) != text:
            print("README.md does not split into sections that render back to it (blank lines around headings?)")
            return 2
        NB.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return 0
    text = render()
    if a.check:
        have = README.read_text(encoding="utf-8") if README.exists() else ""
        if have == text: return 0
        diff = difflib.unified_diff(have.splitlines(True), text.splitlines(True), "README.md", "from nbs/index.ipynb", n=1)
        sys.stdout.writelines(list(diff)[:60])
        print("README.md differs from nbs/index.ipynb: edit the notebook, then run `python tools/readme.py`")
        return 1
    README.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
