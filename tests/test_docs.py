"""README.md is what nbs/index.ipynb generates; the documentation site builds, and headless Chromium shows every page
as a reader sees it: equations typeset (MathJax served by the site itself), code not cut off, no empty prompts.

The site tests need the docs extra (`pip install -e ".[docs]"`, which brings MathJax as django-static-mathjax) and
Debian's `chromium`; without them they are skipped with the reason, unless DGCL_REQUIRE_DOCS=1 (set by .ci/run), which
turns the skip into a failure. The browser test leaves a screenshot of the Loss notebook's page (Eq. 13) in the site it
built: `<tmp>/docs0/_site/screenshot-NN_loss.png` (10_loss today), its path printed with `pytest -rP`."""
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
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync", "--virtual-time-budget=20000"]  # waits for MathJax (virtual time)
WINDOW = "1280,1000"  # a laptop's browser: both sidebars shown, so the content column is at its narrowest
SHOT = ("loss", "1400,1800")  # the notebook (by its module) whose page's screenshot the test leaves in the site; the window
API_MUST_LIST = {"loss": ["dgcl_loss"], "density": ["knn_density"], "memory": ["MemoryBank"], "config": ["Config"]}
# Added to the home page of the test's site: the README has no equation of its own, and Markdown pages must typeset them too.
HOME_MATH = "\n## Equations\n\nInline, $\\hat p_j$ and $|K| = 3$; displayed:\n\n$$d(v) = \\frac{1}{|K|}\\sum_{k\\in K} d_k(v)$$\n"
RAW_TEX = ("$$", "\\frac", "\\sum")  # never in a page's visible text


def _missing() -> list[str]:
    miss = [m for m in ("mkdocs", "mkdocs_jupyter", "material") if importlib.util.find_spec(m) is None]
    try: importlib.import_module("build_docs").mathjax_dir()
    except ImportError: miss.append("django-static-mathjax")
    return miss + ([] if CHROMIUM else ["chromium"])


def _n_images(nb: Path) -> int:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    return sum(1 for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {}))


def _save_nb(p: Path, cells: list[dict]) -> Path:
    for i, c in enumerate(cells): c["id"] = f"fixture-{i}"
    p.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return p


def _figure_notebook(d: Path) -> Path:
    "A one-figure notebook (stored output, never executed), for when no committed component notebook holds a figure."
    import numpy as np
    from PIL import Image
    y, x = np.mgrid[0:48, 0:64]
    buf = io.BytesIO()
    Image.fromarray(np.stack([x * 4, y * 5, (x + y) * 2], -1).astype("uint8")).save(buf, format="PNG")
    png = base64.b64encode(buf.getvalue()).decode()
    return _save_nb(d / "99_fixture_figure.ipynb", [
        _md("# Fixture figure\n\n> A stored figure output, to check that notebook figures show."),
        _code("plot()", [{"output_type": "display_data", "metadata": {}, "data": {"image/png": png, "text/plain": "<Figure>"}}])])


def _math_notebook(d: Path) -> Path:
    "Inline and displayed TeX in a notebook's Markdown, with what Markdown could mangle (`_`, `*`, `\\{`), and dollars in code."
    long = "x = " + " + ".join(f"weight_{i} * feature_{i}" for i in range(12)) + "  # a line longer than any column"
    return _save_nb(d / "98_fixture_math.ipynb", [
        _md("# Fixture equations\n\n> TeX in a notebook's Markdown cells, to check that equations are typeset."),
        _md("Inline: the density $d(v)$ of $\\hat v_j$ over $k\\in K$, with $a_1 * b_2 * c_3$ and $\\{x_i\\}_{i=1}^{n}$.\n\n"
            "$$d(v) = \\frac{1}{|K|}\\sum_{k\\in K}\\frac{1}{k}\\sum_{j\\in \\mathrm{kNN}_k(v)} \\langle \\hat v, \\hat p_j\\rangle$$\n\n"
            "Dollars in code are not math: `echo $HOME $PATH`."),
        _code(f'cost = "$5 and $6"\n{long}', [{"output_type": "stream", "name": "stdout", "text": ["$5 and $6 " * 30 + "\n"]}])])


def _math(md: str) -> list[str]:
    "The TeX in Markdown, outside code: each `$$...$$`, and each `$...$` that opens before and closes after a non-space."
    md = re.sub(r"^(```|~~~).*?^\1", "", md, flags=re.S | re.M)
    md = re.sub(r"(`+).+?\1", "", md, flags=re.S)
    return re.findall(r"\$\$.+?\$\$|(?<![\\$])\$(?=\S)[^$\n]*?(?<=\S)\$(?!\$)", md, re.S)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    miss = _missing()
    if miss:
        why = f"the docs site test needs {', '.join(miss)}: pip install -e '.[docs]' and apt-get install chromium"
        if os.environ.get("DGCL_REQUIRE_DOCS") == "1": pytest.fail(why + " (DGCL_REQUIRE_DOCS=1)")
        pytest.skip(why)
    bd = importlib.import_module("build_docs")
    d = tmp_path_factory.mktemp("docs")
    extra = [_math_notebook(d)] + ([] if any(_n_images(nb) for nb in bd.numbered_notebooks()) else [_figure_notebook(d)])
    render = bd.readme.render
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bd.readme, "render", lambda nb=bd.NBS / "index.ipynb": render(nb) + HOME_MATH)
        out = bd.build(d / "_site", extra_notebooks=extra)
    return out, bd, extra


def _sources(bd, extra) -> dict[str, Path | str]:
    "Each page of the site: the notebook it shows, or the Markdown it is made of."
    src: dict = {"index.html": bd.readme.render(bd.NBS / "index.ipynb") + HOME_MATH}
    src.update({nb.name.replace(".ipynb", ".html"): nb for nb in list(bd.numbered_notebooks()) + list(extra)})
    src.update({dst.replace(".ipynb", ".html"): s for _, s, dst in bd.RUN_PAGES if s.exists()})
    src.update({f"api/{m}.html": bd.api_page(m, nb) for m, nb in bd.exported_modules()})
    return src


def _shown_markdown(nb: Path, tmp: Path) -> str:
    "The Markdown that a notebook's page shows: its Markdown cells and Markdown outputs, once staged as the site stages it."
    bd = importlib.import_module("build_docs")
    bd._stage_notebook(nb, tmp / nb.name)
    md = []
    for c in json.loads((tmp / nb.name).read_text(encoding="utf-8"))["cells"]:
        if c["cell_type"] == "markdown": md.append(_src(c))
        for o in c.get("outputs", []):
            t = o.get("data", {}).get("text/markdown")
            if t: md.append(t if isinstance(t, str) else "".join(t))
    return "\n\n".join(md)


def _src(c): return "".join(c["source"]) if isinstance(c["source"], list) else c["source"]


# Run in each page once its equations are typeset: what a reader sees, as JSON in <html data-dgcl-probe="...">.
PROBE = """<script>
window.addEventListener("load", () => {
  const ready = window.MathJax && MathJax.startup && MathJax.startup.promise;
  (ready || Promise.resolve()).catch(e => e).then(() => {
    const art = document.querySelector("article.md-content__inner");
    const name = el => el.tagName.toLowerCase() + (typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\\s+/).join(".") : "");
    const line = el => (el.textContent || "").trim().split("\\n")[0].slice(0, 70);
    const cut = [];
    for (const pre of art ? art.querySelectorAll("pre") : []) {
      if (!pre.getClientRects().length) continue;  // not shown (a closed <details>, say)
      const code = pre.querySelector(":scope > code");
      const over = [pre].concat(code ? [code] : []).find(el => el.scrollWidth > el.clientWidth + 1);
      if (over) { cut.push(`${name(over)} "${line(pre)}": ${over.scrollWidth}px of text in ${over.clientWidth}px`); continue; }
      const right = pre.getBoundingClientRect().right;
      for (let a = pre.parentElement; a && a !== art.parentElement; a = a.parentElement)
        if ((a === art || getComputedStyle(a).overflowX !== "visible") && a.getBoundingClientRect().right < right - 1) {
          cut.push(`${name(pre)} "${line(pre)}" runs past the edge of ${name(a)}`); break;
        }
    }
    const code = [...document.querySelectorAll("pre, code")];
    const display = code.map(el => el.style.display);
    code.forEach(el => el.style.setProperty("display", "none", "important"));
    const prose = document.body.innerText;
    code.forEach((el, i) => { el.style.removeProperty("display"); if (display[i]) el.style.display = display[i]; });
    document.documentElement.setAttribute("data-dgcl-probe", JSON.stringify({
      mathjax: (window.MathJax && MathJax.version) || null,
      math: art ? art.querySelectorAll("mjx-container").length : 0,
      errors: [...document.querySelectorAll("mjx-merror")].map(e => e.getAttribute("data-mjx-error") || e.textContent),
      text: document.body.innerText, prose, cut,
    }));
  });
});
</script>"""


def _chromium(page: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="dgcl-chromium-") as prof:
        r = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={prof}", *args, page.as_uri()],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"chromium failed on {page}: {r.stderr[-2000:]}"
    return r


def _dump(page: Path) -> str:
    "The DOM of a page after Chromium has loaded it and MathJax has typeset it."
    return _chromium(page, f"--window-size={WINDOW}", "--dump-dom").stdout


def _probe(dom: str) -> dict | None:
    m = re.search(r'<html[^>]*\bdata-dgcl-probe="([^"]*)"', dom)
    return json.loads(html.unescape(m.group(1))) if m else None


@pytest.fixture(scope="module")
def doms(site):
    "Every page (but 404) as Chromium shows it, with what the probe saw there."
    out, bd, extra = site
    pages = sorted(str(p.relative_to(out)) for p in out.rglob("*.html") if p.name != "404.html")
    for p in pages:
        f = out / p
        f.write_text(f.read_text(encoding="utf-8").replace("</body>", PROBE + "\n</body>", 1), encoding="utf-8")
    with ThreadPoolExecutor(2) as ex: dumped = dict(zip(pages, ex.map(lambda p: _dump(out / p), pages)))
    return {p: (dom, _probe(dom)) for p, dom in dumped.items()}


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))).strip()


def _decodes(data: bytes) -> tuple[int, int]:
    from PIL import Image
    im = Image.open(io.BytesIO(data))
    im.load()
    return im.size


def test_site_in_headless_chromium(site, doms):
    out, bd, extra = site
    numbered = [nb.name for nb in bd.numbered_notebooks()] + [p.name for p in extra]
    want = (["index.html"] + [n.replace(".ipynb", ".html") for n in numbered]
            + [dst.replace(".ipynb", ".html") for _, src, dst in bd.RUN_PAGES if src.exists()]
            + [f"api/{m}.html" for m, _ in bd.exported_modules()])
    assert sorted(want) == sorted(doms), "the site's pages are not the README, the notebooks and one API page per module"
    assert len(bd.exported_modules()) >= 9

    figures = 0
    src = {n.replace(".ipynb", ".html"): p for n, p in [(nb.name, nb) for nb in bd.numbered_notebooks()] + [(p.name, p) for p in extra]}
    src.update({dst.replace(".ipynb", ".html"): s for _, s, dst in bd.RUN_PAGES})
    for page, (dom, _) in doms.items():
        title = _text(re.search(r"<title>(.*?)</title>", dom, re.S).group(1))
        assert "404" not in title and "not found" not in title.lower(), f"{page}: {title}"
        main = re.search(r'<article class="md-content__inner[^"]*">(.*?)</article>', dom, re.S)
        assert main and len(_text(main.group(1))) > 200, f"{page}: no main content in the browser"
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
        dom = doms[f"api/{mod}.html"][0]
        heads = {_text(h).rstrip("¶").strip() for h in re.findall(r"<h3[^>]*>(.*?)</h3>", dom, re.S)}
        names = importlib.import_module(f"dgcl.{mod}").__all__
        assert set(names) <= heads, f"api/{mod}: missing {sorted(set(names) - heads)}"
        for n in API_MUST_LIST.get(mod, []):
            assert n in heads and re.search(rf"\b(def|class)\s+{n}\s*\(", _text(dom)), f"api/{mod}: no signature of {n}"

    assert figures >= 1 + sum("figure" in p.name for p in extra), "no figure was shown anywhere"
    home = _text(doms["index.html"][0])
    assert "Density-Guided Contrastive Learning" in home and "Ablation tables" in home


def test_pages_load_nothing_from_outside(site, doms):
    "Every script and style sheet comes from the site (no empty URL, no CDN): the site works offline."
    out, _, _ = site
    for page, (dom, _) in doms.items():
        for tag in re.findall(r"<script\b[^>]*>|<link\b[^>]*rel=\"stylesheet\"[^>]*>", dom):
            url = re.search(r'\b(?:src|href)="([^"]*)"', tag)
            if url is None: continue  # an inline script
            url = html.unescape(url.group(1)).split("?")[0].split("#")[0]
            assert url and not re.match(r"^(https?:)?//", url), f"{page}: {tag}"
            path = Path(url[len("file://"):]) if url.startswith("file://") else (out / page).parent / url
            assert path.resolve().is_file(), f"{page}: {tag} is not in the site"
        assert '<script src="">' not in dom and "text/x-mathjax-config" not in dom, f"{page}: nbconvert's MathJax 2 loader is left"


def test_equations_are_typeset(site, doms, tmp_path):
    "Wherever a page's source has `$` math, MathJax has typeset each piece of it, and no raw TeX is left in what a reader sees."
    out, bd, extra = site
    typeset = set()
    for page, source in _sources(bd, extra).items():
        dom, probe = doms[page]
        assert probe, f"{page}: the probe did not run (did the page's scripts fail?)"
        md = _shown_markdown(source, tmp_path) if isinstance(source, Path) else source
        math = _math(md)
        assert probe["mathjax"] and probe["mathjax"].startswith("3."), f"{page}: MathJax is not loaded ({probe['mathjax']})"
        assert probe["math"] == len(math), f"{page}: {probe['math']} equations typeset, the source holds {len(math)}: {math}"
        assert not probe["errors"], f"{page}: TeX errors {probe['errors']}"
        raw = [t for t in RAW_TEX if t in probe["prose"]] + [m for m in math if m in probe["prose"]]
        raw += sorted({c for m in math for c in re.findall(r"\\[A-Za-z]+", m) if c in probe["prose"]})
        assert not raw, f"{page}: raw TeX in the page's text: {raw}"
        if math: typeset.add(page)
    assert {"index.html", "98_fixture_math.html"} <= typeset, "inline and displayed math in a notebook and on the home page"
    page_of = {m: nb.name.replace(".ipynb", ".html") for m, nb in bd.exported_modules()}
    assert {page_of["density"], page_of["loss"]} <= typeset, "Eq. 7-8 (density) and Eq. 13 (loss)"


def test_code_is_readable(site, doms):
    "No code block is cut off (long lines wrap inside the column), and no cell carries an empty `In [ ]:` prompt."
    for page, (dom, probe) in doms.items():
        assert probe, f"{page}: the probe did not run"
        assert not probe["cut"], f"{page}: code cut off at the window size {WINDOW}: {probe['cut'][:5]}"
        assert not re.search(r"\b(In|Out)\s*\[\s*\]:", probe["text"]), f"{page}: empty In [ ]: / Out[ ]: prompts"


def test_screenshot(site):
    "A screenshot of the Loss page, with Eq. 13, left in the site for a person to look at."
    out, bd, _ = site
    mod, window = SHOT
    page = next(nb.name.replace(".ipynb", ".html") for m, nb in bd.exported_modules() if m == mod)
    png = out / f"screenshot-{Path(page).stem}.png"
    _chromium(out / page, f"--window-size={window}", f"--screenshot={png}")
    from PIL import Image
    im = Image.open(png)
    assert im.size == tuple(int(v) for v in window.split(",")), im.size
    assert len(im.convert("RGB").getcolors(1 << 24)) > 50, "a blank screenshot"
    print(f"screenshot of {page}: {png}")
