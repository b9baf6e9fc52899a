"""Resume through the real CLI: `mlgen-train ckpt_path=<run>/checkpoints/last.ckpt` needs none of the
original overrides, continues in the checkpoint's run dir and keeps the run's best checkpoint;
`hydra.run.dir=` resumes into a new dir and leaves the old one as it was."""

from __future__ import annotations

import csv
import hashlib

import pytest

from tests.faults.cli import run_cli

FIRST = ["trainer=cpu", "logger=csv", "trainer.enable_progress_bar=false", "callbacks.model_summary=null",
         "model.net.hidden=[24]", "model.optimizer.lr=0.003", "data.batch_size=256", "trainer.max_epochs=2",
         "test=false"]


def _val_acc_per_epoch(run):
    rows = list(csv.DictReader((run / "csv" / "metrics.csv").open()))
    return {int(r["epoch"]): float(r["val/acc"]) for r in rows if r.get("val/acc")}


def _snapshot(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_resume_continues_the_run_in_its_dir_without_retyped_overrides(tmp_path):
    first = run_cli("train", FIRST, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = tmp_path / "logs" / "train" / "runs"
    (run,) = list(runs.iterdir())
    # only what changes is typed: no model.net.hidden (the default [256, 256] would not load), no logger
    resumed = run_cli("train", [f"ckpt_path={run}/checkpoints/last.ckpt", "trainer.max_epochs=4",
                                "trainer.enable_progress_bar=false"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    assert list(runs.iterdir()) == [run]  # no second run dir
    accs = _val_acc_per_epoch(run)
    assert sorted(accs) == [0, 1, 2, 3]  # one CSV for the whole run
    (best,) = list((run / "checkpoints").glob("epoch_*.ckpt"))  # save_top_k=1 over all four epochs
    best_epoch = max(accs, key=lambda e: (accs[e], -e))
    assert best.name == f"epoch_{best_epoch:03d}.ckpt", accs
    assert "test/acc" in resumed.stdout  # test=false was the first run's; the resume's default tests


@pytest.mark.slow
def test_resume_into_a_new_dir_leaves_the_old_run_untouched(tmp_path):
    first = run_cli("train", [*FIRST, "trainer.max_epochs=1"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (run,) = list((tmp_path / "logs" / "train" / "runs").iterdir())
    before = _snapshot(run)
    new = tmp_path / "elsewhere"
    resumed = run_cli("train", [f"ckpt_path={run}/checkpoints/last.ckpt", f"hydra.run.dir={new}",
                                "trainer.max_epochs=2", "test=false"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _snapshot(run) == before
    assert (new / "checkpoints" / "last.ckpt").is_file()
    assert sorted(_val_acc_per_epoch(new)) == [1]

