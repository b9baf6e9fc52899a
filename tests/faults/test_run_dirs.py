"""Run dirs: a run stopped by bad input leaves none behind; a dir holding any output of a run is kept."""

from __future__ import annotations

from mlgen.distributed.run_dir import MARKER, remove_if_unused
from tests.faults.cli import run_cli


def _set_up_only(run_dir):
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (run_dir / "train.log").write_text("[INFO] - run dir ...\n")
    return run_dir


def test_a_dir_with_only_hydra_set_up_is_removed_and_one_with_outputs_kept(tmp_path):
    empty = _set_up_only(tmp_path / "empty")
    assert remove_if_unused(empty) and not empty.exists()
    claimed = _set_up_only(tmp_path / "slurm-7")  # a Slurm job's claim: its other ranks wait for the marker
    (claimed / MARKER).write_text("{}")
    assert not remove_if_unused(claimed) and (claimed / MARKER).exists()
    for output in ("checkpoints/last.ckpt", "csv/metrics.csv", "wandb/run.wandb", "samples.png"):
        run = _set_up_only(tmp_path / output.replace("/", "_"))
        (run / output).parent.mkdir(parents=True, exist_ok=True)
        (run / output).write_bytes(b"x")
        assert not remove_if_unused(run) and (run / output).read_bytes() == b"x"
    assert not remove_if_unused(tmp_path / "never-created")


def test_a_run_that_fails_on_bad_input_leaves_no_run_dir_but_a_good_run_keeps_its_own(tmp_path):
    quiet = ["trainer=cpu", "logger=csv", "trainer.enable_progress_bar=false", "callbacks.model_summary=null",
             "trainer.max_epochs=1", "test=false"]
    good = run_cli("train", quiet, tmp_path)
    assert good.returncode == 0, good.stderr[-3000:]
    runs = tmp_path / "logs" / "train" / "runs"
    (kept,) = list(runs.iterdir())
    assert (kept / "checkpoints" / "last.ckpt").is_file()
    bad = run_cli("train", [*quiet, "model.net.dropout=2"], tmp_path)  # fails after Hydra made the run dir
    assert bad.returncode == 2, bad.stderr[-3000:]
    assert list(runs.iterdir()) == [kept]
