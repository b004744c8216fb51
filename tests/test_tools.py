"""tools/paired_runs.py: two sets of run folders paired by (split_seed, seed), on synthetic metrics."""
import importlib.util
import json
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def _run(folder: Path, split_seed: int, seed: int, test: float, val: float, eval_split="test"):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dict(split_seed=split_seed, seed=seed)))
    (folder / "metrics.json").write_text(json.dumps(dict(miou=test, eval_split=eval_split, paper_protocol=dict(
        per_epoch=[dict(epoch=1, student=1.0), dict(epoch=2, student=2.0, teacher=val)]))))


def test_paired_runs(tmp_path, capsys):
    tool = _tool("paired_runs")
    a = {(0, 0): (50.0, 60.0), (0, 1): (52.0, 61.0), (1, 0): (47.0, 58.0), (2, 1): (40.0, 40.0)}
    b = {(0, 0): (55.0, 70.0), (0, 1): (51.0, 66.0), (1, 0): (50.5, 59.0), (2, 0): (99.0, 99.0)}  # (2,1)/(2,0) unpaired
    for name, runs in (("a", a), ("b", b)):
        for (s, seed), (t, v) in runs.items(): _run(tmp_path / f"{name}-s{s}-seed{seed}", s, seed, t, v)
    for score, i in (("test", 0), ("val", 1)):
        d = np.array([b[k][i] - a[k][i] for k in ((0, 0), (0, 1), (1, 0))])  # the plain restatement
        half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
        assert tool.main([str(tmp_path / "a-*"), str(tmp_path / "b-*"), "--score", score]) == 0
        out = capsys.readouterr().out
        assert f"| 3 | {d.mean():+.2f} | [{d.mean() - half:+.2f}, {d.mean() + half:+.2f}] | {d.std(ddof=1):.2f} |" in out
    # bad input: one line, exit 2
    assert tool.main([str(tmp_path / "a-*"), str(tmp_path / "b-*"), "--score", "train"]) == 2
    assert tool.main([str(tmp_path / "none-*"), str(tmp_path / "b-*")]) == 2
    _run(tmp_path / "c-s0-seed0", 0, 0, 1.0, 1.0, eval_split="val")
    assert tool.main([str(tmp_path / "a-*"), str(tmp_path / "c-*")]) == 2  # scored on val, asked for test
    _run(tmp_path / "d-s5-seed5", 5, 5, 1.0, 1.0)
    assert tool.main([str(tmp_path / "a-*"), str(tmp_path / "d-*")]) == 2  # no shared replicate
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("paired_runs: ") for line in err)


def test_rerun_argv_and_bad_input(tmp_path):
    "tools/rerun.py: the source's fields with the changes win, booleans as --x/--no-x; bad input exits 2."
    tool = _tool("rerun")
    argv = tool.train_argv(dict(method="unimatch", conf_thresh=0.95, hflip=False, split_bn=True, resume=False, x=None,
                                run_dir="old"), dict(conf_thresh="0"), tmp_path / "new")
    assert argv == ["--method", "unimatch", "--conf_thresh", "0", "--no-hflip", "--split_bn", "--run_dir", str(tmp_path / "new")]
    (tmp_path / "new").mkdir(); (tmp_path / "new" / "checkpoint.pt").write_bytes(b"")
    assert tool.train_argv({}, {}, tmp_path / "new")[-1] == "--resume"
    src = tmp_path / "src"; src.mkdir(); (src / "config.json").write_text('{"conf_thresh": 0.95}')
    assert tool.main([str(tmp_path / "none"), str(tmp_path / "b")]) == 2  # no config.json
    assert tool.main([str(src), str(tmp_path / "b"), "conf_thresh"]) == 2  # not FIELD=VALUE
    assert tool.main([str(src), str(tmp_path / "b"), "thresh=0"]) == 2  # not a field
    (tmp_path / "new" / "metrics.json").write_text("{}")
    assert tool.main([str(src), str(tmp_path / "new"), "conf_thresh=0"]) == 2  # finished run: nothing overwritten


def test_same_runs_compare(tmp_path, capsys):
    "tools/same_runs.py compare: equal sets pass, a changed log byte or metric fails naming it, time and paths ignored."
    tool = _tool("same_runs")
    for side in ("a", "b"):
        for name in tool.RUNS:
            d = tmp_path / side / name; d.mkdir(parents=True)
            (d / "log.csv").write_text("step,sup\n0,1.5\n")
            (d / "metrics.json").write_text(json.dumps(dict(miou=40.0, seconds=1.0 if side == "a" else 9.0,
                                                            run_dir=str(d), tau=0.5)))
    assert tool.compare(tmp_path / "a", tmp_path / "b") == 0
    assert "byte-identical" in capsys.readouterr().out
    (tmp_path / "b" / "dgcl" / "log.csv").write_text("step,sup\n0,1.50001\n")
    m = tmp_path / "b" / "selftrain" / "metrics.json"
    m.write_text(json.dumps({**json.loads(m.read_text()), "miou": 40.5}))
    assert tool.compare(tmp_path / "a", tmp_path / "b") == 1
    out = capsys.readouterr().out
    assert "dgcl: log.csv differs" in out and "selftrain: metrics.json miou: 40.0 against 40.5" in out


def test_study_replicates(tmp_path, capsys):
    "tools/study.py restates the plan's replicates; no committed run uses a stage-2 draw or seed, and a reuse is caught."
    tool = _tool("study")
    plan = (ROOT / "runs" / "study" / "PLAN.md").read_text()
    assert "(200, 200), (201, 201), (202, 202)" in plan and "(300 + i, 300 + i) for i = 0..19" in plan and "i = 20..39" in plan
    assert tool.DEV == ((200, 200), (201, 201), (202, 202)) and tool.TEST[0] == (300, 300) and tool.EXTENSION[-1] == (339, 339)
    assert not {s for r in tool.DEV for s in r} & {s for r in tool.TEST + tool.EXTENSION for s in r}  # dev never on test
    assert tool.reused() == [], tool.reused()  # every committed run: no stage-2 draw, seed or split
    assert tool.main(["check"]) == 0 and "no committed run outside runs/study/test/" in capsys.readouterr().out
    for name, c in (("a", dict(split_seed=0, seed=305)), ("b", dict(split_seed=0, seed=0, eval_split="test-d2")),
                    ("study/test/ok", dict(split_seed=300, seed=300, eval_split="test-d2"))):
        (tmp_path / name).mkdir(parents=True); (tmp_path / name / "config.json").write_text(json.dumps(c))
    assert [b.split(":")[0] for b in tool.reused(tmp_path)] == ["a", "b"]
    assert tool.main(["run"]) == 2


def test_grad_terms_at_a_final_checkpoint(tmp_path):
    "tools/grad_terms.py on a finished DGCL run: the batches of its last steps, each weighted term's gradient per group."
    import subprocess, sys
    from helpers import TINY, tiny_dataset
    data, run = tiny_dataset(tmp_path / "data"), tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "dgcl.train", *TINY, "--data_root", str(data), "--run_dir", str(run),
                        "--lambda_contra", "0.25"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    before = (run / "checkpoint.pt").read_bytes()
    res = _tool("grad_terms").grad_terms(run, steps=2)
    assert res["step"] == 10 and res["lambda_contra_effective"] == 0.25
    assert set(res["losses"]) >= {"sup", "unsup", "contra"} and all(np.isfinite(v) for v in res["losses"].values())
    assert res["grad_norm"]["backbone"]["sup"] > 0 and res["grad_norm"]["backbone"]["contra"] > 0
    assert set(res["grad_norm"]["proj"]) == {"contra"} and -1 <= res["cos_sup_contra"] <= 1
    assert (run / "checkpoint.pt").read_bytes() == before  # nothing in the run changes
