"""Bad input that once gave a traceback, a silent success or a message about the wrong thing: each now
stops before training with one paragraph naming the value and the fix, exit 2, and no run dir left."""

from __future__ import annotations

import pytest

from tests.faults.cli import run_cli
from tests.faults.mounts import tmpfs

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
    "objective never logged": ("train", ["objective=val/nope"], ["objective=val/nope", "val/acc", "Fix"]),
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


def _log_dir_refused(proc, where):
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr, proc.stderr
    assert f"{where}" in proc.stderr and "MLGEN_LOG_DIR" in proc.stderr and "Fix" in proc.stderr, proc.stderr


def test_log_dir_that_is_a_file_is_named_with_the_fix(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    proc = run_cli("train", QUIET, tmp_path, env={"MLGEN_LOG_DIR": str(a_file)})
    _log_dir_refused(proc, f"{a_file} is a file")
    assert a_file.read_text() == "not a folder"


def test_read_only_log_dir_is_named_with_the_fix(tmp_path):
    """A real read-only filesystem (root ignores file modes, not a read-only mount)."""
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        proc = run_cli("train", QUIET, tmp_path, env={"MLGEN_LOG_DIR": str(ro / "logs")})
    _log_dir_refused(proc, f"{ro} is not writable")


@pytest.mark.parametrize("damage", ["garbage header", "truncated"])
def test_damaged_mnist_files_are_named_as_damaged_not_missing(damage, tmp_path):
    from tests.helpers.mnist_files import random_mnist

    root = tmp_path / "mnist"
    random_mnist(root, folder="MNIST")
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    data = images.read_bytes()
    images.write_bytes(b"\x12\x34\x56\x78" + data[4:] if damage == "garbage header" else data[: len(data) // 2])
    proc = run_cli("train", [*QUIET, "data=mnist", f"data.root={root}", "model=classifier"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for text in (str(root), "unreadable", "train-images-idx3-ubyte", "Fix"):
        assert text in proc.stderr, proc.stderr
    assert "not found" not in proc.stderr


def _no_gpu():
    import torch

    return not torch.cuda.is_available()


SAMPLE_CASES = {
    "nrow 0": (lambda tmp: ["nrow=0"], ["nrow=0", "Fix"]),  # was a ZeroDivisionError
    "out under a file": (lambda tmp: [f"out={tmp / 'a-file' / 'x.png'}"], ["a-file is a file", "Fix"]),
    "device=cuda without a GPU": (lambda tmp: ["device=cuda"], ["device=cuda", "no GPU", "device=cpu"]),
}


@pytest.mark.parametrize("case", list(SAMPLE_CASES))
def test_mlgen_sample_bad_input(case, tmp_path, digits_checkpoint):
    if case.startswith("device") and not _no_gpu():
        pytest.skip("this machine has a GPU")
    (tmp_path / "a-file").write_text("x")
    make_args, expected = SAMPLE_CASES[case]
    proc = run_cli("sample", [f"ckpt_path={digits_checkpoint}", *make_args(tmp_path)], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for text in expected:
        assert text in proc.stderr, proc.stderr
    runs = tmp_path / "logs" / "sample" / "runs"
    assert not (runs.exists() and list(runs.iterdir()))


def test_mlgen_sample_out_on_a_read_only_filesystem(tmp_path, digits_checkpoint):
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        proc = run_cli("sample", [f"ckpt_path={digits_checkpoint}", f"out={ro / 'grid.png'}"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"out={ro / 'grid.png'}" in proc.stderr and "not writable" in proc.stderr, proc.stderr
