"""Folder datasets (issue 17): bad input is one line and exit 2 with nothing written; masks saved as 0/255 are
refused with the fix, and accepted with --label_map 255:1."""
import shutil

import numpy as np
import pytest
from PIL import Image

from dgcl.data import make_horses
from dgcl.train import main, parse_config
from dgcl.trainer import Trainer

FOLDER_TINY = ["--dataset", "folder", "--backbone", "resnet10t", "--output_stride", "8", "--epochs", "2",
               "--sup_only_epochs", "1", "--steps_per_epoch", "3", "--batch_size", "2", "--crop", "48",
               "--memory_size", "3", "--memory_per_update", "3", "--n_anchors", "8", "--n_neg", "32",
               "--head_dim", "16", "--proj_dim", "16", "--num_workers", "0", "--eval_batch_size", "1", "--no-figures"]


@pytest.fixture(scope="module")
def horses(tmp_path_factory):
    return make_horses(tmp_path_factory.mktemp("h") / "horses", n_masked=10, n_unlabelled=4, sizes=(40, 64))


def copy(horses, tmp_path):
    dst = tmp_path / "data"
    shutil.copytree(horses, dst)
    return dst


def no_images(r):
    for p in (r / "images").iterdir(): p.unlink()
    shutil.rmtree(r / "masks")


def wrong_size(r): Image.fromarray(np.zeros((7, 9), np.uint8)).save(r / "masks/horse_002.png")


def value_9(r):
    m = np.array(Image.open(r / "masks/horse_001.png")); m[3, 3] = 9
    Image.fromarray(m).save(r / "masks/horse_001.png")


def unreadable(r): (r / "images/horse_012.jpg").write_bytes(b"not a jpeg")


def unreadable_mask(r): (r / "masks/horse_003.png").write_bytes(b"not a png")


def split_names_missing(r):
    (r / "splits").mkdir()
    (r / "splits/labelled.txt").write_text("horse_000.jpg\nhorse_001\n")
    (r / "splits/val.txt").write_text("horse_ghost.jpg\n")


def nothing(r): pass


@pytest.mark.parametrize("tweak, args, expected", [
    (no_images, [], "no images (*.jpg, *.jpeg, *.png) in"),
    (wrong_size, [], "horse_002.png is 9×7 but its image"),
    (value_9, [], "horse_001.png holds values {9} that are no class: classes are 0..1 (classes.txt), ignored is 255"),
    (unreadable, [], "horse_012.jpg is unreadable or corrupt"),
    (unreadable_mask, [], "horse_003.png is unreadable or corrupt"),
    (split_names_missing, [], "val.txt names 'horse_ghost.jpg', which is not an image under"),
    (nothing, ["--split", "9"], "split=9 is out of range: 8 images with a mask are left for training"),
    (nothing, ["--skip_classes", "0,1"], "skips every class"),
    (nothing, ["--split", "-1"], "split=-1 is out of range: allowed is ≥ 1, or 0 for every image with a mask"),
    (nothing, ["--label_map", "255-1"], "label_map='255-1' is not understood"),
    (nothing, ["--eval_batch_size", "2"], "eval_batch_size=2 needs images of one size"),
])
def test_bad_folder(capsys, horses, tmp_path, tweak, args, expected):
    root = copy(horses, tmp_path)
    tweak(root)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    run_dir = tmp_path / "run"
    code = main(FOLDER_TINY + ["--data_root", str(root), "--run_dir", str(run_dir)] + args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("dgcl-train: error: ") and expected in err and len(err.splitlines()) == 1, err
    assert not run_dir.exists()  # nothing written
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_masks_saved_as_0_255(capsys, tmp_path):
    root = make_horses(tmp_path / "h255", n_masked=6, n_unlabelled=2, mask_values=(0, 255), classes=False)
    code = main(FOLDER_TINY + ["--data_root", str(root), "--run_dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "hold only 0 and 255, and 255 means 'ignore'" in err and "--label_map 255:1" in err
    tr = Trainer(parse_config(FOLDER_TINY + ["--data_root", str(root), "--label_map", "255:1", "--run_dir",
                                             str(tmp_path / "run")]), quiet=True)
    assert tr.n_classes == 2 and tr.classes == ["class 0", "class 1"] and tr.skip_classes == ()
    x, y = tr.val[0]
    assert set(y.unique().tolist()) == {0, 1}


def test_folder_options_on_other_datasets(capsys, tmp_path):
    code = main(["--dataset", "pascal", "--split", "366", "--data_root", str(tmp_path), "--label_map", "255:1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "options of dataset=folder" in err, err


def test_unlabelled_needed(capsys, tmp_path):
    root = make_horses(tmp_path / "all", n_masked=6, n_unlabelled=0)
    code = main(FOLDER_TINY + ["--data_root", str(root), "--run_dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no unlabelled images" in err and not (tmp_path / "run").exists(), err
