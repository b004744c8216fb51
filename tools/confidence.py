"""What a confidence threshold keeps: `python tools/confidence.py runs/ablations/main/supervised-n96-seed0 ...`.

For each finished run (its folder must hold `checkpoint.pt`; checkpoints stay out of git, so this reads runs made on
this machine) the final student predicts the val images in eval mode (`dgcl.infer.load_run`, `eval_images`). Per ground-truth group,
background and digits (every class but 0), it prints the pixel accuracy, the share of pixels whose largest softmax
probability reaches the threshold (UniMatch's 0.95 by default) and the accuracy of those pixels; then the mean of
each cell over its replicates (folder names without `-n…-s…-seed…`), as a markdown table. A diagnostic of the
consistency method's pseudo labels: which pixels its thresholded loss trains on, and how often they are wrong."""
import argparse
import re
import sys
from pathlib import Path


def group_stats(run: Path, thresh: float) -> dict:
    "{'background': (acc, kept, acc_kept), 'digits': (...)} of the run's final student on the val images."
    import torch
    from dgcl.infer import eval_images, load_run
    model, cfg, dev = load_run(run / "checkpoint.pt", model="student", device="cpu")
    val, _ = eval_images(cfg, model.classifier.out_channels, split="val", run_dir=run)
    n = torch.zeros(2, 4)  # group × (pixels, correct, kept, kept and correct)
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(val, batch_size=50):
            logits = torch.nn.functional.interpolate(model(x)["pred"].float(), y.shape[-2:], mode="bilinear",
                                                     align_corners=False)
            conf, pred = logits.softmax(1).max(1)  # B,H,W each
            ok, kept = pred == y, conf >= thresh
            for g, m in enumerate(((y == 0), (y > 0) & (y != cfg.folder.ignore_index))):
                n[g] += torch.stack([m.sum(), (ok & m).sum(), (kept & m).sum(), (kept & ok & m).sum()]).float()
    return {g: (n[i, 1] / n[i, 0], n[i, 2] / n[i, 0], n[i, 3] / n[i, 2].clamp(min=1))
            for i, g in enumerate(("background", "digits"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders holding checkpoint.pt")
    ap.add_argument("--thresh", type=float, default=0.95, help="the confidence threshold (0..1); default 0.95")
    a = ap.parse_args(argv)
    if not 0 <= a.thresh <= 1:
        print(f"confidence: --thresh={a.thresh} is out of range: allowed is 0..1", file=sys.stderr); return 2
    for r in a.runs:
        if not (r / "checkpoint.pt").is_file():
            print(f"confidence: {r} has no checkpoint.pt: allowed are run folders of finished runs made here", file=sys.stderr)
            return 2
    import torch
    torch.set_num_threads(1)
    by_cell = {}
    for r in a.runs:
        s = group_stats(r, a.thresh)
        name = re.sub(r"(-n\d+)?(-s\d+)?-seed\d+$", "", r.name)  # the ablation's cell: its replicates are averaged
        by_cell.setdefault(name, []).append(s)
        print(r.name, "  ".join(f"{g}: acc {v[0]:.3f}, kept {v[1]:.3f}, acc of kept {v[2]:.3f}" for g, v in s.items()),
              file=sys.stderr)
    print(f"| run | replicates | background: acc / kept ≥ {a.thresh} / acc of kept | digits: acc / kept ≥ {a.thresh} / acc of kept |")
    print("| --- | --- | --- | --- |")
    for m, ss in by_cell.items():
        cell = lambda g: " / ".join(f"{100 * sum(s[g][i] for s in ss) / len(ss):.1f}" for i in range(3))
        print(f"| {m} | {len(ss)} | {cell('background')} | {cell('digits')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
