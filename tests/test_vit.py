"""ViT encoders (issue 18): a tiny DGCL run with a timm ViT (no weights) trains through the unchanged trainer, its
contrastive term runs, and the checkpoint, rebuilt by dgcl-eval, gives the run's own numbers."""
import json

import pytest
import torch

from dgcl.infer import eval_main
from dgcl.model import ViTSeg, build_model
from dgcl.train import main
from helpers import TINY, tiny_dataset

VIT = ["--backbone", "vit_tiny_patch16_224", "--optimizer", "adamw", "--lr", "0.0005", "--head_lr_mult", "10"]


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("vit")
    run = base / "run"
    assert main(TINY + VIT + ["--data_root", str(tiny_dataset(base / "data")), "--run_dir", str(run)]) == 0
    return run


def test_vit_run_trains_with_dgcl(vit_run):
    m = json.loads((vit_run / "metrics.json").read_text())
    assert m["steps"] == 10 and m["contra_steps"] > 0, m  # the DGCL term ran through the ViT's fts and rep
    assert m["skipped_steps"] == 0
    ck = torch.load(vit_run / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ck["config"]["backbone"] == "vit_tiny_patch16_224" and any(k.startswith("head.lateral") for k in ck["student"])


def test_vit_checkpoint_evaluates_to_its_metrics(vit_run, capsys):
    metrics = json.loads((vit_run / "metrics.json").read_text())
    out = vit_run / "eval-teacher"
    assert eval_main(["--checkpoint", str(vit_run / "checkpoint.pt"), "--out", str(out)]) == 0
    assert json.loads((out / "eval.json").read_text())["miou"] == metrics["miou"]


def test_vit_refuses_multi_grid():
    with pytest.raises(ValueError, match="multi_grid=True applies to ResNet stages"):
        build_model(21, "vit_tiny_patch16_224", multi_grid=True)
    assert isinstance(build_model(21, "vit_tiny_patch16_224", head_dim=8, proj_dim=8), ViTSeg)
