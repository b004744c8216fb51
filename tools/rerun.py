"""A finished run again with some fields changed:
`python tools/rerun.py runs/ablations/framework/unimatch-n96-seed0 runs/explore/unimatch-test-thresh0-n96-seed0 conf_thresh=0`.

Every field of the source run's `config.json` is passed to `dgcl-train` (same recipe, data, replicate and seed),
then the `FIELD=VALUE` changes, with `run_dir` set to the new folder. A new folder that holds a checkpoint is resumed;
one that holds a finished run is refused."""
import argparse
import json
import sys
from pathlib import Path


def train_argv(config: dict, changes: dict, run_dir: Path) -> list[str]:
    "The `dgcl-train` arguments that remake `config` with `changes`, in `run_dir` (resumed when it holds a checkpoint)."
    d = {**config, **changes, "run_dir": str(run_dir)}
    argv = []
    for k, v in d.items():
        if k == "resume" or v is None: continue
        argv += [f"--{k}" if v else f"--no-{k}"] if isinstance(v, bool) else [f"--{k}", str(v)]
    return argv + (["--resume"] if (run_dir / "checkpoint.pt").is_file() else [])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", type=Path, help="the finished run's folder (its config.json)")
    ap.add_argument("to", type=Path, help="the new run's folder")
    ap.add_argument("changes", nargs="*", help="FIELD=VALUE, as dgcl-train's --FIELD VALUE")
    a = ap.parse_args(argv)
    if not (a.source / "config.json").is_file():
        print(f"rerun: {a.source} has no config.json: allowed are run folders", file=sys.stderr); return 2
    if (a.to / "metrics.json").is_file():
        print(f"rerun: {a.to} holds a finished run: allowed is a new folder or an interrupted run's", file=sys.stderr); return 2
    bad = [c for c in a.changes if "=" not in c]
    if bad: print(f"rerun: {bad[0]!r} is not FIELD=VALUE", file=sys.stderr); return 2
    from dgcl.config import upgrade_config
    config = upgrade_config(json.loads((a.source / "config.json").read_text()))  # an older run: today's fields
    changes = dict(c.split("=", 1) for c in a.changes)
    unknown = [k for k in changes if k not in config]
    if unknown: print(f"rerun: {unknown[0]!r} is not a field of {a.source}/config.json", file=sys.stderr); return 2
    from dgcl.train import main as train
    return train(train_argv(config, changes, a.to))


if __name__ == "__main__":
    sys.exit(main())
