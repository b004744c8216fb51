"""`python -m dgcl.gpucheck`: the CPU dry run exercises every step of the GPU check; the real run needs CUDA."""
import json
import subprocess
import sys

import pytest
import torch

KEYS = ("device", "torch", "dgcl_step", "train_step", "runs", "resume", "seconds")


def test_dry_run_on_cpu(tmp_path):
    out = tmp_path / "gc.json"
    r = subprocess.run([sys.executable, "-m", "dgcl.gpucheck", "--device", "cpu", "--out", str(out)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    j = json.loads(out.read_text())
    for k in KEYS: assert k in j, k
    assert set(j["runs"]) == {"none", "bf16", "fp16"}
    for amp, run in j["runs"].items():
        assert run["precision"] == amp and run["device"] == "cpu" and run["contra_steps"] > 0, (amp, run)
    res = j["resume"]
    assert res["same_schedule"] and res["identical"], res  # on the CPU a resumed run is bit-identical
    assert set(j["train_step"]["fp32_over_fast"]) == {"dgcl"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpucheck_on_cuda(tmp_path):
    out = tmp_path / "gc.json"
    r = subprocess.run([sys.executable, "-m", "dgcl.gpucheck", "--out", str(out)], capture_output=True, text=True,
                       timeout=3600)
    assert r.returncode == 0, r.stderr[-2000:]
    j = json.loads(out.read_text())
    assert j["device"] == "cuda" and j["resume"]["same_schedule"], j["resume"]
    for amp, run in j["runs"].items():
        assert "skipped" in run or run["skipped_steps"] == 0, (amp, run)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_train_step_bench_on_cuda():
    from dgcl.bench import TINY, train_step_bench
    res = train_step_bench(1, variants=("fp32", "bf16"), kinds=("dgcl",), overrides=TINY, device="cuda", log=lambda s: None)
    assert res["device"].startswith("cuda") and res["median_s"]["bf16"]["dgcl"] > 0
