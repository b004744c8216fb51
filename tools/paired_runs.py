"""Two sets of finished runs compared paired by replicate:
`python tools/paired_runs.py 'runs/explore/unimatch-test-thresh0-*' 'runs/ablations/framework/unimatch-n96*' --score test`.

A replicate is (split_seed, seed) from each run's `config.json`, so the two sets pair on the same labelled images and
the same training seed. The score is read from `metrics.json`: `test` is the final teacher's mIoU of a run made with
`eval_split=test`; `val` is the final teacher's mIoU on the val images, which every run with `eval_paper` records
per epoch (`paper_protocol.per_epoch`), whatever its `eval_split`. Prints each set's mean ± sd and b − a with its
95 % t-interval (`dgcl.ablate.paired`), as markdown."""
import argparse
import glob
import json
import sys
from pathlib import Path


def scores(pattern: str, score: str) -> dict:
    "{(split_seed, seed): mIoU} of the finished runs whose folders match `pattern`; ValueError naming what is wrong."
    runs = sorted(Path(p) for p in glob.glob(pattern) if (Path(p) / "metrics.json").is_file())
    if not runs: raise ValueError(f"{pattern!r} matches no finished run (a folder with metrics.json)")
    out = {}
    for r in runs:
        c, m = json.loads((r / "config.json").read_text()), json.loads((r / "metrics.json").read_text())
        if score == "test":
            if m.get("eval_split") != "test": raise ValueError(f"{r} was scored on {m.get('eval_split')!r}: --score test needs eval_split=test runs")
            v = m["miou"]
        else:
            last = ((m.get("paper_protocol") or {}).get("per_epoch") or [{}])[-1]
            if "teacher" not in last: raise ValueError(f"{r} has no per-epoch val scores: --score val needs runs made with eval_paper")
            v = last["teacher"]
        key = (c["split_seed"], c["seed"])
        if key in out: raise ValueError(f"{pattern!r} holds two runs of replicate split_seed={key[0]}, seed={key[1]}")
        out[key] = v
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", help="glob of the baseline runs' folders (quote it)")
    ap.add_argument("b", help="glob of the compared runs' folders (quote it)")
    ap.add_argument("--score", default="test", help="test (default) or val")
    ap.add_argument("--names", nargs=2, default=None, help="labels of a and b (default: the globs)")
    args = ap.parse_args(argv)
    if args.score not in ("test", "val"):
        print(f"paired_runs: --score={args.score!r}: allowed are test and val", file=sys.stderr); return 2
    try: sa, sb = scores(args.a, args.score), scores(args.b, args.score)
    except ValueError as e: print(f"paired_runs: {e}", file=sys.stderr); return 2
    import numpy as np
    import pandas as pd
    from dgcl.ablate import paired
    na, nb = args.names or (args.a, args.b)
    rows = [dict(table="t", value=v, split=0, split_seed=k[0], seed=k[1], miou=x) for v, s in (("a", sa), ("b", sb)) for k, x in s.items()]
    p = paired(pd.DataFrame(rows), "t", "a", "b")
    if p["n"] == 0:
        print(f"paired_runs: {args.a!r} and {args.b!r} share no replicate (split_seed, seed)", file=sys.stderr); return 2
    print(f"| runs ({args.score}) | replicates | mIoU (mean ± sd) |\n| --- | --- | --- |")
    for n, s in ((na, sa), (nb, sb)):
        v = np.array(list(s.values())); print(f"| {n} | {len(v)} | {v.mean():.2f} ± {v.std(ddof=1) if len(v) > 1 else float('nan'):.2f} |")
    print(f"\n| paired difference | pairs | mean | 95 % interval | sd |\n| --- | --- | --- | --- | --- |")
    print(f"| {nb} − {na} | {p['n']} | {p['mean']:+.2f} | [{p['lo']:+.2f}, {p['hi']:+.2f}] | {p['sd']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
