"""The study of issue #26 (runs/study/PLAN.md): its replicates and cells as the plan lists them, the checks made before
a run, and the driver that runs its stages.

    python tools/study.py check                  # the plan's hash; no run outside runs/study/test/ uses a stage-2 draw or seed
    python tools/study.py run calib              # stage 1: the `authors` regime's lr (runs/study/dev/calibration.json)
    python tools/study.py run dev                # stage 1: supervised and self-training in the 4 cells (24 runs)
    python tools/study.py run dgcl               # stage 1: DGCL at λ 0.125, 0.5 and 0 in the cells that pass
    python tools/study.py run test [--extension] # stage 2: the frozen cell (runs/study/frozen.json) on the new test split
    python tools/study.py grad                   # stage 2: `grad_terms` of 3 of its DGCL runs (runs/study/grad_terms/)
    python tools/study.py run tables             # stage 3, once stage 2 has ended: the λ table and the anchor controls
    python tools/study.py status                 # what has finished: per cell and replicate, the pass rule, the machines

`run` options: `--jobs N` runs at a time (2), each at `--threads T` OMP/MKL threads (1); `--dry-run` lists the runs;
`--out DIR` another study folder and `--allow-dirty` (runs on uncommitted code) are for tests only.
A run executes nbs/train.ipynb through papermill (`dgcl.ablate.execute`) into runs/study/dev/<cell>/<run>/ (stage 2:
runs/study/test/<run>/, stage 3: runs/study/tables/<run>/), its notebook beside it; finished runs (metrics.json) are
skipped, interrupted ones resume from their checkpoint. Stage 2's extension starts only after an inconclusive first
look, stage 3 only once stage 2 has ended (PLAN.md). Each finished run's metrics.json gets `study_plan`, `study_code`, `study_code_tree`,
`study_stage`, `study_cell` and `study_replicate`, taken when the run started (kept in its `study.json`; a run resumes
only on the dgcl/ and nbs/train.ipynb it started with). A run starts only on committed code and plan, and only where
its replicate's other runs ran on this processor at this thread count.
The plan is the authority; this module restates its lists.
"""
import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "runs" / "study" / "PLAN.md"
OUT = ROOT / "runs" / "study"
CALIBRATION = (200, 200)  # (split_seed, seed) of the regime calibration runs
DEV = ((200, 200), (201, 201), (202, 202))  # stage 1: development replicates, scored on val only
TEST = tuple((300 + i, 300 + i) for i in range(20))  # stage 2, first look
EXTENSION = tuple((300 + i, 300 + i) for i in range(20, 40))  # stage 2, the pre-declared second look
TEST_SPLIT = "test-d2"  # the new held-out test split (generator [seed, 2]); nothing is scored on it before stage 2

# The cells, as the plan defines them: flat nbs/train.ipynb parameters only
FIXED = dict(dataset="embedded", num_workers=0, figures=False)  # every study run (as the ablation presets)
TESTBEDS = {"v5": dict(digit_style="v5"), "bold": dict(digit_style="bold")}
CANDIDATES = {  # the `authors` regime's candidates, in the plan's order: the first within 5 points wins
    "sgd": dict(optimizer="sgd", lr=0.001, head_lr_mult=10.0, momentum=0.9, weight_decay=1e-4),
    "adamw-1e-4": dict(optimizer="adamw", head_lr_mult=10.0, lr=1e-4),
    "adamw-3e-4": dict(optimizer="adamw", head_lr_mult=10.0, lr=3e-4),
    "adamw-1e-3": dict(optimizer="adamw", head_lr_mult=10.0, lr=1e-3),
}
REGIMES = ("adamw", "authors")  # adamw: today's defaults; authors: the calibration's choice among CANDIDATES
CELLS = tuple(f"{t}-{r}" for t in TESTBEDS for r in REGIMES)
METHODS = ("supervised", "selftrain")
LAMBDAS = (0.125, 0.5, 0.0)  # DGCL's λ_contra in passing cells; 0 is the control, never frozen
POCOCK = 0.9706  # stage 2: two looks (20, then 40 pairs); each interval at 97.06 % keeps the overall error at 5 %
GRAD_REPS = TEST[:3]  # stage 2's descriptive `grad_terms`: the DGCL runs of these replicates
TABLE_REPS = TEST[:6]  # stage 3: six replicates of stage 2, reusing its runs
TABLE_LAMBDAS = (0.0625, 0.125, 0.25, 0.5)  # stage 3: the λ_contra table, effective units
CONTROLS = ("densest", "random")  # stage 3: the anchor controls of Eq. 9's claim, at the frozen λ (sparsest is stage 2's)
WITHIN = 5.0  # calibration: a candidate's teacher within this many points of the adamw supervised run
GAIN, TRIVIAL = 2.0, 85.0  # a cell passes: mean(self-training − supervised) ≥ GAIN and mean supervised ≤ TRIVIAL
EPS = 1e-9  # the plan's boundaries are inclusive; a float difference of equal decimals can miss one by an ulp
STAGES = ("calib", "dev", "dgcl", "test", "tables")


class Refused(Exception):
    "A stage that may not start (one line, exit 2)."


def plan_hash() -> str:
    "The git hash of the last commit that touched the plan (what every study run records as `study_plan`)."
    r = subprocess.run(["git", "log", "-1", "--format=%H", "--", str(PLAN)], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip()


def _git(*args) -> str:
    r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.rstrip()  # not strip(): a porcelain line starts with a space


def reused(runs_dir: Path = ROOT / "runs") -> list[str]:
    """Runs outside runs/study/test/ (and stage 3's runs/study/tables/, which reuse its replicates after it) whose labelled
    draw or seed is one of stage 2's, or that were scored on its split."""
    held = {s for rep in TEST + EXTENSION for s in rep}
    bad = []
    for p in sorted(runs_dir.glob("**/config.json")):
        if any(runs_dir / "study" / f in p.parents for f in ("test", "tables")): continue
        c = json.loads(p.read_text())
        if c.get("split_seed") in held or c.get("seed") in held or c.get("eval_split") == TEST_SPLIT:
            bad.append(f"{p.parent.relative_to(runs_dir)}: split_seed {c.get('split_seed')}, seed {c.get('seed')}, "
                       f"eval_split {c.get('eval_split')}")
    return bad


@dataclass
class StudyRun:
    "One study run: a method of a cell on a replicate (duck-types `dgcl.ablate.Run` for `execute`)."
    stage: str  # 'dev' | 'calib' | 'dgcl' | 'test' (the reference run is the dev cell's, whichever stage runs it)
    cell: str  # 'v5-adamw', 'calib-sgd', …; in test/ the frozen cell
    method: str  # the run's name stem: 'supervised', 'selftrain', 'dgcl-l0.125' ('dgcl' in test/)
    replicate: tuple  # (split_seed, seed)
    params: dict  # flat nbs/train.ipynb parameters
    folder: Path  # the cell's folder: the run is folder/<name>/, its notebook folder/<name>.ipynb
    group: Path | None = None  # another folder whose runs of this replicate share its machine (calibration: the reference's)

    @property
    def name(self) -> str: return f"{self.method}-s{self.replicate[0]}-seed{self.replicate[1]}"
    @property
    def table(self) -> str: return self.folder.name  # `execute`'s error message names table/name
    @property
    def run_dir(self) -> Path: return self.folder / self.name
    @property
    def notebook(self) -> Path: return self.folder / f"{self.name}.ipynb"
    @property
    def metrics_path(self) -> Path: return self.run_dir / "metrics.json"
    def done(self) -> bool: return self.metrics_path.exists()
    def metrics(self) -> dict | None: return json.loads(self.metrics_path.read_text()) if self.done() else None
    def miou(self) -> float | None: return m["miou"] if (m := self.metrics()) else None


def _params(testbed: str, regime: dict, method: str, rep: tuple, eval_split: str = "val", **extra) -> dict:
    return {**FIXED, "eval_split": eval_split, **TESTBEDS[testbed], **regime, "method": method,
            "split_seed": rep[0], "seed": rep[1], **extra}


def _regime(cell: str, authors: dict | None) -> dict:
    if cell.endswith("-adamw"): return {}
    if authors is None: raise Refused("the authors regime is not calibrated yet: run `python tools/study.py run calib` first")
    return authors


def calib_runs(out: Path = OUT) -> list[StudyRun]:
    "The reference (the dev cell v5-adamw's supervised run of CALIBRATION), then the candidates in the plan's order."
    dev = out / "dev"
    ref = StudyRun("dev", "v5-adamw", "supervised", CALIBRATION, _params("v5", {}, "supervised", CALIBRATION), dev / "v5-adamw")
    return [ref] + [StudyRun("calib", f"calib-{c}", "supervised", CALIBRATION, _params("v5", p, "supervised", CALIBRATION),
                             dev / f"calib-{c}", group=ref.folder) for c, p in CANDIDATES.items()]


def choose(reference: float, mious: dict) -> tuple[str, bool] | None:
    """(candidate, within 5): the first in the plan's order within 5 points of `reference`, else the closest; None while
    one it needs is unmeasured."""
    for c in CANDIDATES:
        if c not in mious: return None
        if abs(mious[c] - reference) <= WITHIN + EPS: return c, True
    return min(CANDIDATES, key=lambda c: abs(mious[c] - reference)), False  # ties: the earlier, as min keeps the first


def calibration(out: Path = OUT) -> dict | None:
    "The calibration's record (calibration.json), None before it exists."
    p = out / "dev" / "calibration.json"
    return json.loads(p.read_text()) if p.exists() else None


def _authors(out: Path) -> dict | None:
    c = calibration(out)
    return CANDIDATES[c["choice"]] if c else None


def dev_runs(out: Path = OUT, authors: dict | None = None) -> list[StudyRun]:
    "Stage 1's 24 runs: testbed, regime, replicate, then method, so that a replicate's two methods are adjacent."
    return [StudyRun("dev", f"{t}-{r}", m, rep, _params(t, _regime(f"{t}-{r}", authors), m, rep), out / "dev" / f"{t}-{r}")
            for t in TESTBEDS for r in REGIMES for rep in DEV for m in METHODS]


def verdict(supervised: list, selftrain: list) -> str:
    "The plan's pass rule on a cell's replicates (None: missing): 'pass', 'fail' or 'incomplete'."
    if None in supervised or None in selftrain or not supervised: return "incomplete"
    gain = sum(b - a for a, b in zip(supervised, selftrain)) / len(supervised)
    ok = gain >= GAIN - EPS and sum(supervised) / len(supervised) <= TRIVIAL + EPS
    return "pass" if ok else "fail"


def cell_results(runs: list[StudyRun]) -> dict:
    "{cell: {method: [teacher miou or None per DEV replicate]}} of the given runs."
    out = {}
    for r in runs: out.setdefault(r.cell, {}).setdefault(r.method, [None] * len(DEV))[DEV.index(r.replicate)] = r.miou()
    return out


def dgcl_runs(out: Path, cells: list[str], authors: dict | None) -> list[StudyRun]:
    "DGCL at each λ on the dev replicates of `cells`; a replicate's three λ adjacent."
    return [StudyRun("dgcl", c, f"dgcl-l{lam:g}", rep,
                     _params(c.split("-")[0], _regime(c, authors), "dgcl", rep, lambda_contra=lam), out / "dev" / c)
            for c in cells for rep in DEV for lam in LAMBDAS]


def frozen(out: Path = OUT) -> dict:
    "The frozen (cell, λ) of runs/study/frozen.json, checked against the plan."
    p = out / "frozen.json"
    if not p.exists(): raise Refused(f"{p} is missing: stage 2 starts after the freeze (a plan amendment)")
    f = json.loads(p.read_text())
    if f.get("cell") not in CELLS or f.get("lambda_contra") not in LAMBDAS[:2]:
        raise Refused(f"{p} holds {f}: allowed is a cell of {', '.join(CELLS)} and a lambda_contra of {LAMBDAS[:2]}")
    return f


def test_runs(out: Path, f: dict, authors: dict | None, extension: bool = False) -> list[StudyRun]:
    "Stage 2: supervised, self-training and DGCL at the frozen λ in the frozen cell, on TEST (and EXTENSION)."
    testbed, regime = f["cell"].split("-")[0], _regime(f["cell"], authors)
    methods = (("supervised", {}), ("selftrain", {}), ("dgcl", dict(lambda_contra=f["lambda_contra"])))
    return [StudyRun("test", f["cell"], m, rep, _params(testbed, regime, m, rep, TEST_SPLIT, **x), out / "test")
            for rep in TEST + (EXTENSION if extension else ()) for m, x in methods]


def pair(a: StudyRun, b: StudyRun) -> tuple[float, float]:
    "The teacher mIoU of two finished runs of one replicate; refused (ValueError) when they ran on another processor or threads."
    ma, mb = a.metrics(), b.metrics()
    for k in ("processor", "threads"):
        if ma.get(k) != mb.get(k):
            raise ValueError(f"{a.run_dir.name} and {b.run_dir.name} of {a.cell} ran with {k} {ma.get(k)!r} and "
                             f"{mb.get(k)!r}: not a pair")
    return ma["miou"], mb["miou"]


def pocock(d, level: float = POCOCK) -> tuple[float, float, float]:
    "Mean and the two-sided t interval at `level` (the plan's Pocock-adjusted 97.06 % by default) of paired differences `d`."
    import numpy as np
    from scipy import stats
    d = np.asarray(d, float)
    h = stats.t.ppf(1 - (1 - level) / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean()), float(d.mean() - h), float(d.mean() + h)


def test_verdict(lo: float, hi: float) -> str:
    "The plan's stage-2 verdicts on the interval of DGCL − self-training, first match wins."
    return "harms" if hi < 0 else "helps" if lo > 0 else "no gain worth having" if hi < 2 else "inconclusive"


def stage2(out: Path, f: dict, authors: dict | None) -> dict:
    """Where stage 2 stands. `look`: the replicates of the last complete look (None before the first); then `verdict`,
    the interval of DGCL − self-training (`d`: mean, lower, upper) and `ended` (a verdict other than inconclusive, or the
    extension complete). No score is read before a look is complete."""
    planned = test_runs(out, f, authors, extension=True)
    first = [r for r in planned if r.replicate in TEST]
    ext = [r for r in planned if r.replicate in EXTENSION]
    look = TEST + EXTENSION if all(r.done() for r in ext) else TEST if all(r.done() for r in first) else None
    state = dict(look=look, runs=planned, first_done=sum(r.done() for r in first), extension_done=sum(r.done() for r in ext))
    if look is None: return state | dict(ended=False)
    by = {(r.method, r.replicate): r for r in planned}
    d = pocock([a - b for a, b in (pair(by["dgcl", k], by["selftrain", k]) for k in look)])
    v = test_verdict(*d[1:])
    return state | dict(d=d, verdict=v, ended=v != "inconclusive" or len(look) == len(TEST + EXTENSION),
                        started_extension=state["extension_done"] > 0 or any((r.run_dir / "study.json").exists() for r in ext))


def table_runs(out: Path, f: dict, authors: dict | None) -> list[StudyRun]:
    """Stage 3 in the frozen cell on TABLE_REPS: DGCL at each λ of TABLE_LAMBDAS but the frozen one (stage 2's DGCL run is
    that cell), then the anchor controls at the frozen λ; each replicate's runs share stage 2's machine."""
    testbed, regime, lam0 = f["cell"].split("-")[0], _regime(f["cell"], authors), f["lambda_contra"]
    todo = [(f"dgcl-l{lam:g}", dict(lambda_contra=lam)) for lam in TABLE_LAMBDAS if lam != lam0]
    todo += [(f"dgcl-{a}", dict(lambda_contra=lam0, anchor_select=a)) for a in CONTROLS]
    return [StudyRun("tables", f["cell"], m, rep, _params(testbed, regime, "dgcl", rep, TEST_SPLIT, **x), out / "tables",
                     group=out / "test") for rep in TABLE_REPS for m, x in todo]


def table_reused(out: Path, f: dict, authors: dict | None) -> dict:
    "{(row, replicate): run} of stage 3's tables: its own runs and the stage-2 runs it reuses (self-training, DGCL at λ)."
    by = {(r.method, r.replicate): r for r in test_runs(out, f, authors) if r.replicate in TABLE_REPS}
    rows = {(m, k): r for (m, k), r in by.items() if m in ("supervised", "selftrain")}
    rows |= {(f"dgcl-l{f['lambda_contra']:g}", k): by["dgcl", k] for k in TABLE_REPS}
    rows |= {("dgcl-sparsest", k): by["dgcl", k] for k in TABLE_REPS}
    return rows | {(r.method, r.replicate): r for r in table_runs(out, f, authors)}


def stage_runs(stage: str, out: Path = OUT, extension: bool = False) -> list[StudyRun]:
    "The runs `stage` plans now (calib: all candidates; dgcl: the passing cells'); `Refused` when it may not start."
    if stage == "calib": return calib_runs(out)
    authors = _authors(out)
    if stage == "dev":
        if authors is None:
            raise Refused(f"{out / 'dev' / 'calibration.json'} is missing: run `python tools/study.py run calib` first")
        return dev_runs(out, authors)
    if stage == "dgcl":
        dev = dev_runs(out, authors)
        if not all(r.done() for r in dev):
            raise Refused(f"the dev runs are not all finished ({sum(r.done() for r in dev)} of {len(dev)}): run "
                          "`python tools/study.py run dev` first")
        res = cell_results(dev)
        return dgcl_runs(out, [c for c in CELLS if verdict(res[c]["supervised"], res[c]["selftrain"]) == "pass"], authors)
    bad = reused()
    if bad: raise Refused(f"a committed run reuses a stage-2 replicate or split ({bad[0]}): see `python tools/study.py check`")
    f = frozen(out)
    s = stage2(out, f, authors)
    if stage == "test":
        if extension and not s.get("started_extension") and (s["look"] != TEST or s["verdict"] != "inconclusive"):
            raise Refused("the extension runs only after an inconclusive first look (PLAN.md): " +
                          (f"{s['first_done']} of {3 * len(TEST)} first-look runs finished" if s["look"] is None
                           else f"the first look's verdict is {s['verdict']}"))
        return test_runs(out, f, authors, extension)
    if not s["ended"]:
        why = (f"{s['first_done']} of {3 * len(TEST)} first-look runs finished" if s["look"] is None else
               f"its first look is inconclusive and the extension has {s['extension_done']} of {3 * len(EXTENSION)} runs "
               "(`python tools/study.py run test --extension`)")
        raise Refused(f"stage 3 starts when stage 2 has ended: {why}")
    return table_runs(out, f, authors)


def unclean() -> str | None:
    "Why this checkout may not make study runs (the plan or the code uncommitted), else None."
    if not plan_hash(): return f"{PLAN.relative_to(ROOT)} is not committed: study runs need the committed plan"
    if _git("status", "--porcelain", "--", str(PLAN)): return f"{PLAN.relative_to(ROOT)} has uncommitted changes"
    code = _git("status", "--porcelain", "--", "dgcl", "nbs/train.ipynb").splitlines()
    if code: return (f"uncommitted changes in {', '.join(l[3:] for l in code[:3])}{' …' if len(code) > 3 else ''}: "
                     "study runs run on committed code only")
    return None


def code_tree() -> str:
    "What a run's numbers depend on: the git objects of dgcl/ and nbs/train.ipynb at HEAD (a commit elsewhere keeps it)."
    return "/".join(_git("rev-parse", f"HEAD:{p}") for p in ("dgcl", "nbs/train.ipynb"))


def provenance(run: StudyRun) -> dict:
    "What a study run records in metrics.json: the plan's and the code's commits, its stage, cell and replicate."
    return dict(study_plan=plan_hash(), study_code=_git("rev-parse", "HEAD"), study_code_tree=code_tree(),
                study_stage=run.stage, study_cell=run.cell, study_replicate=list(run.replicate))


def _write(path: Path, data: dict):
    tmp = path.with_suffix(".json.tmp")  # whole, then renamed: a reader (status, a partner) never sees half a file
    tmp.write_text(json.dumps(data, indent=1)); tmp.replace(path)


def stamp(run: StudyRun):
    "Add the provenance taken when the run started (its study.json) to its metrics.json."
    start = json.loads((run.run_dir / "study.json").read_text())
    _write(run.metrics_path, run.metrics() | {k: v for k, v in start.items() if k.startswith("study_")})


def machine(run_dir: Path) -> tuple | None:
    "(processor, threads) a run ran on (metrics.json) or resumes on (study.json beside a checkpoint); None if neither."
    m, start = run_dir / "metrics.json", run_dir / "study.json"
    if m.exists(): d = json.loads(m.read_text())
    elif (run_dir / "checkpoint.pt").exists() and start.exists(): d = json.loads(start.read_text())
    else: return None
    return d.get("processor"), d.get("threads")


def partners(run: StudyRun) -> list[Path]:
    "The run folders of the same replicate that must share its machine (the run's own included)."
    return sorted(p for f in {run.folder, run.group} - {None} for p in f.glob(f"*-s{run.replicate[0]}-seed{run.replicate[1]}")
                  if p.is_dir())


def mismatch(run: StudyRun, here: tuple) -> str | None:
    "One line if a partner (or the run itself, resuming) ran on another processor or thread count than `here`."
    for p in partners(run):
        if (there := machine(p)) and tuple(there) != tuple(here):
            return (f"replicate {run.replicate} of {run.folder.name}: {p.name} ran on {there[0]} at {there[1]} threads, "
                    f"this machine is {here[0]} at {here[1]}: not mixed (PLAN.md), run it there")
    return None


def execute_runs(runs: list[StudyRun], jobs: int = 2, threads: int = 1, among: list[StudyRun] | None = None) -> int:
    """Execute the unfinished `runs` (`jobs` at a time); one line per finished (k/n of `among`, the stage's runs), failed
    or refused run; returns the failures."""
    from dgcl.ablate import execute
    from dgcl.trainer import processor_model
    here = (processor_model(), threads)
    for r in runs:  # a run that finished without its provenance (interrupted in between) gets it now
        if r.done() and "study_plan" not in r.metrics() and (r.run_dir / "study.json").exists(): stamp(r)
    todo, failed, refused = [], 0, set()
    for r in runs:
        if r.done(): continue
        why = mismatch(r, here)
        if why is None: todo.append(r); continue
        failed += 1
        if (r.folder, r.replicate) not in refused: print(f"study: refused: {why}", file=sys.stderr)
        refused.add((r.folder, r.replicate))
    code, tree = _git("rev-parse", "HEAD"), code_tree()

    def one(r: StudyRun):
        t0, start = time.time(), r.run_dir / "study.json"
        if (r.run_dir / "checkpoint.pt").exists() and start.exists():
            was = json.loads(start.read_text())
            if was.get("study_code_tree") != tree:
                raise RuntimeError(f"{r.table}/{r.name} started at code {was['study_code'][:10]}, HEAD is {code[:10]} and "
                                   "dgcl/ or nbs/train.ipynb differ: a run resumes on the code it started with (or move it away)")
        else:
            r.run_dir.mkdir(parents=True, exist_ok=True)
            _write(start, provenance(r) | {"processor": here[0], "threads": here[1]})
        m = execute(r, ROOT, threads)
        stamp(r)
        return m, time.time() - t0

    among = among or runs
    finished = sum(r.done() for r in among)
    with ThreadPoolExecutor(jobs) as pool:
        futures = {pool.submit(one, r): r for r in todo}
        for f in as_completed(futures):
            r = futures[f]
            try: m, secs = f.result()
            except Exception as e:
                failed += 1; print(f"study: failed: {e}", file=sys.stderr); continue
            finished += 1
            score = "" if r.stage == "test" else f"teacher miou {m['miou']:.2f}, "  # stage 2: no score before its look
            print(f"{r.table}/{r.name}: {score}{secs:.0f} s ({finished}/{len(among)})", flush=True)
    return failed


def _fmt(v) -> str: return f"{v:g}" if isinstance(v, float) else str(v)


def _dry(runs: list[StudyRun], out: Path):
    for r in runs:
        print(f"{'done' if r.done() else 'todo'}  {r.run_dir.relative_to(out)}  "
              f"{' '.join(f'{k}={_fmt(v)}' for k, v in r.params.items())}")
    print(f"{len(runs)} runs, {sum(r.done() for r in runs)} done")


def run_calib(out: Path, jobs: int, threads: int, dry: bool) -> int:
    "The reference and SGD, then each next candidate while none is within 5 points; writes calibration.json."
    runs = calib_runs(out)
    ref, cands = runs[0], dict(zip(CANDIDATES, runs[1:]))
    if dry:
        _dry(runs, out)
        print("a candidate runs only while the earlier ones are not within 5 points of the reference")
        return 0
    batch, failed, choice = runs[:2], 0, None  # the rule always needs these two
    while True:
        failed += execute_runs(batch, jobs, threads, among=runs)
        mious = {c: r.miou() for c, r in cands.items() if r.done()}
        if failed or not ref.done(): break
        if (choice := choose(ref.miou(), mious)): break
        batch = [next(r for c, r in cands.items() if c not in mious)]
    if failed or not choice: return 1
    c, within = choice
    _write(out / "dev" / "calibration.json", dict(choice=c, params=CANDIDATES[c], reference_miou=ref.miou(),
                                                  candidates=mious, within_5=within))
    print(f"calibration: authors = {c} (teacher {mious[c]:.2f} against adamw supervised {ref.miou():.2f}): "
          + ("within 5 points" if within else "none is within 5 points, the closest; the results say so"))
    return 0


def run(stage: str, out: Path = OUT, jobs: int = 2, threads: int = 1, dry: bool = False, extension: bool = False,
        allow_dirty: bool = False) -> int:
    "`python tools/study.py run STAGE`: 0 when its runs finished, 1 if one failed or was refused, 2 if it may not start."
    try:
        if stage not in STAGES: raise Refused(f"stage {stage!r} is unknown: allowed are {', '.join(STAGES)}")
        for flag, v in (("--jobs", jobs), ("--threads", threads)):
            if v < 1: raise Refused(f"{flag} {v} is out of range: allowed is an integer ≥ 1")
        if extension and stage != "test": raise Refused(f"--extension is for the test stage only, not {stage}")
        runs = [] if stage == "calib" else stage_runs(stage, out, extension)
        if stage == "dgcl" and not runs:
            print("no cell passes: the study stops here (PLAN.md)"); return 0
        if not dry and not allow_dirty and (why := unclean()): raise Refused(why)
    except Refused as e:
        print(f"study: {e}", file=sys.stderr); return 2
    if stage == "calib": return run_calib(out, jobs, threads, dry)
    if dry: _dry(runs, out); return 0
    failed = execute_runs(runs, jobs, threads)
    if stage == "test" and not failed: look_line(out)
    return 1 if failed else 0


def look_line(out: Path = OUT):
    "After stage 2's runs: the verdict of the look that is complete (the plan's rule), and what comes next."
    s = stage2(out, frozen(out), _authors(out))
    if s["look"] is None: return
    m, lo, hi = s["d"]
    nxt = ("run the extension: `python tools/study.py run test --extension`" if not s["ended"] else
           "stage 2 has ended: `python tools/study.py grad`, then `python tools/study.py run tables`")
    print(f"stage 2, {len(s['look'])} pairs on {TEST_SPLIT}: DGCL − self-training {m:+.2f} [{lo:+.2f}, {hi:+.2f}] "
          f"(t interval at {POCOCK:.2%}): {s['verdict']}; {nxt}")


def grad(out: Path = OUT, steps: int = 4) -> int:
    """`python tools/study.py grad`: `tools/grad_terms.py` (each weighted term's gradient per parameter group, at the final
    checkpoint) on stage 2's DGCL runs of GRAD_REPS, into runs/study/grad_terms/<run>.json; existing files are kept."""
    try:
        f = frozen(out)
        s = stage2(out, f, _authors(out))
        if s["look"] is None: raise Refused(f"grad_terms reads stage 2's runs after its first look: {s['first_done']} of "
                                            f"{3 * len(TEST)} runs finished")
        runs = [r for r in s["runs"] if r.method == "dgcl" and r.replicate in GRAD_REPS]
        if (miss := [r for r in runs if not (r.run_dir / "checkpoint.pt").exists()]):
            raise Refused(f"{miss[0].run_dir} holds no checkpoint.pt: grad_terms needs the run's final checkpoint "
                          "(checkpoints are not committed: run it on the machine that made the run)")
    except Refused as e:
        print(f"study: {e}", file=sys.stderr); return 2
    import importlib.util
    import torch
    from dgcl.trainer import processor_model
    spec = importlib.util.spec_from_file_location("grad_terms", ROOT / "tools" / "grad_terms.py")
    g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g)
    torch.set_num_threads(1)
    (out / "grad_terms").mkdir(exist_ok=True)
    for r in runs:
        dst = out / "grad_terms" / f"{r.name}.json"
        if dst.exists(): continue
        res = g.grad_terms(r.run_dir, steps) | dict(run=str(r.run_dir.relative_to(ROOT) if ROOT in r.run_dir.parents else r.run_dir),
                                                    processor=processor_model(), threads=1)
        _write(dst, res)
        print(f"{dst.relative_to(out)}: contra / sup on the backbone "
              f"{res['grad_norm']['backbone']['contra'] / res['grad_norm']['backbone']['sup']:.2f}", flush=True)
    return 0


def _m(v) -> str: return "—" if v is None else f"{v:.2f}"


def _mean(vs) -> float | None: return None if not vs or None in vs else sum(vs) / len(vs)


def _d(a, b) -> str: return "—" if a is None or b is None else f"{a - b:+.2f}"


def status(out: Path = OUT) -> int:
    "`python tools/study.py status`: what has finished, per stage (reads only)."
    print(f"plan {plan_hash()[:10] or 'uncommitted'}; study folder {out}")
    ref, *cands = calib_runs(out)
    c = calibration(out)
    choice = f"{c['choice']} ({'within 5 points' if c['within_5'] else 'none within 5 points: the closest'})" if c else "not yet"
    print(f"\ncalibration (v5, supervised, replicate {CALIBRATION}, val): adamw {_m(ref.miou())}; "
          + ", ".join(f"{r.cell[6:]} {_m(r.miou())}" for r in cands) + f"; choice: {choice}")
    authors = _authors(out) or {}  # status only names runs: a cell's folders do not depend on its parameters
    dev = cell_results(dev_runs(out, authors))
    print("\ndev (val, teacher miou): per replicate supervised / selftrain / selftrain − supervised; the cell's means")
    for cell in CELLS:
        sup, st = dev[cell]["supervised"], dev[cell]["selftrain"]
        reps = "  ".join(f"{a[0]}: {_m(x)} / {_m(y)} / {_d(y, x)}" for a, x, y in zip(DEV, sup, st))
        print(f"  {cell:12} {reps}  mean {_m(_mean(sup))} / {_m(_mean(st))} / {_d(_mean(st), _mean(sup))}  {verdict(sup, st)}")
    dg = cell_results(dgcl_runs(out, list(CELLS), authors))
    shown = [c for c in CELLS if any(v is not None for vs in dg[c].values() for v in vs)]
    if shown: print("\ndgcl (val, teacher miou): per λ the replicates, then mean DGCL − self-training")
    for cell in shown:
        st = _mean(dev[cell]["selftrain"])
        print(f"  {cell:12} " + "  ".join(f"{m}: {' '.join(_m(v) for v in vs)} / {_d(_mean(vs), st)}"
                                          for m, vs in dg[cell].items()))
    try: f = frozen(out)
    except Refused as e: f = None; print(f"\ntest: {e}")
    if f:
        tr = [r for r in test_runs(out, f, authors, extension=True) if r.done()]
        print(f"\ntest ({f['cell']}, λ {f['lambda_contra']:g}, {TEST_SPLIT}): {sum(r.replicate in TEST for r in tr)} of "
              f"{3 * len(TEST)} first-look runs and {sum(r.replicate in EXTENSION for r in tr)} extension runs finished "
              "(their scores: the results notebook)")
        s = stage2(out, f, authors)
        if s["ended"]:
            tb = table_runs(out, f, authors)
            print(f"tables (stage 3, {len(TABLE_REPS)} replicates): {sum(r.done() for r in tb)} of {len(tb)} runs finished")
    seen, groups = {}, {}
    for m in sorted(out.glob("**/metrics.json")):
        k = machine(m.parent)
        seen[k] = seen.get(k, 0) + 1
    every = calib_runs(out) + dev_runs(out, authors) + dgcl_runs(out, list(CELLS), authors)
    for r in every + (test_runs(out, f, authors, True) + table_runs(out, f, authors) if f else []):
        if (k := machine(r.run_dir)): groups.setdefault(((r.group or r.folder).name, r.replicate), set()).add(k)
    print("\nmachines: " + ("; ".join(f"{p} at {t} threads: {n} runs" for (p, t), n in seen.items()) or "none yet"))
    for (folder, rep), ks in groups.items():
        if len(ks) > 1: print(f"mismatch: {folder} replicate {rep} ran on " + " and ".join(f"{p} at {t} threads" for p, t in ks))
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message): raise Refused(message)  # one line, exit 2 (argparse would print the usage too)


def main(argv=None) -> int:
    p = _Parser(prog="study", description="The study of runs/study/PLAN.md.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="the plan's hash; no stage-2 replicate reused")
    r = sub.add_parser("run", help="run a stage's unfinished runs")
    r.add_argument("stage", choices=STAGES)
    r.add_argument("--jobs", type=int, default=2, help="runs at a time (the two methods of a replicate together)")
    r.add_argument("--threads", type=int, default=1, help="OMP/MKL threads per run")
    r.add_argument("--dry-run", action="store_true", help="list the planned runs, done or todo, and exit")
    r.add_argument("--extension", action="store_true", help="test stage: the 20 pre-declared extension replicates too")
    r.add_argument("--allow-dirty", action="store_true", help="tests only: run on uncommitted code or plan")
    r.add_argument("--out", type=Path, default=OUT, help="tests only: another study folder")
    g = sub.add_parser("grad", help="stage 2: grad_terms of 3 of its DGCL runs")
    g.add_argument("--out", type=Path, default=OUT, help="tests only: another study folder")
    s = sub.add_parser("status", help="what has finished (reads only)")
    s.add_argument("--out", type=Path, default=OUT, help="tests only: another study folder")
    try: a = p.parse_args(sys.argv[1:] if argv is None else argv)
    except Refused as e:
        print(f"study: {e}", file=sys.stderr); return 2
    if a.command == "run": return run(a.stage, a.out, a.jobs, a.threads, a.dry_run, a.extension, a.allow_dirty)
    if a.command == "status": return status(a.out)
    if a.command == "grad": return grad(a.out)
    bad = reused()
    print(f"plan {PLAN.relative_to(ROOT)} at {plan_hash() or 'an uncommitted state'}")
    print("\n".join(f"reuses a stage-2 replicate or split: {b}" for b in bad) if bad else
          f"no committed run outside runs/study/test/ uses stage 2's {len(TEST + EXTENSION)} draws and seeds or {TEST_SPLIT}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
