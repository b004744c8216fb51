"""dgcl-eval and dgcl-predict (issue 17): a checkpoint evaluated again gives the numbers of its run's metrics.json,
on the embedded dataset and on a binary folder dataset whose DGCL term really ran; predictions are palette PNGs."""
import json
import math

import numpy as np
import pytest
from PIL import Image

from dgcl.data import make_horses
from dgcl.infer import eval_main, predict_main
from dgcl.train import main
from helpers import TINY, tiny_dataset
from test_folder import FOLDER_TINY


def same(a, b):
    "Equal numbers, NaN (metrics.json) and None (eval.json) both meaning 'class absent'."
    na, nb = a is None or (isinstance(a, float) and math.isnan(a)), b is None or (isinstance(b, float) and math.isnan(b))
    return (na and nb) or a == b


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("emb")
    run = base / "run"
    assert main(TINY + ["--data_root", str(tiny_dataset(base / "data")), "--run_dir", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("fold")
    data = make_horses(base / "horses", n_masked=10, n_unlabelled=4, sizes=(40, 64))
    run = base / "run"
    assert main(FOLDER_TINY + ["--data_root", str(data), "--split", "4", "--background", "--run_dir", str(run)]) == 0
    return run, data


def check_same_as_metrics(run, capsys, extra=()):
    metrics = json.loads((run / "metrics.json").read_text())
    for model, key, per_class in [("teacher", "miou", "per_class_iou"), ("student", "miou_student", "per_class_iou_student")]:
        out = run / f"eval-{model}"
        assert eval_main(["--checkpoint", str(run / "checkpoint.pt"), "--model", model, "--out", str(out), *extra]) == 0
        printed = capsys.readouterr().out
        ev = json.loads((out / "eval.json").read_text())
        assert ev["miou"] == metrics[key], (model, ev["miou"], metrics[key])
        assert ev["per_class_iou"].keys() == metrics[per_class].keys()
        assert all(same(ev["per_class_iou"][c], metrics[per_class][c]) for c in ev["per_class_iou"])
        assert f"mIoU {metrics[key]:.2f}" in printed and (out / "confusion.png").stat().st_size > 0
        conf = np.array(ev["confusion"])
        assert conf.shape == (len(ev["classes"]),) * 2 and conf.sum() > 0


def test_eval_equals_metrics_embedded(embedded_run, capsys):
    check_same_as_metrics(embedded_run, capsys)
    assert eval_main(["--checkpoint", str(embedded_run / "checkpoint.pt")]) == 0  # default: next to the checkpoint
    assert (embedded_run / "eval.json").exists() and (embedded_run / "confusion.png").exists()


def test_eval_equals_metrics_folder(folder_run, capsys):
    run, data = folder_run
    log = (run / "log.csv").read_text().splitlines()
    contra = [r.split(",")[5] for r in log[1:]]
    assert any(c and float(c) > 0 for c in contra), "L_contra never ran on the binary folder dataset"
    assert json.loads((run / "metrics.json").read_text())["contra_steps"] == sum(bool(c) for c in contra)
    assert (run / "splits" / "val.txt").read_text().split()  # the generated split, written into the run
    check_same_as_metrics(run, capsys)
    ev = json.loads((run / "eval-teacher" / "eval.json").read_text())
    assert ev["window"] == "sliding 48×48" and ev["classes"] == ["background", "horse"]


def test_eval_tta_and_other_splits(folder_run, tmp_path, capsys):
    run, data = folder_run
    assert eval_main(["--checkpoint", str(run / "checkpoint.pt"), "--scales", "0.5", "1", "--flip",
                      "--split", "all", "--out", str(tmp_path)]) == 0
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["images"] == 10 and ev["flip"] and ev["scales"] == [0.5, 1.0]
    assert "TTA scales 0.5 1.0 + flip" in capsys.readouterr().out


def test_predict(folder_run, tmp_path, capsys):
    run, data = folder_run
    out = tmp_path / "pred"
    one = data / "images" / "horse_011.jpg"
    assert predict_main(["--checkpoint", str(run / "checkpoint.pt"), str(data / "images"), "--out", str(out)]) == 0
    names = sorted(p.name for p in (data / "images").iterdir())
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [n.rsplit(".", 1)[0] + ".png" for n in names] + [n.rsplit(".", 1)[0] + "_overlay.jpg" for n in names])
    m = Image.open(out / "horse_011.png")
    assert m.mode == "P" and m.size == Image.open(one).size
    assert set(np.unique(np.array(m)).tolist()) <= {0, 1}
    assert Image.open(out / "horse_011_overlay.jpg").size == m.size
    assert predict_main(["--checkpoint", str(run / "checkpoint.pt"), str(one), "--out", str(tmp_path / "tta"),
                         "--tta"]) == 0
    assert Image.open(tmp_path / "tta" / "horse_011.png").mode == "P"


@pytest.mark.parametrize("which", ["eval", "predict"])
def test_bad_input(folder_run, tmp_path, capsys, which):
    run, data = folder_run
    if which == "eval":
        code = eval_main(["--checkpoint", str(tmp_path / "nope" / "checkpoint.pt")])
        expected = "checkpoint.pt does not exist"
    else:
        code = predict_main(["--checkpoint", str(run / "checkpoint.pt"), str(data / "images" / "horse_000.jpg"),
                             str(tmp_path / "missing.png"), "--out", str(tmp_path / "out")])
        expected = "missing.png does not exist"
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"dgcl-{which}: error: ") and expected in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_console_scripts(root):
    "Every console script of settings.ini names a function that exists."
    import configparser
    import importlib
    cfg = configparser.ConfigParser()
    cfg.read(root / "settings.ini")
    scripts = dict(s.split("=") for s in cfg["DEFAULT"]["console_scripts"].split())
    assert scripts["dgcl-eval"] == "dgcl.infer:eval_main" and scripts["dgcl-predict"] == "dgcl.infer:predict_main"
    for target in scripts.values():
        mod, fn = target.split(":")
        assert callable(getattr(importlib.import_module(mod), fn))


def test_eval_equals_metrics_official(tmp_path, capsys):
    "The authors' recipe: logits upsampled with align_corners and a multi-grid ResNet-50, rebuilt as the run built them."
    run = tmp_path / "run"
    args = TINY + ["--data_root", str(tiny_dataset(tmp_path / "data")), "--run_dir", str(run), "--recipe", "official",
                   "--backbone", "resnet50", "--multi_grid", "--output_stride", "16", "--max_steps", "3"]
    assert main(args) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["align_corners"] is True and m["multi_grid"] is True
    check_same_as_metrics(run, capsys)


def test_eval_equals_metrics_depthwise_fp32(tmp_path, capsys):
    "A bf16 run with its strided/dilated depthwise convs in float32 is rebuilt with them in float32: the same numbers."
    run = tmp_path / "run"
    args = TINY + ["--data_root", str(tiny_dataset(tmp_path / "data")), "--run_dir", str(run), "--amp", "bf16",
                   "--channels_last", "--depthwise_fp32", "--max_steps", "3"]
    assert main(args) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["depthwise_fp32"] is True and m["precision"] == "bf16"
    check_same_as_metrics(run, capsys)


def _confidence_tool():
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("confidence", Path(__file__).parents[1] / "tools" / "confidence.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_confidence_tool(embedded_run, tmp_path, capsys):
    "tools/confidence.py: threshold 0 keeps every pixel (kept accuracy = accuracy), above every confidence none; bad input exits 2."
    tool = _confidence_tool()
    keep_all, keep_none = tool.group_stats(embedded_run, 0.0), tool.group_stats(embedded_run, 1.0)
    for g in ("background", "digits"):
        acc, kept, acc_kept = (float(v) for v in keep_all[g])
        assert 0 <= acc <= 1 and kept == 1.0 and abs(acc_kept - acc) < 1e-6
        assert float(keep_none[g][0]) == acc and float(keep_none[g][1]) < 0.01
    assert tool.main([str(embedded_run), "--thresh", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "| run | replicates |" in out and f"| {embedded_run.name} | 1 |" in out
    assert tool.main([str(tmp_path), "--thresh", "0.5"]) == 2  # no checkpoint.pt
    assert tool.main([str(embedded_run), "--thresh", "1.5"]) == 2
    assert "allowed is 0..1" in capsys.readouterr().err


def test_eval_images_uses_the_runs_embedded_dataset(monkeypatch):
    "A run without data_root is evaluated on the embedded dataset it trained on: its image size and labelled draw."
    import dgcl.data
    from dgcl.infer import eval_images
    from dgcl.trainer import Config
    seen = {}
    class Built(Exception): pass
    def fake(**kw): seen.update(kw); raise Built
    monkeypatch.setattr(dgcl.data, "make_embedded", fake)  # built_root (dgcl.data) builds the run's dataset
    with pytest.raises(Built): eval_images(Config(image_size=96, split_seed=2, eval_split="test").filled(), 11)
    assert seen["size"] == 96 and seen["split_seeds"] == (2,) and seen["n_test"] > 0
