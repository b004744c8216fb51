"""torchrun with 2 gloo processes on CPU (issue 6): the DGCL branch runs and both ranks end with identical replicas."""
import json
import subprocess
import sys

import pytest

from helpers import TINY, tiny_dataset


@pytest.mark.parametrize("extra", [["--no-split_bn", "--contra_grad_divisor", "4"], ["--split_bn"]], ids=["joint-bn", "split-bn"])
def test_two_ranks_identical(tmp_path, extra):
    data = tiny_dataset(tmp_path / "data")
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dgcl.train",
           *TINY, "--data_root", str(data), "--run_dir", str(run_dir), "--device", "cpu", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-4000:]
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["steps"] == 10
    assert m["contra_steps"] > 0, "the DGCL branch never ran"
    a, b = m["replica_checksums"]
    assert a == b, "the two ranks hold different weights or banks"
    assert len((run_dir / "log.csv").read_text().splitlines()) == 11  # rank 0 alone writes the log
    # the step's weight of L_contra is λ_contra / contra_grad_divisor, whatever the world size (DDP averages the ranks)
    assert m["lambda_contra_effective"] == m["lambda_contra"] / (4 if "--contra_grad_divisor" in extra else 1)


def test_two_ranks_consistency(tmp_path):
    "Weak-to-strong consistency + DGCL on the strong views (SPEC §11) under DDP: one student call a step, identical replicas."
    data = tiny_dataset(tmp_path / "data")
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dgcl.train",
           *TINY, "--data_root", str(data), "--run_dir", str(run_dir), "--device", "cpu", "--method", "unimatch_dgcl",
           "--contra_on", "strong", "--conf_thresh", "0"]  # 0: L_u on every pixel of a tiny run
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-4000:]
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["steps"] == 10 and m["method"] == "unimatch_dgcl"
    assert m["contra_steps"] > 0, "the DGCL term never ran"
    a, b = m["replica_checksums"]
    assert a == b, "the two ranks hold different weights or banks"
    rows = [r.split(",") for r in (run_dir / "log.csv").read_text().splitlines()[1:]]
    assert all(float(r[4]) > 0 for r in rows[5:]), "L_u missing from a semi-supervised step"
