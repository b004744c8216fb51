"""Exact resume (issue 5): a run killed part-way (SIGKILL, SIGTERM) and resumed ends with the same metrics.json."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import TINY, tiny_dataset

KEYS = ("miou", "miou_student", "per_class_iou", "per_class_iou_student", "steps", "skipped_steps")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume")
    data = tiny_dataset(base / "data")
    args = [sys.executable, "-m", "dgcl.train", *TINY, "--data_root", str(data), "--ckpt_every", "3", "--seed", "5"]
    ref = base / "reference"
    r = subprocess.run(args + ["--run_dir", str(ref)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return base, args, json.loads((ref / "metrics.json").read_text())


def _wait_for_step(run_dir, step, proc, timeout=300):
    t0 = time.time()
    while time.time() - t0 < timeout:
        log = run_dir / "log.csv"
        if log.exists() and len(log.read_text().splitlines()) - 1 >= step: return
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    raise TimeoutError


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_interrupt_and_resume(setup, sig):
    base, args, reference = setup
    run_dir = base / sig.name
    proc = subprocess.Popen(args + ["--run_dir", str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_step(run_dir, 7, proc)  # past the warm-up, into the DGCL steps
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    if sig == signal.SIGTERM:
        assert proc.returncode == 143 and "resume" in err.strip().splitlines()[-1], err
    else:
        assert proc.returncode == -signal.SIGKILL
    assert (run_dir / "checkpoint.pt").exists() and not (run_dir / "metrics.json").exists()
    r = subprocess.run(args + ["--run_dir", str(run_dir), "--resume"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    resumed = json.loads((run_dir / "metrics.json").read_text())
    for k in KEYS: assert resumed[k] == reference[k], (k, resumed[k], reference[k])
    assert resumed["contra_steps"] > 0 and resumed["contra_steps"] == reference["contra_steps"]


CONSISTENCY = {"unimatch": ["--method", "unimatch", "--conf_thresh", "0"],  # 0: L_u on every pixel of a tiny run
               "unimatch_dgcl_strong": ["--method", "unimatch_dgcl", "--contra_on", "strong", "--conf_thresh", "0"]}


@pytest.mark.parametrize("name", list(CONSISTENCY))
def test_consistency_resume(setup, name):
    "Weak-to-strong consistency (SPEC §11): strong views, CutMix boxes and fp dropout are drawn from (seed, step), so a run killed past the warm-up resumes exactly."
    base, args, _ = setup
    args = args + CONSISTENCY[name]
    ref = base / f"{name}-reference"
    r = subprocess.run(args + ["--run_dir", str(ref)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    reference = json.loads((ref / "metrics.json").read_text())
    run_dir = base / f"{name}-killed"
    proc = subprocess.Popen(args + ["--run_dir", str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_step(run_dir, 7, proc)  # past the warm-up (5 steps) and the checkpoint at step 6
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=300)
    assert (run_dir / "checkpoint.pt").exists() and not (run_dir / "metrics.json").exists()
    r = subprocess.run(args + ["--run_dir", str(run_dir), "--resume"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    resumed = json.loads((run_dir / "metrics.json").read_text())
    for k in KEYS: assert resumed[k] == reference[k], (k, resumed[k], reference[k])
    assert resumed["method"] == reference["method"] == CONSISTENCY[name][1]
    if "dgcl" in name: assert resumed["contra_steps"] > 0 and resumed["contra_steps"] == reference["contra_steps"]
    rows = lambda d: [r.split(",")[:6] for r in (d / "log.csv").read_text().splitlines()]
    assert rows(run_dir) == rows(ref) and all(float(r[4]) > 0 for r in rows(ref)[6:])  # every step, L_u included
