"""Build the documentation site into `_site/`: `python tools/build_docs.py` (needs `pip install -e ".[docs]"`).

`nbdev_docs` needs Quarto, which cannot be installed here; this builds the site with mkdocs-material and
mkdocs-jupyter instead, from `mkdocs.yml` plus pages staged in a temporary folder:
- `index.md`: README.md as `nbs/index.ipynb` generates it (tools/readme.py), with the local images it links;
- every numbered notebook `nbs/NN_*.ipynb`, rendered with its stored outputs (nothing is executed), then the
  papermill notebook, the results notebook and the recorded main run (`runs/recorded/main.ipynb`);
- `api/<module>.md` per module exported from a notebook (`#| default_exp`): every name in its `__all__`, through
  nbdev's `show_doc` (signature with the docments of each argument, docstring), constants with their value.

Equations (`$...$` and `$$...$$`) are typeset by MathJax 3, served from the site itself (`mathjax/`): its browser build
is copied from the PyPI package django-static-mathjax (in the docs extra), so pages need nothing from the internet.
Markdown pages mark their math with pymdownx.arithmatex; in notebook pages MathJax reads the TeX that nbconvert leaves
in the rendered Markdown cells, and nbconvert's own MathJax 2 loader (an empty URL under mkdocs-jupyter) is removed.
Code wraps at the column's edge (nothing is cut off), and notebook cells show no `In [ ]:` prompts (mkdocs.yml).
"""
import argparse
import importlib
import importlib.util
import inspect
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
import readme  # noqa: E402

RUN_PAGES = [  # (title, source, page in the site): notebooks that are not numbered components
    ("Train: the papermill notebook", NBS / "train.ipynb", "results/train.ipynb"),
    ("Results tables", NBS / "results.ipynb", "results/results.ipynb"),
    ("The recorded main run (train.ipynb, executed)", ROOT / "runs" / "recorded" / "main.ipynb", "results/recorded_main.ipynb"),
]


# The parts of MathJax's es5/ build that the site serves: TeX input to CommonHTML output (one file), the fonts, the TeX
# extensions it loads on demand (\boldsymbol, \color, ...), the context menu and its accessibility tools.
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "ui", "a11y", "sre")
MATHJAX_CONFIG = r"""// MathJax 3, served from this site (copied at build time from the PyPI package django-static-mathjax).
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  // Only math: what pymdownx.arithmatex marks in Markdown pages, the rendered Markdown of notebook cells and outputs.
  startup: {elements: [".arithmatex", ".jp-RenderedMarkdown"]},
};
"""
EXTRA_CSS = """/* Room for 120-column code, and more on notebook pages. */
.md-grid { max-width: 1400px; }
body:has(.jupyter-wrapper) .md-grid { max-width: 1700px; }
/* Code wraps at the column's edge: a long line is never cut off, nor hidden behind a sideways scroll. */
.jupyter-wrapper pre, .md-typeset pre > code { white-space: pre-wrap; overflow-wrap: anywhere; }
/* A display equation wider than the column scrolls, with its scrollbar. */
mjx-container[display="true"] { overflow-x: auto; overflow-y: hidden; max-width: 100%; }
"""
# nbconvert's MathJax 2 loader and configuration in every notebook page (mkdocs-jupyter leaves its URL empty).
_NB_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)


def mathjax_dir() -> Path:
    "MathJax 3's browser build (`es5/`), as the PyPI package django-static-mathjax (top-level module `mathjax`) ships it."
    spec = importlib.util.find_spec("mathjax")
    locs = list(spec.submodule_search_locations or []) if spec else []
    es5 = Path(locs[0]) / "static" / "mathjax" / "es5" if locs else None
    if es5 is None or not (es5 / "tex-chtml.js").is_file():
        raise ImportError("MathJax's browser build is missing (django-static-mathjax)", name="django-static-mathjax")
    return es5


def copy_mathjax(dst: Path) -> None:
    "The parts of MathJax that the site uses, into `dst`."
    es5 = mathjax_dir()
    for part in MATHJAX_PARTS:
        if (es5 / part).is_dir(): shutil.copytree(es5 / part, dst / part)
        else: (dst / part).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(es5 / part, dst / part)
    (dst / "config.js").write_text(MATHJAX_CONFIG, encoding="utf-8")


def numbered_notebooks(nbs: Path = NBS) -> list[Path]:
    "The component notebooks, in their numbered order."
    return sorted(p for p in nbs.glob("[0-9][0-9]_*.ipynb"))


def _cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text(encoding="utf-8"))["cells"]


def _src(c: dict) -> str:
    return "".join(c["source"]) if isinstance(c["source"], list) else c["source"]


def exported_modules(nbs: Path = NBS) -> list[tuple[str, Path]]:
    "(module, notebook) for every notebook with a `#| default_exp`, in notebook order."
    out = []
    for nb in numbered_notebooks(nbs):
        for c in _cells(nb):
            m = re.search(r"^#\|\s*default_exp\s+(\S+)", _src(c), re.M) if c["cell_type"] == "code" else None
            if m: out.append((m.group(1), nb)); break
    return out


def _summary(nb: Path) -> str:
    "The notebook's `> summary` line, if its first cell has one."
    m = re.search(r"^> (.+)$", _src(_cells(nb)[0]), re.M)
    return m.group(1).strip() if m else ""


def _doc(name: str, obj) -> str:
    "Markdown for one public name: nbdev's show_doc for functions and classes, the value for constants."
    if inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj):
        from nbdev.showdoc import show_doc
        md = show_doc(obj, name=name)._repr_markdown_()
        md = re.sub(r"^\[source\]\(.*$\n?", "", md, flags=re.M)  # the source link points at git_url, not served here
        return md.strip()
    r = repr(obj).replace(str(ROOT) + "/", "")
    val = f"{name} = {r}" if len(r) <= 300 else f"{name}: {type(obj).__name__}  # {len(obj) if hasattr(obj, '__len__') else ''} entries"
    return f"---\n\n### {name}\n\n```python\n{val}\n```"


def api_page(mod_name: str, nb: Path) -> str:
    mod = importlib.import_module(f"dgcl.{mod_name}")
    names = list(getattr(mod, "__all__", []))
    head = [f"# dgcl.{mod_name}", "", _summary(nb), "",
            f"Written in the notebook [`{nb.name}`](../{nb.name}); {len(names)} public names.", ""]
    return "\n".join(head) + "\n" + "\n\n".join(_doc(n, getattr(mod, n)) for n in names) + "\n"


def gfm_lists(md: str) -> str:
    """GitHub's lists in Python-Markdown's dialect: a blank line before a list, nested items indented 4, not 2.

    Fenced blocks outside lists are left alone; inside a list item their indentation is doubled with the rest."""
    out, fence, in_list, prev = [], False, False, ""
    for line in md.split("\n"):
        s = line.lstrip(" ")
        ind = len(line) - len(s)
        if not in_list and ind == 0 and s.startswith("```"): fence = not fence
        if fence or (not in_list and ind == 0 and s.startswith("```")):
            out.append(line); prev = line; continue
        item = re.match(r"([-*+]|\d+\.)\s", s)
        if item and ind == 0:
            if not in_list and prev.strip(): out.append("")
            in_list = True
        elif in_list and s and ind == 0 and not prev.strip(): in_list = False
        out.append(" " * (2 * ind) + s if in_list and ind else line)
        prev = line
    return "\n".join(out)


def _no_source_link(out: dict) -> dict:
    "A stored show_doc output without its `[source](...){...}` line (Quarto syntax, and git_url is not served)."
    md = out.get("data", {}).get("text/markdown")
    if md is None: return out
    md = re.sub(r"^\[source\]\(.*$\n?", "", md if isinstance(md, str) else "".join(md), flags=re.M)
    return dict(out, data=dict(out["data"], **{"text/markdown": md}))


def _stage_notebook(src: Path, dst: Path, title: str | None = None) -> None:
    """Copy a notebook as nbdev's docs show it: without raw front matter (`skip_exec: true`), without `#| hide` and
    `#| default_exp` cells, without the `#|` directive lines and show_doc's source links; `title` replaces its first `# heading`
    (mkdocs-jupyter names the page by it). Outputs are kept as stored."""
    nb = json.loads(src.read_text(encoding="utf-8"))
    cells = []
    for c in nb["cells"]:
        text = _src(c)
        if c["cell_type"] == "raw" and text.lstrip().startswith("---"): continue
        if c["cell_type"] == "code":
            if re.search(r"^#\|\s*(hide|include:\s*false)\s*$", text, re.M) or re.fullmatch(r"\s*#\|\s*default_exp\s+\S+\s*", text): continue
            c = dict(c, source=re.sub(r"^#\|.*\n?", "", text, flags=re.M))
            if not c["source"].strip(): continue
            c["outputs"] = [_no_source_link(o) for o in c.get("outputs", [])]
        cells.append(c)
    if title:
        md = next(c for c in cells if c["cell_type"] == "markdown")
        md["source"] = re.sub(r"^# .*$", f"# {title}", _src(md), count=1, flags=re.M)
    nb["cells"] = cells
    dst.write_text(json.dumps(nb), encoding="utf-8")


def _copy_linked(md: str, docs: Path) -> None:
    "Copy the local files that the home page links (images under runs/, say) beside it."
    for ref in re.findall(r'src="([^"]+)"|\]\(([^)\s]+)\)', md):
        ref = ref[0] or ref[1]
        if re.match(r"^[a-z]+:|^#|^/", ref): continue
        src = ROOT / ref
        if src.is_file():
            (docs / ref).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, docs / ref)


def stage(docs: Path, extra_notebooks: list[Path] = ()) -> list:
    "Write every page into `docs`; return mkdocs' nav."
    home = readme.render(NBS / "index.ipynb")
    pages = {f"nbs/{nb.name}": nb.name for nb in numbered_notebooks()}
    pages.update({str(src.relative_to(ROOT)): dst for _, src, dst in RUN_PAGES})
    home = re.sub(r"\]\(([^)\s#]+)", lambda m: "](" + pages.get(m.group(1), m.group(1)), home)  # links to notebooks: their pages
    (docs / "index.md").write_text(gfm_lists(home), encoding="utf-8")
    (docs / "extra.css").write_text(EXTRA_CSS, encoding="utf-8")
    _copy_linked(home, docs)
    nbs = list(numbered_notebooks()) + [Path(p) for p in extra_notebooks]
    for nb in nbs: _stage_notebook(nb, docs / nb.name)
    results = []
    for title, src, dst in RUN_PAGES:
        if not src.exists(): continue
        (docs / dst).parent.mkdir(parents=True, exist_ok=True)
        _stage_notebook(src, docs / dst, title)
        results.append({title: dst})
    (docs / "api").mkdir(exist_ok=True)
    api = []
    for mod_name, nb in exported_modules():
        (docs / "api" / f"{mod_name}.md").write_text(api_page(mod_name, nb), encoding="utf-8")
        api.append({f"dgcl.{mod_name}": f"api/{mod_name}.md"})
    return [{"Home": "index.md"}, {"Notebooks": [nb.name for nb in nbs]}, {"Results": results}, {"API": api}]


def build(site: Path = ROOT / "_site", extra_notebooks: list[Path] = (), strict: bool = True) -> Path:
    "Build the site into `site` (replaced); `extra_notebooks` are added to the notebook pages."
    from mkdocs.commands.build import build as mk_build
    from mkdocs.config import load_config
    site = Path(site).resolve()
    with tempfile.TemporaryDirectory(prefix="dgcl-docs-") as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        nav = stage(docs, extra_notebooks)
        copy_mathjax(docs / "mathjax")
        cfg = load_config(str(ROOT / "mkdocs.yml"), docs_dir=str(docs), site_dir=str(site), nav=nav, strict=strict)
        mk_build(cfg)
    for page in site.rglob("*.html"):  # notebook pages: MathJax 3 (mkdocs.yml's extra_javascript) typesets them
        text = page.read_text(encoding="utf-8")
        if "<!-- Load mathjax -->" in text: page.write_text(_NB_MATHJAX.sub("", text, count=1), encoding="utf-8")
    return site


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--site", default=str(ROOT / "_site"), help="output folder (replaced)")
    a = p.parse_args(argv)
    try:
        import mkdocs, mkdocs_jupyter, material  # noqa: F401
        mathjax_dir()
    except ImportError as e:
        print(f"the docs extra is not installed ({e.name} is missing): pip install -e \".[docs]\"", file=sys.stderr)
        return 2
    t0 = time.time()
    site = build(Path(a.site))
    print(f"site written to {site} in {time.time() - t0:.1f} s: open {site / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
