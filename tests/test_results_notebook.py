"""nbs/results.ipynb computes every results table from a runs folder: executed here on a fixture of made-up runs."""
import json
import random
import subprocess
import sys

import numpy as np
from scipy import stats

from dgcl.ablate import PRESETS, plan


def _fixture(folder):
    "Finished runs of the whole embedded plan with made-up numbers: DGCL +2 over supervised, replicate by replicate."
    rng = random.Random(0)
    base = {}
    for r in plan("embedded", out_dir=folder):
        r.run_dir.mkdir(parents=True, exist_ok=True)
        b = base.setdefault((r.split_seed, r.seed), 40 + 5 * rng.random())
        miou = b + {"selftrain": 1.0, "dgcl": 2.0}.get(r.value, 0.0) + rng.gauss(0, 0.5)
        r.metrics_path.write_text(json.dumps({**r.params, "miou": miou, "seconds": 100.0, "threads": 1,
                                              "precision": "bf16", "eval_split": "test",
                                              "val": {"teacher": miou + 1.0, "student": miou}}))
        if r.table == "main" and r.value in ("dgcl", "selftrain"):  # its float32 twin, scored on val
            d = folder.parent / "precision" / f"{r.value}-fp32-{r.split_seed}-{r.seed}"
            d.mkdir(parents=True)
            d.joinpath("metrics.json").write_text(json.dumps({**r.params, "split_seed": r.split_seed, "eval_split": "val",
                "miou_teacher": miou + 1.0 + rng.gauss(0, 0.5), "miou_student": miou, "precision": "float32"}))
    for name, method, epochs in (("dev-a", "supervised", 3), ("dev-b", "selftrain", 4)):
        d = folder.parent / "pilot" / name
        d.mkdir(parents=True)
        d.joinpath("metrics.json").write_text(json.dumps(dict(
            method=method, split=48, seed=100, epochs=epochs, lr=0.001, head_lr_mult=1.0, ema_decay=0.99, beta0=20.0,
            output_stride=16, miou_teacher=40.0, miou_student=41.0, seconds=10.0, threads=1, eval_split="val")))
    for name, lam in (("base", 1.0), ("lam01", 0.1)):  # diagnosis runs: config and log; one finished (metrics)
        d = folder.parent / "diagnosis" / name
        d.mkdir(parents=True)
        d.joinpath("config.json").write_text(json.dumps(dict(method="dgcl", lambda_contra=lam, tau=0.5, amp="bf16",
            channels_last=True, split_bn=True, clean_view=False, n_anchors=8, ema_decay=0.99, bank_in_warmup=True,
            eval_split="val", seed=100)))
        d.joinpath("log.csv").write_text(f"step,sup,contra\n0,0.5,\n175,{0.2 + lam},5.0\n176,{0.4 + lam},4.0\n300,9.0,9.0\n")
        if lam < 1: d.joinpath("metrics.json").write_text(json.dumps(dict(miou_teacher=50.0, eval_split="val")))
    for (ss, seed), base_v in {(0, 100): 40.0, (1, 101): 44.0}.items():  # exploratory SGD runs on val
        for method, gain in (("supervised", 0.0), ("selftrain", 1.5), ("dgcl", 2.5)):
            d = folder.parent / "sgd" / f"{method}-sgd-s{ss}-seed{seed}"
            d.mkdir(parents=True)
            d.joinpath("metrics.json").write_text(json.dumps(dict(method=method, split_seed=ss, seed=seed, optimizer="sgd",
                lr=0.01, head_lr_mult=10.0, miou_teacher=base_v + gain + 0.1 * ss, eval_split="val")))
            d.joinpath("log.csv").write_text(f"step,sup\n175,0.2\n176,0.4\n")
    d = folder.parent / "recorded" / "embedded-dgcl-n96-seed0"  # the recorded main job's anchor boundary shares
    d.mkdir(parents=True)
    d.joinpath("log.csv").write_text("step,contra,anchor_boundary\n0,,\n1,2.0,1:0.5:0.25 2:1:0.5\n2,2.0,1:0.3:0.25\n")
    _study(folder.parent / "study")
    return folder


def _study(sdir, rng=random.Random(1)):
    "A frozen cell, stage 2's first look (20 replicates) and part of stage 3, with made-up numbers; one grad_terms file."
    sdir.mkdir(parents=True)
    sdir.joinpath("frozen.json").write_text(json.dumps(dict(cell="bold-adamw", lambda_contra=0.125)))
    runs = [("test", m, i) for i in range(20) for m in ("supervised", "selftrain", "dgcl")]
    runs += [("tables", m, i) for i in range(6) for m in ("dgcl-l0.0625", "dgcl-l0.5")] + [("tables", "dgcl-densest", 0),
                                                                                          ("tables", "dgcl-densest", 1)]
    for folder, m, i in runs:
        d = sdir / folder / f"{m}-s{300 + i}-seed{300 + i}"
        d.mkdir(parents=True)
        miou = 60 + i + {"selftrain": 3.0, "dgcl": 4.0, "dgcl-l0.5": 1.0}.get(m, 2.0 if m != "supervised" else 0.0) + rng.gauss(0, 1)
        d.joinpath("metrics.json").write_text(json.dumps(dict(miou=miou, processor="CPU", threads=1, eval_split="test-d2",
                                                              per_class_iou={str(c): miou + c for c in range(11)})))
    for i in range(3):  # stage 1 in one cell: the dev pair and DGCL at each λ (0.125 beats self-training by 1, 0.5 loses 5)
        for m, v in (("supervised", 50.0), ("selftrain", 53.0), ("dgcl-l0.125", 54.0), ("dgcl-l0.5", 48.0), ("dgcl-l0", 53.0)):
            d = sdir / "dev" / "bold-adamw" / f"{m}-s{200 + i}-seed{200 + i}"
            d.mkdir(parents=True)
            d.joinpath("metrics.json").write_text(json.dumps(dict(miou=v + i, processor="CPU", threads=1, eval_split="val")))
    (sdir / "grad_terms").mkdir()
    (sdir / "grad_terms" / "dgcl-s300-seed300.json").write_text(json.dumps(dict(
        run="runs/study/test/dgcl-s300-seed300", cos_sup_contra=0.25,
        grad_norm={"backbone": dict(sup=2.0, unsup=1.0, contra=1.0), "classifier": dict(sup=1.0, unsup=1.0),
                   "proj": dict(contra=0.5)})))  # the projection head: L_contra only


def _miou(sdir, folder, m, i):
    return json.loads((sdir / folder / f"{m}-s{300 + i}-seed{300 + i}" / "metrics.json").read_text())["miou"]


def test_results_notebook(root, tmp_path):
    runs = _fixture(tmp_path / "runs")
    out = tmp_path / "results.ipynb"
    cmd = [sys.executable, "-m", "papermill", str(root / "nbs" / "results.ipynb"), str(out), "--cwd", str(root / "nbs"),
           "-p", "out", str(runs), "-k", "python3", "--log-level", "WARNING"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    md = (runs / "results.md").read_text()
    # the DGCL − supervised row equals a direct paired t computation over the six replicates
    main = [p for p in plan("embedded", out_dir=runs) if p.table == "main"]
    get = lambda m, ss, k: next(json.loads(p.metrics_path.read_text())["miou"] for p in main
                                if p.value == m and p.split_seed == ss and p.seed == k)
    d = np.array([get("dgcl", ss, k) - get("supervised", ss, k) for ss, k in PRESETS["embedded"]["main_reps"]])
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    row = f"| dgcl − supervised | {len(d)} | {d.mean():+.2f} | [{d.mean() - half:+.2f}, {d.mean() + half:+.2f}] |"
    assert row in md, md
    for t in ("lambda_contra", "tau", "beta0", "n_anchors", "anchors"): assert f"**{t}**" in md
    assert "sparsest − densest" in md and "unimatch_dgcl-perturbed − unimatch" in md and (runs / "main_paired.png").exists()
    # the framework cells against the main table's baselines, paired on its six replicates
    assert "| unimatch − selftrain | 6 |" in md and "| unimatch_dgcl-clean − supervised | 6 |" in md, md
    # bf16 − fp32 on val: the main table's recorded val scores against the float32 twins, paired by replicate
    prec = [json.loads(p.read_text()) for p in sorted((runs.parent / "precision").glob("*/metrics.json"))]
    for method in ("dgcl", "selftrain"):
        fp32 = {(m["split_seed"], m["seed"]): m["miou_teacher"] for m in prec if m["method"] == method}
        e = np.array([json.loads(p.metrics_path.read_text())["val"]["teacher"] - fp32[p.split_seed, p.seed]
                      for p in main if p.value == method])
        half = stats.t.ppf(0.975, len(e) - 1) * e.std(ddof=1) / np.sqrt(len(e))
        row = f"| {method} | bf16 − fp32 | {len(e)} | {e.mean():+.2f} | [{e.mean() - half:+.2f}, {e.mean() + half:+.2f}] |"
        assert row in (runs / "precision.md").read_text(), (runs / "precision.md").read_text()
    sgd = (runs / "sgd.md").read_text()  # paired by replicate: +2.5 and +2.5 → mean +2.50, zero spread
    assert "| dgcl − supervised | 2 | +2.50 | [+2.50, +2.50] |" in sgd and "| selftrain − supervised | 2 | +1.50 |" in sgd, sgd
    assert "| 0.3 |" in sgd, sgd  # the mean supervised loss of the window
    diag = (runs / "diagnosis.md").read_text()
    # sup and contra averaged over the window of the first semi-supervised steps (step 300 is outside it)
    assert "| lam01 | dgcl | 0.1 | 301 | 0.4 | 4.5 | 50.0 |" in diag and "| base | dgcl | 1.0 | 301 | 1.3 | 4.5 | – |" in diag, diag
    bnd = (runs / "boundary.md").read_text()  # pooled over the 3 (step, class) pairs; class 1 is the digit '0'
    assert "over 3 (step, class) pairs of 2 steps: anchors **60.0%**, base rate **33.3%**" in bnd, bnd
    assert "| 0 | 2 | 40.0 | 25.0 | 15.0 |" in bnd, bnd
    sdir, study = tmp_path / "study", (runs / "study.md").read_text()  # stage 2's verdict and stage 3's rows, restated
    d = np.array([_miou(sdir, "test", "dgcl", i) - _miou(sdir, "test", "selftrain", i) for i in range(20)])
    half = stats.t.ppf(1 - 0.0294 / 2, 19) * d.std(ddof=1) / np.sqrt(20)
    v = "harms" if d.mean() + half < 0 else "helps" if d.mean() - half > 0 else "no gain worth having" if d.mean() + half < 2 else "inconclusive"
    assert (f"20 pairs on `test-d2` (bold-adamw, λ_contra = 0.125): DGCL − self-training {d.mean():+.2f} "
            f"[{d.mean() - half:+.2f}, {d.mean() + half:+.2f}] (Pocock 97.06%): {v}.**") in study, study
    verdict = (runs / "verdict.md").read_text()  # the README's first screen: the same interval and verdict as a row
    assert f"| dgcl − selftrain | 20 | {d.mean():+.2f} | [{d.mean() - half:+.2f}, {d.mean() + half:+.2f}] | **{v}** |" in verdict, verdict
    assert verdict.splitlines()[0].startswith("| paired difference | pairs | mean | 97.06% Pocock interval | verdict |"), verdict
    assert "| bold-adamw | 3 | 51.00 | 54.00 | +3.00 | **pass** |" in study, study
    assert "| bold-adamw | 0.125 | 3 | +1.00 | 0.00 |" in study and "| bold-adamw | 0.5 | 3 | -5.00 | 0.00 |" in study, study
    assert "points at **bold-adamw, λ = 0.125**" in study, study
    e = np.array([_miou(sdir, "tables", "dgcl-l0.5", i) - _miou(sdir, "test", "selftrain", i) for i in range(6)])
    half = stats.t.ppf(0.975, 5) * e.std(ddof=1) / np.sqrt(6)
    assert f"| 0.5 | 6 | {np.mean([_miou(sdir, 'tables', 'dgcl-l0.5', i) for i in range(6)]):.2f} | {e.mean():+.2f} [{e.mean() - half:+.2f}, {e.mean() + half:+.2f}] |" in study, study
    assert "| 0.25 | 0 |" in study and "| densest | 2 |" in study and "| random | 0 |" in study and "| 0.5 | 0.25 |" in study, study
    pilot = (runs / "pilot.md").read_text()
    assert "| dev-a | supervised |" in pilot and "| 4 |" in pilot, pilot  # the varied field (epochs) is shown


def test_results_notebook_refuses_val_scores(root, tmp_path):
    runs = _fixture(tmp_path / "runs")
    first = plan("embedded", out_dir=runs)[0]
    first.metrics_path.write_text(json.dumps({**json.loads(first.metrics_path.read_text()), "eval_split": "val"}))
    cmd = [sys.executable, "-m", "papermill", str(root / "nbs" / "results.ipynb"), str(tmp_path / "o.ipynb"),
           "--cwd", str(root / "nbs"), "-p", "out", str(runs), "-k", "python3", "--log-level", "WARNING"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "scored on val" in (r.stderr + r.stdout)
