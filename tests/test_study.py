"""tools/study.py's driver: the plan's runs per stage, the calibration and pass rules, provenance, the one-machine rule and
the refusals, on fabricated metrics; one tiny run through the driver's executor."""
import importlib.util
import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("study", ROOT / "tools" / "study.py")
study = importlib.util.module_from_spec(spec); spec.loader.exec_module(study)
HERE = ("This CPU", 1)  # the machine the fabricated runs ran on


def _fake(run, miou: float, machine=HERE):
    "A finished run's metrics.json (and its study.json, as the driver writes it at the start)."
    run.run_dir.mkdir(parents=True, exist_ok=True)
    (run.run_dir / "study.json").write_text(json.dumps(study.provenance(run) | {"processor": machine[0], "threads": machine[1]}))
    run.metrics_path.write_text(json.dumps(dict(miou=miou, processor=machine[0], threads=machine[1], **run.params)))


def _calibrate(out: Path, choice="sgd"):
    (out / "dev").mkdir(parents=True, exist_ok=True)
    c = dict(choice=choice, params=study.CANDIDATES[choice], reference_miou=50.0, candidates={choice: 49.0}, within_5=True)
    (out / "dev" / "calibration.json").write_text(json.dumps(c))


def test_study_dev_plan(tmp_path, capsys):
    "24 dev runs: every testbed, regime, replicate and method once, the two methods of a replicate adjacent; val only."
    runs = study.dev_runs(tmp_path, study.CANDIDATES["sgd"])
    assert len(runs) == 24
    assert {(r.cell, r.replicate, r.method) for r in runs} == {
        (f"{t}-{g}", rep, m) for t in ("v5", "bold") for g in ("adamw", "authors") for rep in study.DEV
        for m in ("supervised", "selftrain")}
    for a, b in zip(runs[::2], runs[1::2]):
        assert (a.cell, a.replicate, a.method, b.cell, b.replicate, b.method) == (b.cell, b.replicate, "supervised",
                                                                                   a.cell, a.replicate, "selftrain")
    for r in runs:
        p = r.params
        assert r.run_dir == tmp_path / "dev" / r.cell / f"{r.method}-s{r.replicate[0]}-seed{r.replicate[1]}"
        assert (p["split_seed"], p["seed"]) == r.replicate and p["method"] == r.method and p["eval_split"] == "val"
        assert p["digit_style"] == r.cell.split("-")[0] and p["dataset"] == "embedded" and p["figures"] is False
        assert p.get("optimizer") == ("sgd" if r.cell.endswith("authors") else None)
    assert study.main(["run", "dev", "--dry-run", "--out", str(tmp_path)]) == 2  # not calibrated yet
    _calibrate(tmp_path)
    assert study.main(["run", "dev", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sum(l.startswith("todo  dev/") for l in out) == 24 and out[-1] == "24 runs, 0 done"


def test_study_calibration(tmp_path, capsys):
    "The first candidate within 5 points wins (5 itself included); none within: the closest, said so."
    assert study.choose(60.0, {"sgd": 55.0}) == ("sgd", True)
    assert study.choose(60.0, {"sgd": 50.0}) is None  # adamw-1e-4 is needed next
    assert study.choose(60.0, {"sgd": 50.0, "adamw-1e-4": 64.9, "adamw-3e-4": 60.0}) == ("adamw-1e-4", True)
    far = {"sgd": 40.0, "adamw-1e-4": 70.0, "adamw-3e-4": 52.0, "adamw-1e-3": 66.0}
    assert study.choose(60.0, far) == ("adamw-1e-3", False)
    ref, *cands = study.calib_runs(tmp_path)
    assert ref.run_dir == tmp_path / "dev" / "v5-adamw" / "supervised-s200-seed200"  # the dev cell's run, stored once
    assert ref.run_dir == study.dev_runs(tmp_path, {})[0].run_dir and ref.stage == "dev"
    assert [r.run_dir.parent.name for r in cands] == [f"calib-{c}" for c in study.CANDIDATES]
    for out, mious, choice in ((tmp_path / "a", dict(sgd=50.0, **{"adamw-1e-4": 56.0}), ("adamw-1e-4", True)),
                               (tmp_path / "b", far, ("adamw-1e-3", False))):
        ref, *cands = study.calib_runs(out)
        _fake(ref, 60.0)
        for r in cands:
            if r.cell[6:] in mious: _fake(r, mious[r.cell[6:]])
        assert study.main(["run", "calib", "--out", str(out), "--allow-dirty"]) == 0  # all it needs has finished
        c = json.loads((out / "dev" / "calibration.json").read_text())
        assert (c["choice"], c["within_5"]) == choice and c["candidates"] == mious and c["reference_miou"] == 60.0
        assert c["params"] == study.CANDIDATES[choice[0]]
        assert ("none is within 5 points" in capsys.readouterr().out) == (not choice[1])


def test_study_pass_rule(tmp_path, capsys):
    "A cell passes at mean(selftrain − supervised) ≥ 2 and mean supervised ≤ 85; the dgcl stage plans its λ runs."
    v = study.verdict
    assert v([50, 50, 50], [52, 52, 52]) == "pass" and v([50, 50, 50], [51.99, 52, 52]) == "fail"
    assert v([60.1, 70.2, 80.3], [62.1, 72.2, 82.3]) == "pass"  # 2 in decimals, a hair under it in floats
    assert v([85, 85, 85], [87, 87, 87]) == "pass" and v([85, 85, 85.03], [87, 87, 87.03]) == "fail"
    assert v([50, None, 50], [60, 60, 60]) == "incomplete"
    _calibrate(tmp_path)
    dev = study.dev_runs(tmp_path, study.CANDIDATES["sgd"])
    assert study.main(["run", "dgcl", "--dry-run", "--out", str(tmp_path)]) == 2  # dev not finished
    for r in dev: _fake(r, 50.0 + (2.0 if r.method == "selftrain" and r.cell == "bold-authors" else 0.0))
    assert study.main(["run", "dgcl", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [l.split()[1] for l in out[:-1]] == [f"dev/bold-authors/dgcl-l{lam:g}-s{s}-seed{s}" for s, _ in study.DEV
                                                for lam in (0.125, 0.5, 0)]
    assert study.main(["status", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    verdicts = [l.split()[-1] for l in out.splitlines() if l.startswith("  ") and "mean" in l]
    assert verdicts == ["fail", "fail", "fail", "pass"] and "mean 50.00 / 52.00 / +2.00  pass" in out
    for r in dev: _fake(r, 50.0)
    assert study.main(["run", "dgcl", "--out", str(tmp_path), "--allow-dirty"]) == 0
    assert capsys.readouterr().out.strip() == "no cell passes: the study stops here (PLAN.md)"


def test_study_provenance_and_one_machine(tmp_path, capsys):
    "Provenance goes into metrics.json whole; a replicate whose partner ran elsewhere (or at other threads) is refused."
    run = study.dev_runs(tmp_path, {})[0]
    _fake(run, 40.0)
    study.stamp(run)
    m = run.metrics()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert m["miou"] == 40.0 and m["study_plan"] == study.plan_hash() and len(m["study_plan"]) == 40
    assert (m["study_code"], m["study_stage"], m["study_cell"], m["study_replicate"]) == (head, "dev", "v5-adamw", [200, 200])
    assert not list(run.run_dir.glob("*.tmp"))
    partner = study.dev_runs(tmp_path, {})[1]
    assert partner.replicate == run.replicate and partner.method == "selftrain"
    assert study.mismatch(partner, HERE) is None
    for here in (("Other CPU", 1), ("This CPU", 2)):
        why = study.mismatch(partner, here)
        assert "replicate (200, 200) of v5-adamw" in why and "This CPU at 1 threads" in why and f"{here[0]} at {here[1]}" in why
    calib = study.calib_runs(tmp_path)[1]  # a candidate pairs with the reference
    assert "supervised-s200-seed200" in study.mismatch(calib, ("Other CPU", 1))
    assert study.execute_runs([partner]) == 1  # this machine is not "This CPU": refused, not run
    assert capsys.readouterr().err.count("study: refused: replicate (200, 200)") == 1 and not partner.run_dir.exists()
    other = study.dev_runs(tmp_path, {})[2:4]
    _fake(other[0], 40.0); _fake(other[1], 41.0, machine=("Other CPU", 1))
    assert study.main(["status", "--out", str(tmp_path)]) == 0
    assert "mismatch: v5-adamw replicate (201, 201) ran on" in capsys.readouterr().out
    done = study.dev_runs(tmp_path, {})[6]  # finished, interrupted before its provenance: it gets it, no run
    _fake(done, 30.0)
    assert "study_plan" not in done.metrics() and study.execute_runs([done]) == 0 and done.metrics()["study_cell"] == "v5-authors"
    late = study.dev_runs(tmp_path, {})[4]  # started at another commit, interrupted: it does not resume on this code
    late.run_dir.mkdir(parents=True); (late.run_dir / "checkpoint.pt").write_bytes(b"")
    from dgcl.trainer import processor_model
    (late.run_dir / "study.json").write_text(json.dumps(dict(study_code="0" * 40, processor=processor_model(), threads=1)))
    assert study.execute_runs([late], jobs=1, threads=1) == 1
    assert "started at code 0000000000" in capsys.readouterr().err


def test_study_refusals(tmp_path, capsys, monkeypatch):
    "Bad input and stages that may not start (uncommitted plan or code too): one line, exit 2; the test stage reads frozen.json."
    o = ["--out", str(tmp_path)]
    for argv in (["run", "test", *o], ["run", "nope", *o], ["run", *o], ["run", "calib", "--jobs", "0", *o],
                 ["run", "calib", "--threads", "x", *o], ["run", "dev", "--extension", *o], ["walk"]):
        assert study.main(argv) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 7 and all(l.startswith("study: ") for l in err)
    assert "frozen.json is missing" in err[0] and "'nope'" in err[1] and "--jobs 0" in err[3] and "'x'" in err[4]
    (tmp_path / "frozen.json").write_text(json.dumps(dict(cell="bold-adamw", lambda_contra=0.0)))  # λ 0 is never frozen
    assert study.main(["run", "test", "--dry-run", *o]) == 2
    (tmp_path / "frozen.json").write_text(json.dumps(dict(cell="bold-adamw", lambda_contra=0.125)))
    capsys.readouterr()
    assert study.main(["run", "test", "--dry-run", *o]) == 0  # the extension: test_study_extension
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "60 runs, 0 done" and out[0].split()[1] == "test/supervised-s300-seed300"
    assert [l.split()[1].split("-s")[0] for l in out[:3]] == ["test/supervised", "test/selftrain", "test/dgcl"]
    assert all("eval_split=test-d2" in l and "digit_style=bold" in l for l in out[:-1])
    assert "lambda_contra=0.125" in out[2] and "lambda_contra" not in out[0]
    _calibrate(tmp_path)
    for plan, porcelain, why in (("", {}, "PLAN.md is not committed"),
                                 ("f" * 40, {str(study.PLAN): " M runs/study/PLAN.md"}, "PLAN.md has uncommitted changes"),
                                 ("f" * 40, {"dgcl": " M dgcl/config.py\n?? dgcl/new.py"},
                                  "uncommitted changes in dgcl/config.py, dgcl/new.py: study runs run on committed code only")):
        monkeypatch.setattr(study, "plan_hash", lambda: plan)
        monkeypatch.setattr(study, "_git", lambda *a: next((v for k, v in porcelain.items() if k in a), ""))
        assert study.main(["run", "dev", *o]) == 2  # refused before any run
        err = capsys.readouterr().err.strip()
        assert err.startswith("study: ") and why in err and len(err.splitlines()) == 1
    assert not (tmp_path / "dev" / "v5-adamw").exists()


def test_study_tiny_run(tmp_path, capsys):
    "One tiny run through the driver's executor: metrics.json gets the provenance; a second pass skips it."
    run = study.calib_runs(tmp_path)[0]
    run.params.update(crop=48, epochs=2, sup_only_epochs=1, steps_per_epoch=2, max_steps=2, batch_size=2,
                      eval_batch_size=50, eval_paper=False)
    assert study.execute_runs([run], jobs=1, threads=1) == 0
    m = run.metrics()
    assert m["study_plan"] == study.plan_hash() and m["study_stage"] == "dev" and m["study_replicate"] == [200, 200]
    assert len(m["study_code"]) == 40 and m["threads"] == 1 and m["split_seed"] == 200 and m["method"] == "supervised"
    assert m["study_code_tree"] == study.code_tree() and len(m["study_code_tree"]) == 81  # dgcl/'s tree / train.ipynb's blob
    assert run.notebook.exists() and m["steps"] == 2
    assert capsys.readouterr().out.startswith(f"v5-adamw/supervised-s200-seed200: teacher miou {m['miou']:.2f}, ")
    assert study.execute_runs([run]) == 0  # finished: skipped
    test = dataclasses.replace(run, stage="test", folder=tmp_path / "test")  # stage 2: the log line has no score
    assert study.execute_runs([test], jobs=1, threads=1) == 0 and test.done()
    assert "miou" not in capsys.readouterr().out


def _freeze(out: Path, cell="bold-adamw", lam=0.125):
    _calibrate(out)
    (out / "frozen.json").write_text(json.dumps(dict(cell=cell, lambda_contra=lam)))
    return study.frozen(out)


def _stage2(out: Path, diffs, reps=None):
    "Fabricated stage-2 runs: supervised 60, self-training 63, DGCL 63 + diffs[i] on replicate i."
    reps = reps or study.TEST
    by = {(r.method, r.replicate): r for r in study.test_runs(out, study.frozen(out), None, extension=True)}
    for k, d in zip(reps, diffs):
        for m, v in (("supervised", 60.0), ("selftrain", 63.0), ("dgcl", 63.0 + d)): _fake(by[m, k], v)


def test_study_pocock_and_verdicts():
    "The interval against a plain restatement (mean ± t·sd/√n); the verdicts' order and boundaries; pairs across machines refused."
    from scipy import stats
    import numpy as np
    rng = np.random.default_rng(0)
    for n in (2, 20, 40):
        d = rng.normal(1, 3, n)
        m, lo, hi = study.pocock(d)
        want = stats.t.interval(0.9706, n - 1, loc=d.mean(), scale=stats.sem(d))
        assert np.isclose(m, d.mean()) and np.allclose((lo, hi), want)
        assert hi - lo > np.subtract(*study.pocock(d, 0.95)[:0:-1])  # 97.06 % is wider than 95 %
    v = study.test_verdict
    assert [v(-3, -0.1), v(0.1, 3), v(-1, 1.99), v(-1, 2), v(-1, 2.5), v(0.5, 1.5), v(-2, 0)] == [
        "harms", "helps", "no gain worth having", "inconclusive", "inconclusive", "helps", "no gain worth having"]


def test_study_stage2_looks_and_tables(tmp_path, capsys):
    "No score before a look; the extension only after an inconclusive first look; stage 3 only once stage 2 has ended."
    o = ["--out", str(tmp_path)]
    f = _freeze(tmp_path)
    assert study.stage2(tmp_path, f, None) | {"runs": None} == dict(look=None, runs=None, first_done=0, extension_done=0, ended=False)
    for argv in (["run", "tables", "--dry-run", *o], ["run", "test", "--extension", "--dry-run", *o], ["grad", *o]):
        assert study.main(argv) == 2, argv
    err = capsys.readouterr().err.splitlines()
    assert "stage 3 starts when stage 2 has ended: 0 of 60" in err[0] and "after an inconclusive first look" in err[1]
    assert "after its first look: 0 of 60" in err[2]
    _stage2(tmp_path, [3.0 + 0.1 * (i % 3) for i in range(19)])  # one replicate short: still no look
    assert study.stage2(tmp_path, f, None)["look"] is None and study.main(["run", "tables", "--dry-run", *o]) == 2
    _stage2(tmp_path, [3.0], study.TEST[19:])
    s = study.stage2(tmp_path, f, None)
    assert s["look"] == study.TEST and s["verdict"] == "helps" and s["ended"] and 3.0 < s["d"][0] < 3.2
    study.look_line(tmp_path)
    assert "stage 2, 20 pairs on test-d2: DGCL − self-training +3.09" in capsys.readouterr().out
    assert study.main(["run", "test", "--extension", "--dry-run", *o]) == 2  # helps: no extension
    assert "the first look's verdict is helps" in capsys.readouterr().err
    assert study.main(["grad", *o]) == 2 and "holds no checkpoint.pt" in capsys.readouterr().err
    assert study.main(["run", "tables", "--dry-run", *o]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "30 runs, 0 done"
    names = [l.split()[1] for l in out[:-1]]
    assert names[:5] == [f"tables/dgcl-{x}-s300-seed300" for x in ("l0.0625", "l0.25", "l0.5", "densest", "random")]
    assert all("eval_split=test-d2" in l and "digit_style=bold" in l and "method=dgcl" in l for l in out[:-1])
    assert "lambda_contra=0.125 anchor_select=densest" in out[3] and "anchor_select" not in out[0]
    tb = study.table_runs(tmp_path, f, None)
    assert {r.replicate for r in tb} == set(study.TABLE_REPS) and all(r.group == tmp_path / "test" for r in tb)
    rows = study.table_reused(tmp_path, f, None)
    assert rows["dgcl-l0.125", (300, 300)].run_dir == tmp_path / "test" / "dgcl-s300-seed300"
    assert rows["dgcl-sparsest", (305, 305)] is rows["dgcl-l0.125", (305, 305)] and ("selftrain", (306, 306)) not in rows
    assert len({k[0] for k in rows}) == 2 + 4 + 3  # supervised, selftrain; four λ; three anchor rules
    _fake(tb[0], 50.0, machine=("Other CPU", 1))  # a stage-3 run on another machine than its stage-2 replicate
    assert "mismatch: test replicate (300, 300)" in (study.status(tmp_path), capsys.readouterr().out)[1]
    with pytest.raises(ValueError, match="not a pair"): study.pair(tb[0], rows["selftrain", (300, 300)])
    runs = tmp_path / "runs"  # reused(): stage 2's and 3's own folders may hold its replicates, no other run may
    for d, c in (("study/test/x", dict(split_seed=300, seed=300, eval_split="test-d2")), ("study/tables/y", dict(seed=305)),
                 ("main/z", dict(split_seed=0, seed=301)), ("study/dev/w", dict(split_seed=1, seed=1, eval_split="test-d2"))):
        (runs / d).mkdir(parents=True); (runs / d / "config.json").write_text(json.dumps(c))
    assert [b.split(":")[0] for b in study.reused(runs)] == ["main/z", "study/dev/w"]


def test_study_extension(tmp_path, capsys):
    "An inconclusive first look: the extension may run and stage 3 waits for it; after 40 pairs stage 2 has ended."
    o = ["--out", str(tmp_path)]
    f = _freeze(tmp_path)
    wide = [1.0 + (6.0 if i % 2 else -6.0) for i in range(40)]  # mean +1, sd ≈ 6: inconclusive at 20 and 40
    _stage2(tmp_path, wide[:20])
    s = study.stage2(tmp_path, f, None)
    assert s["verdict"] == "inconclusive" and not s["ended"]
    assert study.main(["run", "tables", "--dry-run", *o]) == 2 and "extension has 0 of 60" in capsys.readouterr().err
    assert study.main(["run", "test", "--extension", "--dry-run", *o]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "120 runs, 60 done"
    _stage2(tmp_path, wide[20:], study.EXTENSION)
    s = study.stage2(tmp_path, f, None)
    assert len(s["look"]) == 40 and s["verdict"] == "inconclusive" and s["ended"]
    assert study.main(["run", "tables", "--dry-run", *o]) == 0
