"""The benchmarks run end to end from the package and the MNIST files shipped in the repo (CI asserts
nothing about speed or quality), and a missing `--data` folder stops them with a message."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.epoch_clock import CATEGORIES

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_small_benchmark_reports_every_case(tmp_path):
    out = tmp_path / "throughput.json"
    subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--small", "--devices", "cpu", "--out", str(out)],
                   cwd=REPO, check=True, timeout=900)
    report = json.loads(out.read_text())
    assert [(r["family"], r["device"]) for r in report["results"]] == [("classifier", "cpu"), ("vae", "cpu"), ("gan", "cpu")]
    for row in report["results"]:
        for case in ("plain_tensors", "plain_dataloader", "mlgen_in_memory", "mlgen_dataloader"):
            assert row[case] > 0, (row["family"], case)
        assert row["in_memory_vs_plain"] == pytest.approx(row["mlgen_in_memory"] / row["plain_tensors"])
        # the bare-Lightning bound exists for the one-optimizer families only
        assert ("lightning_bare" in row) == (row["family"] != "gan"), row["family"]
        assert row.get("lightning_bare", 1.0) > 0
    # (f): a real mlgen-train run per family against a plain validating loop, its epochs split into parts
    assert [r["family"] for r in report["end_to_end"]] == ["classifier", "vae", "gan"]
    for row in report["end_to_end"]:
        plain, mlgen = row["plain"], row["mlgen"]
        assert row["mlgen_vs_plain"] == pytest.approx(mlgen["samples_per_s"] / plain["samples_per_s"])
        parts = {k: v for k, v in mlgen.items() if k not in ("samples_per_s", "epoch_s")}
        assert set(parts) == set(CATEGORIES) and min(parts.values()) >= 0, row["family"]
        # the parts are exclusive: together they are the epoch's wall time
        assert sum(parts.values()) == pytest.approx(mlgen["epoch_s"], rel=1e-3), row["family"]
        assert parts["training steps"] > 0 and parts["checkpoint writes"] > 0 and parts["logger writes"] > 0
        assert plain["training steps"] + plain["validation loop"] == pytest.approx(plain["epoch_s"])
    assert 0 < report["startup"]["help_s"] < report["startup"]["one_step_run_s"]


@pytest.mark.slow
def test_full_mode_reads_the_mnist_files_shipped_in_the_repo(tmp_path):
    out = tmp_path / "throughput.json"
    subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--families", "classifier", "--epochs", "2",
                    "--e2e-epochs", "2", "--repeats", "1", "--devices", "cpu", "--out", str(out)], cwd=REPO, check=True, timeout=900)
    report = json.loads(out.read_text())
    assert report["mode"] == "full" and [r["family"] for r in report["results"]] == ["classifier"]
    assert report["results"][0]["mlgen_in_memory"] > 0
    # case (f) runs in full mode too (on the 8,000-image split of the same files)
    (row,) = report["end_to_end"]
    assert row["family"] == "classifier" and row["mlgen"]["samples_per_s"] > 0 and row["plain"]["samples_per_s"] > 0


@pytest.mark.slow
def test_vae_quality_benchmark_runs_on_the_shipped_files(tmp_path):
    """A few batches of the VAE quality run, as `python benchmarks/quality/vae_mnist.py` starts it."""
    short = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
             "trainer.limit_test_batches=1", "model.iwae_samples=2", "model.iwae_chunk=2"]
    done = subprocess.run([sys.executable, "benchmarks/quality/vae_mnist.py", "--model", "vae", "--out", str(tmp_path), *short],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["model"] == "vae" and summary["iwae_samples"] == 2 and summary["test/iwae_nll"] > 0
    # the 8,000 / 2,000 split of the shipped test set, laid out for torchvision
    assert (tmp_path / "mnist" / "MNIST" / "raw" / "train-images-idx3-ubyte").stat().st_size == 16 + 8000 * 28 * 28


@pytest.mark.parametrize("module, args", [("benchmarks.throughput", []),
                                          ("benchmarks.quality.generator_mnist", ["--model", "ddpm_cond", "--out", "OUT", "--synth"]),
                                          ("benchmarks.quality.vae_mnist", ["--model", "vae", "--out", "OUT"])])
def test_a_missing_data_folder_stops_with_the_fix(module, args, tmp_path, monkeypatch, capsys):
    missing = tmp_path / "no-mnist-here"
    argv = [module, *(str(tmp_path) if a == "OUT" else a for a in args), "--data", str(missing)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stop:
        importlib.import_module(module).main()
    assert stop.value.code == 2
    message = capsys.readouterr().err
    assert f"--data {missing}: the real MNIST test set is not in {missing}" in message
    assert "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz missing. Fix:" in message
    assert list(tmp_path.iterdir()) == []  # stopped before writing anything
