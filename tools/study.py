"""The study of issue #26 (runs/study/PLAN.md): its replicates, as the plan lists them, and the checks made before a run.

    python tools/study.py check     # the plan's hash; no stage-2 draw or seed used by any run committed outside runs/study/test/

The plan is the authority; this module restates its lists so that code and tests can use them. The driver that runs
stage 1 and stage 2 (and writes `study_plan` into each `metrics.json`) comes with the study's first runs.
"""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "runs" / "study" / "PLAN.md"
CALIBRATION = (200, 200)  # (split_seed, seed) of the regime calibration runs
DEV = ((200, 200), (201, 201), (202, 202))  # stage 1: development replicates, scored on val only
TEST = tuple((300 + i, 300 + i) for i in range(20))  # stage 2, first look
EXTENSION = tuple((300 + i, 300 + i) for i in range(20, 40))  # stage 2, the pre-declared second look
TEST_SPLIT = "test-d2"  # the new held-out test split (generator [seed, 2]); nothing is scored on it before stage 2


def plan_hash() -> str:
    "The git hash of the last commit that touched the plan (what every study run records as `study_plan`)."
    r = subprocess.run(["git", "log", "-1", "--format=%H", "--", str(PLAN)], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip()


def reused(runs_dir: Path = ROOT / "runs") -> list[str]:
    "Runs outside runs/study/test/ whose labelled draw or seed is one of stage 2's, or that were scored on its split."
    held = {s for rep in TEST + EXTENSION for s in rep}
    bad = []
    for p in sorted(runs_dir.glob("**/config.json")):
        if (runs_dir / "study" / "test") in p.parents: continue
        c = json.loads(p.read_text())
        if c.get("split_seed") in held or c.get("seed") in held or c.get("eval_split") == TEST_SPLIT:
            bad.append(f"{p.parent.relative_to(runs_dir)}: split_seed {c.get('split_seed')}, seed {c.get('seed')}, "
                       f"eval_split {c.get('eval_split')}")
    return bad


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["check"]:
        print(f"study: {' '.join(args) or '(nothing)'} is not a command: allowed is `check`", file=sys.stderr); return 2
    bad = reused()
    print(f"plan {PLAN.relative_to(ROOT)} at {plan_hash() or 'an uncommitted state'}")
    print("\n".join(f"reuses a stage-2 replicate or split: {b}" for b in bad) if bad else
          f"no committed run outside runs/study/test/ uses stage 2's {len(TEST + EXTENSION)} draws and seeds or {TEST_SPLIT}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
