"""Shared by the CLI tests: a tiny embedded dataset and a tiny DGCL configuration whose bank fills in a few steps."""
from pathlib import Path

TINY = ["--epochs", "2", "--sup_only_epochs", "1", "--steps_per_epoch", "5", "--batch_size", "2", "--crop", "48",
        "--memory_size", "3", "--memory_per_update", "3", "--n_anchors", "8", "--n_neg", "32", "--head_dim", "16",
        "--proj_dim", "16", "--num_workers", "0", "--eval_batch_size", "20", "--no-figures", "--split", "12"]


def tiny_dataset(folder: Path) -> Path:
    "A 40-image embedded dataset (48×48) with a 12-image labelled split that covers all 11 classes."
    from dgcl.embedded import make_embedded
    return make_embedded(root=folder, seed=0, n_train=40, n_val=10, size=48, splits=(12,))
