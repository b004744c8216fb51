"""Bad input: one line naming the value and what is allowed, exit code 2, nothing overwritten (issue 5)."""
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dgcl.train import main
from helpers import TINY, tiny_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"))


def run_main(capsys, args):
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def broken_copy(data, tmp_path):
    dst = tmp_path / "data"
    shutil.copytree(data, dst)
    return dst


@pytest.mark.parametrize("args, expected", [
    (["--tau", "0"], "tau=0.0 is out of range: allowed is tau > 0"),
    (["--beta0", "150"], "beta0=150.0 is out of range: allowed is 0..100"),
    (["--n_anchors", "0"], "n_anchors=0 is out of range"),
    (["--memory_size", "2", "--memory_per_update", "3"], "memory_size=2 is out of range: allowed is ≥ memory_per_update (3)"),
    (["--batch_size", "1"], "CutMix pastes image i+1 into image i"),
    (["--backbone", "resnet1000"], "unknown backbone 'resnet1000'"),
    (["--method", "fixmatch"], "method='fixmatch' is out of range"),
    (["--split", "13"], "unknown split 13"),
    (["--method", "unimatch", "--conf_thresh", "1.5"], "conf_thresh=1.5 is out of range: allowed is 0..1"),
    (["--sim_dtype", "float16"], "sim_dtype='float16' is out of range: allowed is float32 or bfloat16"),
    (["--method", "unimatch_dgcl", "--contra_on", "strong", "--recipe", "official"],
     "contra_on='strong' is out of range: allowed is weak when contra_labels_at is features"),
])
def test_bad_parameters(capsys, data, tmp_path, args, expected):
    run_dir = tmp_path / "run"
    code, err = run_main(capsys, TINY + ["--data_root", str(data), "--run_dir", str(run_dir)] + args)
    assert code == 2, err
    assert expected in err and len(err.splitlines()) == 1, err
    assert not (run_dir / "checkpoint.pt").exists()


def test_missing_data_root(capsys, tmp_path):
    code, err = run_main(capsys, TINY + ["--dataset", "pascal", "--split", "366", "--data_root", str(tmp_path / "nope"),
                                         "--run_dir", str(tmp_path / "run")])
    assert code == 2 and "does not exist" in err and str(tmp_path / "nope") in err and len(err.splitlines()) == 1


def test_unknown_shipped_split(capsys, tmp_path):
    code, err = run_main(capsys, ["--dataset", "pascal", "--split", "100", "--data_root", str(tmp_path)])
    assert code == 2 and "unknown split 100" in err and "92, 183, 366" in err


def test_split_names_missing_file(capsys, data, tmp_path):
    root = broken_copy(data, tmp_path)
    name = (root / "splits" / "12" / "labeled.txt").read_text().split()[0]
    (root / "JPEGImages" / f"{name}.jpg").unlink()
    code, err = run_main(capsys, TINY + ["--data_root", str(root), "--run_dir", str(tmp_path / "run")])
    assert code == 2 and "missing" in err and name in err, err


def test_label_out_of_range(capsys, data, tmp_path):
    root = broken_copy(data, tmp_path)
    name = (root / "splits" / "12" / "labeled.txt").read_text().split()[0]
    p = root / "SegmentationClassAug" / f"{name}.png"
    lab = np.array(Image.open(p)); lab[0, 0] = 40
    Image.fromarray(lab).save(p)
    code, err = run_main(capsys, TINY + ["--data_root", str(root), "--run_dir", str(tmp_path / "run")])
    assert code == 2 and "40" in err and "outside 0..10 and 255" in err and str(p) in err, err


def test_corrupt_image(capsys, data, tmp_path):
    root = broken_copy(data, tmp_path)
    name = (root / "splits" / "12" / "unlabeled.txt").read_text().split()[0]
    p = root / "JPEGImages" / f"{name}.jpg"
    p.write_bytes(b"this is not a jpeg")
    code, err = run_main(capsys, TINY + ["--data_root", str(root), "--run_dir", str(tmp_path / "run")])
    assert code == 2 and "corrupt" in err and str(p) in err, err


def test_run_dir_of_another_run(capsys, data, tmp_path):
    run_dir = tmp_path / "run"
    args = TINY + ["--data_root", str(data), "--run_dir", str(run_dir), "--max_steps", "2"]
    assert main(args) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    code, err = run_main(capsys, args + ["--tau", "0.1"])
    assert code == 2 and "holds a checkpoint of a run with other parameters (tau=0.5 there, 0.1 here)" in err
    code, err = run_main(capsys, args)
    assert code == 2 and "pass resume=True (--resume)" in err
    assert before == {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}  # nothing overwritten


def test_module_exit_code(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dgcl.train", "--tau", "-1", "--run_dir", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.strip() == "dgcl-train: error: tau=-1.0 is out of range: allowed is tau > 0"


def test_nonfinite_loss_skips_then_stops(data, tmp_path):
    """A non-finite term skips the step with a warning naming it; max_bad_steps in a row stop the run, the last good
    checkpoint intact."""
    import torch
    from dgcl.train import parse_config
    from dgcl.trainer import Trainer
    run_dir = tmp_path / "run"
    tr = Trainer(parse_config(TINY + ["--data_root", str(data), "--run_dir", str(run_dir), "--ckpt_every", "2",
                                      "--max_bad_steps", "3"]), quiet=True)
    good = tr.sup_loss
    tr.sup_loss = lambda out, y: good(out, y) * (float("nan") if tr.step >= 4 else 1.0)
    with pytest.warns(UserWarning, match="non-finite loss term sup"):
        with pytest.raises(FloatingPointError, match="3 non-finite losses in a row"):
            tr.fit()
    ck = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 6 and ck["skipped"] == 2  # saved after the second bad step, before the third stopped the run
    assert all(torch.isfinite(v).all() for v in ck["student"].values() if v.is_floating_point())
