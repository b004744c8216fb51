"""README.md is what nbs/index.ipynb generates; the documentation site builds, and headless Chromium shows every page.

The site tests need the docs extra (`pip install -e ".[docs]"`) and Debian's `chromium`; without them they are
skipped with the reason, unless DGCL_REQUIRE_DOCS=1 (set by .ci/run), which turns the skip into a failure."""
import base64
import html
import importlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import readme  # noqa: E402


def _nb(tmp_path, cells) -> Path:
    p = tmp_path / "index.ipynb"
    p.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return p


def _md(s): return {"cell_type": "markdown", "metadata": {}, "source": s}


def _code(s, outputs=()): return {"cell_type": "code", "metadata": {}, "source": s, "outputs": list(outputs), "execution_count": None}


# --- README ---------------------------------------------------------------------------------------------------------

def test_readme_is_what_index_generates():
    want = readme.render()
    have = (ROOT / "README.md").read_text(encoding="utf-8")
    assert have == want, "README.md differs from nbs/index.ipynb: edit the notebook, then run `python tools/readme.py`"


def test_readme_second_command_is_pytest():
    block = re.search(r"```bash\n(.*?)```", readme.render(), re.S).group(1)
    commands = [l for l in block.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    assert len(commands) == 2 and commands[1].split("&&")[-1].strip() == "pytest", commands


def test_render_rules(tmp_path):
    "Markdown verbatim, raw cells dropped, code fenced, `#| hide` / `#| echo: false` honoured, outputs after the code."
    cells = [
        {"cell_type": "raw", "metadata": {}, "source": "---\nskip_exec: true\n---"},
        _md(["# t\n", "\n", "> s\n"]),
        _code("#| hide\nimport os"),
        _code("#| echo: false\nshow()", [{"output_type": "display_data", "metadata": {},
                                           "data": {"text/markdown": "| a |\n|---|\n| 1 |\n", "text/plain": "x"}}]),
        _code("print(1)", [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}]),
        _md("tail\n\n"),
    ]
    assert readme.render(_nb(tmp_path, cells)) == "# t\n\n> s\n\n| a |\n|---|\n| 1 |\n\n```python\nprint(1)\n```\n\n```\n1\n```\n\ntail\n"
    png = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "AAAA", "text/plain": "<Figure>"}}
    with pytest.raises(ValueError, match="image output"): readme.render(_nb(tmp_path, [_code("plot()", [png])]))


def test_readme_check_fails_on_a_hand_edit(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "README.md"
    fake.write_text(readme.render() + "hand edit\n", encoding="utf-8")
    monkeypatch.setattr(readme, "README", fake)
    assert readme.main(["--check"]) == 1
    assert "README.md differs" in capsys.readouterr().out
    fake.write_text(readme.render(), encoding="utf-8")
    assert readme.main(["--check"]) == 0


def test_from_readme_round_trip():
    "README.md, split back into index cells, renders to itself (the way back for a hand-edited or merged README)."
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    nb = readme.to_notebook(text)
    assert len(nb["cells"]) > 5 and all(c["cell_type"] == "markdown" for c in nb["cells"])
    assert readme.render_cells(nb["cells"]) == text
    fenced = "# a\n\n```\n## not a heading\n```\n\n## b\n"
    assert len(readme.to_notebook(fenced)["cells"]) == 2 and readme.render_cells(readme.to_notebook(fenced)["cells"]) == fenced


def test_stage_notebook(tmp_path):
    "A notebook page shows what nbdev's docs show: no front matter, hidden cells or directives; outputs as stored."
    bd = importlib.import_module("build_docs")
    show = {"output_type": "execute_result", "execution_count": 3, "metadata": {},
            "data": {"text/markdown": "---\n\n[source](https://x/y.py#L1){target=\"_blank\"}\n\n### f\n", "text/plain": "f"}}
    cells = [{"cell_type": "raw", "metadata": {}, "source": "---\nskip_exec: true\n---"}, _md("# T\n\n> s"),
             _code("#| default_exp m"), _code("#| hide\nimport x"), _code("#| export\n#| eval: false\ndef f(): pass"),
             _code("show_doc(f)", [show])]
    bd._stage_notebook(_nb(tmp_path, cells), tmp_path / "out.ipynb", title="New")
    got = json.loads((tmp_path / "out.ipynb").read_text())["cells"]
    assert [c["source"] for c in got] == ["# New\n\n> s", "def f(): pass", "show_doc(f)"]
    assert got[2]["outputs"][0]["data"]["text/markdown"] == "---\n\n\n### f\n"


def test_home_links_notebook_pages(tmp_path, monkeypatch):
    "On the site's home page a README link to a notebook leads to that notebook's page; images it shows are copied."
    bd = importlib.import_module("build_docs")
    first = bd.numbered_notebooks()[0].name
    text = f"[t](nbs/{first}#a) [r](runs/recorded/main.ipynb) [w](https://x.org/nbs/a.ipynb)\n" \
           '<img src="runs/bench/scaling.png">\n'
    monkeypatch.setattr(bd.readme, "render", lambda nb: text)
    monkeypatch.setattr(bd, "exported_modules", lambda nbs=None: [])
    bd.stage(tmp_path)
    home = (tmp_path / "index.md").read_text()
    assert home.startswith(f"[t]({first}#a) [r](results/recorded_main.ipynb) [w](https://x.org/nbs/a.ipynb)")
    assert (tmp_path / "runs/bench/scaling.png").read_bytes() == (ROOT / "runs/bench/scaling.png").read_bytes()
    assert not (tmp_path / "nbs").exists()


def test_gfm_lists():
    bd = importlib.import_module("build_docs")
    src = "holds:\n- a\n  more\n  - b\n\ntext\n```\n- not a list\n```\n1. x\n   - y"
    assert bd.gfm_lists(src) == "holds:\n\n- a\n    more\n    - b\n\ntext\n```\n- not a list\n```\n\n1. x\n      - y"


# --- the site in a browser --------------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
API_MUST_LIST = {"loss": ["dgcl_loss"], "density": ["knn_density"], "memory": ["MemoryBank"], "trainer": ["Config"]}


def _missing() -> list[str]:
    miss = [m for m in ("mkdocs", "mkdocs_jupyter", "material") if importlib.util.find_spec(m) is None]
    return miss + ([] if CHROMIUM else ["chromium"])


def _n_images(nb: Path) -> int:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    return sum(1 for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {}))


def _figure_notebook(d: Path) -> Path:
    "A one-figure notebook (stored output, never executed), for when no committed component notebook holds a figure."
    import numpy as np
    from PIL import Image
    y, x = np.mgrid[0:48, 0:64]
    buf = io.BytesIO()
    Image.fromarray(np.stack([x * 4, y * 5, (x + y) * 2], -1).astype("uint8")).save(buf, format="PNG")
    png = base64.b64encode(buf.getvalue()).decode()
    cells = [_md("# Fixture figure\n\n> A stored figure output, to check that notebook figures show."),
             _code("plot()", [{"output_type": "display_data", "metadata": {}, "data": {"image/png": png, "text/plain": "<Figure>"}}])]
    for i, c in enumerate(cells): c["id"] = f"fixture-{i}"
    p = d / "99_fixture_figure.ipynb"
    p.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return p


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    miss = _missing()
    if miss:
        why = f"the docs site test needs {', '.join(miss)}: pip install -e '.[docs]' and apt-get install chromium"
        if os.environ.get("DGCL_REQUIRE_DOCS") == "1": pytest.fail(why + " (DGCL_REQUIRE_DOCS=1)")
        pytest.skip(why)
    bd = importlib.import_module("build_docs")
    d = tmp_path_factory.mktemp("docs")
    extra = [] if any(_n_images(nb) for nb in bd.numbered_notebooks()) else [_figure_notebook(d)]
    out = bd.build(d / "_site", extra_notebooks=extra)
    return out, bd, extra


def _dump(page: Path) -> str:
    "The DOM of a page after Chromium has loaded it."
    with tempfile.TemporaryDirectory(prefix="dgcl-chromium-") as prof:
        r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            f"--user-data-dir={prof}", "--dump-dom", page.as_uri()],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"chromium failed on {page}: {r.stderr[-2000:]}"
    return r.stdout


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))).strip()


def _decodes(data: bytes) -> tuple[int, int]:
    from PIL import Image
    im = Image.open(io.BytesIO(data))
    im.load()
    return im.size


def test_site_in_headless_chromium(site):
    out, bd, extra = site
    numbered = [nb.name for nb in bd.numbered_notebooks()] + [p.name for p in extra]
    want = (["index.html"] + [n.replace(".ipynb", ".html") for n in numbered]
            + [dst.replace(".ipynb", ".html") for _, src, dst in bd.RUN_PAGES if src.exists()]
            + [f"api/{m}.html" for m, _ in bd.exported_modules()])
    pages = sorted(str(p.relative_to(out)) for p in out.rglob("*.html") if p.name != "404.html")
    assert sorted(want) == pages, "the site's pages are not the README, the notebooks and one API page per module"
    assert len(bd.exported_modules()) >= 9

    with ThreadPoolExecutor(2) as ex: doms = dict(zip(pages, ex.map(lambda p: _dump(out / p), pages)))

    figures = 0
    for page, dom in doms.items():
        title = _text(re.search(r"<title>(.*?)</title>", dom, re.S).group(1))
        assert "404" not in title and "not found" not in title.lower(), f"{page}: {title}"
        main = re.search(r'<article class="md-content__inner[^"]*">(.*?)</article>', dom, re.S)
        assert main and len(_text(main.group(1))) > 200, f"{page}: no main content in the browser"
        src = {n.replace(".ipynb", ".html"): p for n, p in [(nb.name, nb) for nb in bd.numbered_notebooks()] + [(p.name, p) for p in extra]}
        src.update({dst.replace(".ipynb", ".html"): s for _, s, dst in bd.RUN_PAGES})
        if page in src:
            assert "jp-Notebook" in main.group(1) or "jupyter-wrapper" in dom, f"{page}: not rendered as a notebook"
            imgs = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', main.group(1))
            assert len(imgs) >= _n_images(src[page]), f"{page}: {len(imgs)} figures shown, the notebook stores {_n_images(src[page])}"
            for b in imgs:
                w, h = _decodes(base64.b64decode(b))
                assert w > 1 and h > 1
            figures += len(imgs)
        for ref in re.findall(r'<img[^>]*src="(?!data:)([^"]+)"', main.group(1)):  # linked images (the home page's)
            w, h = _decodes(((out / page).parent / ref).read_bytes())
            assert w > 1 and h > 1, f"{page}: {ref}"
            figures += 1

    # the API pages list every public name of their module, with its signature
    for mod, _ in bd.exported_modules():
        dom = doms[f"api/{mod}.html"]
        heads = {_text(h).rstrip("¶").strip() for h in re.findall(r"<h3[^>]*>(.*?)</h3>", dom, re.S)}
        names = importlib.import_module(f"dgcl.{mod}").__all__
        assert set(names) <= heads, f"api/{mod}: missing {sorted(set(names) - heads)}"
        for n in API_MUST_LIST.get(mod, []):
            assert n in heads and re.search(rf"\b(def|class)\s+{n}\s*\(", _text(dom)), f"api/{mod}: no signature of {n}"

    assert figures >= 1 + len(extra), "no figure was shown anywhere"
    home = _text(doms["index.html"])
    assert "Density-Guided Contrastive Learning" in home and "Ablation tables" in home
