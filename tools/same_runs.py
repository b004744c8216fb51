"""Behaviour check for refactors: run a fixed set of short runs, then compare two such sets.

    python tools/same_runs.py make DIR [NAME ...]  # the runs below (or those named) into DIR/<name>/, finished ones skipped
    python tools/same_runs.py compare A B     # byte-identical log.csv, equal metrics.json values (time and paths aside)

The set: DGCL, self-training, UniMatch + DGCL, supervised and `recipe=official` DGCL, 250 steps each on the embedded
testbed (50 warm-up steps, a bank small enough that L_contra runs), and the DGCL run again, stopped at step 150 and
resumed. Made before a refactor and after it, on one processor and thread count, the two sets must agree exactly.
Exit code 0 when they do, 1 when they differ (each difference printed), 2 for bad input.
"""
import argparse
import dataclasses
import json
import sys
from pathlib import Path

SHORT = dict(steps_per_epoch=50, epochs=5, memory_size=400, memory_per_update=100, figures=False, num_workers=0)
RUNS = {  # name: Config fields on top of SHORT
    "dgcl": dict(method="dgcl"),
    "selftrain": dict(method="selftrain"),
    "unimatch_dgcl": dict(method="unimatch_dgcl"),
    "supervised": dict(method="supervised"),
    "official_dgcl": dict(method="dgcl", recipe="official"),
    "dgcl_resumed": dict(method="dgcl"),  # stopped after step 150, then resumed to the end
}
VOLATILE = {"seconds", "run_dir", "data_root"}  # time and paths


def make(out: Path, names=()):
    from dgcl.trainer import Config, Trainer
    for name, fields in RUNS.items():
        if names and name not in names: continue
        d = out / name
        if (d / "metrics.json").exists(): print(f"{name}: finished, skipped"); continue
        cfg = Config(**SHORT, **fields, run_dir=str(d))
        if name == "dgcl_resumed" and not (d / "checkpoint.pt").exists():
            Trainer(dataclasses.replace(cfg, max_steps=150), quiet=True).fit()
        m = Trainer(dataclasses.replace(cfg, resume=(d / "checkpoint.pt").exists()), quiet=True).fit()
        print(f"{name}: teacher {m['miou']:.4f}, L_contra on {m['contra_steps']} steps, {m['seconds']:.0f} s")


def _flat(m: dict) -> dict:
    "metrics.json with the run's configuration read through `upgrade_config` (an older run's fields as today's)."
    from dgcl.config import upgrade_config
    return {k: v for k, v in {**m, **upgrade_config(m)}.items() if k not in VOLATILE}


def compare(a: Path, b: Path) -> int:
    bad = []
    for name in RUNS:
        for d in (a, b):
            if not (d / name / "metrics.json").exists(): bad.append(f"{d / name}: no metrics.json")
        if bad and bad[-1].endswith("no metrics.json"): continue
        if (a / name / "log.csv").read_bytes() != (b / name / "log.csv").read_bytes(): bad.append(f"{name}: log.csv differs")
        ma, mb = (_flat(json.loads((d / name / "metrics.json").read_text())) for d in (a, b))
        for k in sorted(set(ma) | set(mb)):
            if ma.get(k, "<missing>") != mb.get(k, "<missing>"):
                bad.append(f"{name}: metrics.json {k}: {ma.get(k, '<missing>')!r} against {mb.get(k, '<missing>')!r}")
    print("\n".join(bad) if bad else f"{len(RUNS)} runs: log.csv byte-identical, metrics.json equal (time and paths aside)")
    return 1 if bad else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make"); mk.add_argument("out", type=Path); mk.add_argument("names", nargs="*", help=f"of {', '.join(RUNS)}")
    c = sub.add_parser("compare"); c.add_argument("a", type=Path); c.add_argument("b", type=Path)
    args = ap.parse_args()
    if args.cmd == "make":
        bad = [n for n in args.names if n not in RUNS]
        if bad: ap.error(f"run {bad[0]!r} is unknown: allowed are {', '.join(RUNS)}")
        make(args.out, args.names)
    else:
        for d in (args.a, args.b):
            if not d.is_dir(): ap.error(f"{d} is not a folder of runs made by `same_runs.py make`")
        sys.exit(compare(args.a, args.b))
