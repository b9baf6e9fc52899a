"""Bad input that once gave a traceback, a silent success or a message about the wrong thing: each now
stops before training with one paragraph naming the value and the fix, exit 2, and no run dir left."""

from __future__ import annotations

import pytest

from tests.faults.cli import run_cli

QUIET = ["trainer=cpu", "logger=none", "trainer.enable_progress_bar=false", "callbacks.model_summary=null"]

CASES = {
    # key the user typed -> what the message must name
    "max_epochs not a number": ("train", ["trainer.max_epochs=abc"], ["trainer.max_epochs='abc'", "Fix"]),
    "seed not a number": ("train", ["seed=abc"], ["seed='abc'", "Fix"]),
    "max_epochs 0": ("train", ["trainer.max_epochs=0"], ["trainer.max_epochs=0", "Fix"]),
    "neither train nor test": ("train", ["train=false", "test=false"], ["train=false", "neither train nor test"]),
    "no validation split for a val/ monitor": (
        "train", ["data.val_fraction=0"], ["data.val_fraction=0", "model.monitor=val/acc", "Fix"]),
    # checked at the sanity-check validation, before the first training step (was: after a full epoch)
    "monitor never logged": ("train", ["model.monitor=val/nope"], ["model.monitor=val/nope", "val/acc", "Fix"]),
    "eval without a checkpoint": ("eval", [], ["ckpt_path", "Fix"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_stops_before_training_with_one_paragraph(case, tmp_path):
    command, args, expected = CASES[case]
    proc = run_cli(command, [*QUIET, *args] if command == "train" else args, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    message = proc.stderr[proc.stderr.index("mlgen error:"):]
    for text in expected:
        assert text in message, message
    assert len(message) < 800, message
    assert "Epoch 0:" not in out and "train/loss" not in proc.stdout  # nothing trained
    runs = tmp_path / "logs" / ("train" if command == "train" else "eval") / "runs"
    assert not (runs.exists() and list(runs.iterdir())), list(runs.iterdir())  # no empty run dir left behind


def test_resuming_with_another_model_family_names_both(tmp_path, digits_checkpoint):
    proc = run_cli("train", [f"ckpt_path={digits_checkpoint}", "model=vae", "logger=none", "trainer=cpu"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    for text in ("Classifier model", "VAE", "Fix"):
        assert text in proc.stderr, proc.stderr
