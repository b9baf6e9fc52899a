"""Case (f): what a whole `mlgen-train` run delivers per epoch, against a plain loop doing the same work.

mlgen arm: the real CLI (`python -m mlgen.cli train`, a fresh process, its defaults: validation every
epoch, both checkpoint callbacks, the default logger (W&B, offline here), the progress display for a
pipe) with `benchmarks.epoch_clock.EpochClock` added on the command line to time each epoch and split it
into validation, metrics, logging, checkpoint writes and progress display.
Plain arm: the same net, optimizer, batch, train/val split and in-memory batches, a training epoch then
one validation pass (the family's loss and metrics under `torch.no_grad`) per epoch, in the environment of a
plain PyTorch program (`benchmarks.timing.plain_pytorch_environment`).

Both time epochs 1.. from one epoch's start to the next (epoch 0 warms up), so start-up, the sanity check
and the final test are left out of both: the same as the difference between a short and a long run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.config import compose
from benchmarks.epoch_clock import CATEGORIES
from benchmarks.families import Family
from benchmarks.timing import plain_pytorch_environment, sync

REPO = Path(__file__).resolve().parents[1]
CLOCK = "benchmarks.epoch_clock.EpochClock"


def mlgen_cli_epochs(overrides: list[str], epochs: int, workdir: Path, extra_env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Per-epoch timings (EpochClock's records) of one `mlgen-train` run in a fresh interpreter."""
    out = workdir / f"clock-{time.time_ns()}.json"
    args = [*overrides, f"trainer.max_epochs={epochs}", "test=false",  # the test run after fit is not per-epoch work
            f"+callbacks.epoch_clock._target_={CLOCK}", f"+callbacks.epoch_clock.out={out}", f"trusted_targets=[{CLOCK}]"]
    env = {**os.environ, "MLGEN_LOG_DIR": str(workdir / "logs"), "WANDB_MODE": "offline", **(extra_env or {})}
    done = subprocess.run([sys.executable, "-m", "mlgen.cli", "train", *args], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True)  # stdout is a pipe, as in a Slurm job
    if done.returncode:
        raise RuntimeError(f"mlgen-train {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())["epochs"]


def plain_validating_epochs(family: Family, cfg: Any, epochs: int, device: torch.device, bf16: bool) -> list[dict[str, Any]]:
    """Per-epoch timings of a plain loop: a shuffled pass over the training batches, then one over the
    validation batches, on the same split and batches as the mlgen arm (under bf16 autocast if asked)."""
    from mlgen.config.instantiate import instantiate_datamodule

    datamodule = instantiate_datamodule(cfg.data)
    datamodule.setup("fit")
    x, y = (t.to(device) for t in datamodule.datasets["train"].tensors)
    vx, vy = (t.to(device) for t in datamodule.datasets["val"].tensors)
    batch, eval_batch = cfg.data.batch_size, cfg.data.get("eval_batch_size") or cfg.data.batch_size
    torch.manual_seed(0)
    model, step = family.plain_model_and_step(cfg, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    records = []
    for epoch in range(epochs):
        sync(device)
        start = time.perf_counter()
        with autocast:
            for index in torch.randperm(len(x), device=device).split(batch):
                step(x[index], y[index])
        sync(device)
        trained = time.perf_counter()
        if family.evaluate is not None:
            model.eval()
            with torch.no_grad(), autocast:
                for i in range(0, len(vx), eval_batch):
                    family.evaluate(model, vx[i : i + eval_batch], vy[i : i + eval_batch])
            model.train()
        sync(device)
        done = time.perf_counter()
        if epoch > 0:
            records.append({"samples": len(x), "wall_s": done - start, "training steps": trained - start,
                            "validation loop": done - trained})
    return records


def summary(records: list[dict[str, Any]]) -> dict[str, float]:
    """Samples/s over all timed epochs and the mean seconds per epoch of each category."""
    n = len(records)
    out = {"samples_per_s": sum(r["samples"] for r in records) / sum(r["wall_s"] for r in records),
           "epoch_s": sum(r["wall_s"] for r in records) / n}
    for category in CATEGORIES:
        if any(category in r for r in records):
            out[category] = sum(r.get(category, 0.0) for r in records) / n
    return out


def bench_end_to_end(family: Family, data: list[str], batch_size: int, epochs: int, repeats: int, workdir: Path,
                     device: torch.device, precision: str, options: list[str], batches_per_step: int | None = None) -> dict[str, Any]:
    """Both arms `repeats` times, interleaved; the best run of each counts (noise only slows a run down).
    The mlgen process runs with as many torch threads as this one; `options` are extra model overrides.
    `batches_per_step` (not None, not 1): mlgen with that `data.batches_per_step`, and a third arm with 1."""
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    overrides = [*data, f"data.batch_size={batch_size}", *family.overrides, *options,
                 f"trainer.accelerator={accelerator}", f"trainer.precision={precision}"]
    cfg = compose([*overrides, "logger=csv"], workdir / "plain")  # the plain arm reads model and data only
    threads = {"OMP_NUM_THREADS": str(torch.get_num_threads())}
    fast = [] if batches_per_step is None else [f"data.batches_per_step={batches_per_step}"]

    def plain() -> list[dict[str, Any]]:
        with plain_pytorch_environment():
            return plain_validating_epochs(family, cfg, epochs, device, precision.startswith("bf16"))

    arms = [("plain", plain),
            ("mlgen", lambda: mlgen_cli_epochs([*overrides, *fast], epochs, workdir, threads))]
    if batches_per_step not in (None, 1):
        arms.append(("mlgen_one_per_step", lambda: mlgen_cli_epochs([*overrides, "data.batches_per_step=1"], epochs, workdir, threads)))
    best: dict[str, dict[str, float]] = {}
    for _ in range(repeats):
        for arm, run in arms:
            result = summary(run())
            if arm not in best or result["samples_per_s"] > best[arm]["samples_per_s"]:
                best[arm] = result
    return {**best, "mlgen_vs_plain": best["mlgen"]["samples_per_s"] / best["plain"]["samples_per_s"]}
