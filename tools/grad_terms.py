"""Gradient of each loss term of Eq. 2 on the student's parameter groups, at a run's checkpoint.

    python tools/grad_terms.py RUN_DIR [--steps 4] [--out grad_terms.json]

Resumes a copy of RUN_DIR (its checkpoint and config) in a temporary folder, runs `--steps` training steps without
stepping the optimiser (on the batches of the run's last `--steps` steps when the checkpoint is its final one), and reports, per parameter group (backbone, ASPP, decoder, classifier, projection), the mean
L2 norm of the weighted gradient of each term (the step's `loss_weights`: λ_unsup·L_unsup, λ_eff·L_contra, …), and the cosine between the L_sup and
L_contra gradients over all parameters. It diagnoses which term drives the shared weights; nothing in RUN_DIR changes.
"""
import argparse, collections, dataclasses, json, shutil, sys, tempfile
from pathlib import Path

import torch

from dgcl.config import upgrade_config
from dgcl.trainer import Config, Trainer, lambda_contra_effective, loss_weights


def grad_terms(run_dir: Path, steps: int = 4) -> dict:
    cfg = json.loads((run_dir / "config.json").read_text())
    if not (run_dir / "checkpoint.pt").exists(): sys.exit(f"grad_terms: error: {run_dir} holds no checkpoint.pt")
    tmp = Path(tempfile.mkdtemp()) / "run"
    shutil.copytree(run_dir, tmp, ignore=shutil.ignore_patterns("tb", "*.png"))
    t = Trainer(Config(**upgrade_config(cfg) | dict(run_dir=str(tmp), resume=True)), quiet=True)
    t.optimise = lambda loss, idle=(): None  # the gradients are read, not applied
    t.teacher_after_step = lambda: None
    params = [(n, p) for n, p in t.student.named_parameters() if p.requires_grad]
    group = lambda n: n.split(".")[1] if n.startswith("net.") else n.split(".")[0]
    norms, cos, losses = collections.defaultdict(lambda: collections.defaultdict(list)), [], collections.defaultdict(list)
    # a finished run's loaders are empty from its last step on: read the batches of its last `steps` steps instead
    lab, unl = t.loaders(t.step if t.total_steps - t.step >= steps else max(t.total_steps - steps, 0))
    for i, ((x_l, y_l), (x_u, ign_u)) in enumerate(zip(lab, unl)):
        if i >= steps: break
        weights = loss_weights(t.cfg, t.method, t.method.semi and t.step >= t.warm_step)  # as total_loss weighs them
        terms = t.train_step(*(t._to_device(v) for v in (x_l, y_l, x_u, ign_u))).terms  # a StepLog: the terms keep their graph
        grads = {k: torch.autograd.grad(weights[k] * v, [p for _, p in params], retain_graph=True, allow_unused=True)
                 for k, v in terms.items() if v.requires_grad}
        for k, v in terms.items(): losses[k].append(v.item())
        for k, g in grads.items():
            per = collections.defaultdict(float)
            for (n, _), gi in zip(params, g):
                if gi is not None: per[group(n)] += gi.float().pow(2).sum().item()
            for name, s in per.items(): norms[name][k].append(s ** 0.5)
        if "contra" in grads:
            flat = {k: torch.cat([(gi if gi is not None else torch.zeros_like(p)).flatten().float()
                                  for (_, p), gi in zip(params, grads[k])]) for k in ("sup", "contra")}
            cos.append(torch.nn.functional.cosine_similarity(flat["sup"], flat["contra"], dim=0).item())
    if not losses: sys.exit(f"grad_terms: error: {run_dir} has no training step to read (total_steps {t.total_steps})")
    mean = lambda v: sum(v) / len(v)
    return dict(run=str(run_dir), step=t.step, steps=steps, lambda_contra=t.cfg.lambda_contra, lambda_contra_effective=lambda_contra_effective(t.cfg),
                losses={k: mean(v) for k, v in losses.items()},
                grad_norm={g: {k: mean(v) for k, v in d.items()} for g, d in norms.items()},
                cos_sup_contra=mean(cos) if cos else None)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.steps < 1: ap.error(f"--steps {a.steps}: allowed is ≥ 1")
    torch.set_num_threads(1)
    r = grad_terms(a.run_dir, a.steps)
    for g, d in r["grad_norm"].items(): print(f"{g:12s}", "  ".join(f"{k} {v:.3g}" for k, v in d.items()))
    print("cos(sup, contra)", r["cos_sup_contra"])
    if a.out: a.out.write_text(json.dumps(r, indent=1))
