"""Training throughput of mlgen against a plain PyTorch loop, measured in one process.

For each model family, on the same data, net, batch size and optimizer, it times:
  (a) plain loop over pre-made tensor batches on the device (the limit),
  (b) the same loop over a standard DataLoader(TensorDataset),
  (c) mlgen's Trainer (the `mlgen-train` config) with the in-memory data path; with `--batches-per-step K`
      (the fast path, `data.batches_per_step`) also (c1), the same with one batch per Lightning step,
  (d) the same with the DataLoader path,
  (e) Lightning's own loop without mlgen (classifier and VAE: the bound for (c), see bare_lightning.py),
  (f) end to end: a whole `mlgen-train` run per epoch (validation, metrics, checkpoints, logger, progress
      display) against a plain loop that also validates every epoch, with mlgen's epoch split into those
      parts (see end_to_end.py and epoch_clock.py; CPU, the MNIST 8,000-image split),
and reports samples/s and the ratios (c)/(a), (c1)/(a), (d)/(a), (c)/(d), (e)/(a), (f) mlgen/plain (and mlgen
with one batch per step / plain) as tables and JSON,
plus the start-up time of `mlgen-train --help` and of a one-step run.

    python -m benchmarks.throughput                  # full: MNIST t10k images (--data), CPU (+ GPU bf16 if present)
    python -m benchmarks.throughput --small          # CI smoke run on digits; asserts nothing about speed
    python -m benchmarks.throughput --cases end-to-end --threads 1   # case (f) only, one torch thread

The plain arms run in the environment of a plain PyTorch program, without what Lightning's import sets in this
process (`benchmarks.timing.plain_pytorch_environment`); each mlgen arm's own settings end with it.
Epoch 0 of every case is a warm-up and is not timed; each case runs `--repeats` times and the
best run counts (timing noise on a shared machine only ever slows a run down).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.bare_lightning import bare_lightning_run
from benchmarks.config import compose
from benchmarks.end_to_end import bench_end_to_end
from benchmarks.epoch_clock import CATEGORIES
from benchmarks.families import FAMILIES, Family
from benchmarks.mnist_data import add_data_option, check_data, mnist_root
from benchmarks.timing import EpochTimer, plain_pytorch_environment, restored_environment, sync


def plain_loop(step: Callable[[torch.Tensor, torch.Tensor], None], batches: Callable[[], Any], epochs: int,
               device: torch.device, bf16: bool) -> float:
    """Samples/s of `step` over the batches of epochs 1.. (epoch 0 warms up), in the environment of a plain
    PyTorch program."""
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    samples, seconds = 0, 0.0
    with plain_pytorch_environment():
        for epoch in range(epochs):
            sync(device)
            start = time.perf_counter()
            n = 0
            for x, y in batches():
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with autocast:
                    step(x, y)
                n += len(y)
            sync(device)
            if epoch > 0:
                samples, seconds = samples + n, seconds + time.perf_counter() - start
    return samples / seconds


def trainer_run(cfg: Any, epochs: int) -> float:
    """Samples/s of mlgen's own Trainer, built exactly as `mlgen-train` builds it."""
    from mlgen.config.instantiate import instantiate_datamodule, instantiate_model
    from mlgen.tasks.common import build_trainer, without_group_count_warning

    datamodule, model = instantiate_datamodule(cfg.data), instantiate_model(cfg.model)
    timer = EpochTimer()
    with restored_environment():  # what the Trainer sets for itself stays with this arm
        trainer = build_trainer(cfg, extra_callbacks=[timer])
        with without_group_count_warning(model):  # as mlgen-train fits (mlgen/tasks/train.py)
            trainer.fit(model, datamodule=datamodule)
    return timer.samples_per_second()


def bench_family(family: Family, base: list[str], epochs: int, repeats: int, device: torch.device,
                 precision: str, output_dir: Path, batches_per_step: int | None = None) -> dict[str, float]:
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    overrides = [*base, *family.overrides, f"trainer.accelerator={accelerator}", f"trainer.precision={precision}",
                 f"trainer.max_epochs={epochs}"]  # base ends with the speed options, which override the family's
    fast = [] if batches_per_step is None else [f"data.batches_per_step={batches_per_step}"]
    cfg = compose([*overrides, *fast, "data.in_memory=true"], output_dir)
    datamodule = _setup(cfg)
    x, y = datamodule.datasets["train"].tensors
    batch = cfg.data.batch_size
    on_device = [(x[i : i + batch].to(device), y[i : i + batch].to(device)) for i in range(0, len(x), batch)]
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
    bf16 = precision.startswith("bf16")

    def plain(batches: Callable[[], Any]) -> float:
        torch.manual_seed(0)
        return plain_loop(family.plain_step(cfg, device), batches, epochs, device, bf16)

    runs: dict[str, Callable[[], float]] = {
        "plain_tensors": lambda: plain(lambda: (on_device[i] for i in torch.randperm(len(on_device)).tolist())),
        "plain_dataloader": lambda: plain(lambda: loader),
        "mlgen_in_memory": lambda: trainer_run(cfg, epochs),
        **({"mlgen_one_per_step": lambda: trainer_run(compose([*overrides, "data.batches_per_step=1"], output_dir), epochs)}
           if cfg.data.get("batches_per_step", 1) != 1 else {}),
        "mlgen_dataloader": lambda: trainer_run(compose([*overrides, "data.in_memory=false"], output_dir), epochs),
    }
    if family.loss is not None:
        runs["lightning_bare"] = lambda: bare_lightning_run(cfg, family.loss, x.to(device), y.to(device), epochs)
    result = {name: 0.0 for name in runs}
    for _ in range(repeats):  # interleaved, so a slow spell of the machine hits every case alike
        for name, run in runs.items():
            result[name] = max(result[name], run())
    result["in_memory_vs_plain"] = result["mlgen_in_memory"] / result["plain_tensors"]
    if "mlgen_one_per_step" in result:
        result["one_per_step_vs_plain"] = result["mlgen_one_per_step"] / result["plain_tensors"]
    result["dataloader_vs_plain"] = result["mlgen_dataloader"] / result["plain_tensors"]
    result["in_memory_vs_dataloader"] = result["mlgen_in_memory"] / result["mlgen_dataloader"]
    if "lightning_bare" in result:
        result["lightning_vs_plain"] = result["lightning_bare"] / result["plain_tensors"]
    return result


def _setup(cfg: Any) -> Any:
    from mlgen.config.instantiate import instantiate_datamodule

    datamodule = instantiate_datamodule(cfg.data)
    datamodule.setup("fit")
    return datamodule


def startup_seconds(data: list[str], log_dir: Path) -> dict[str, float]:
    """Wall time of `mlgen-train --help` and of a one-step run, each in a fresh interpreter."""
    env = {**os.environ, "MLGEN_LOG_DIR": str(log_dir)}

    def timed(args: list[str]) -> float:
        start = time.perf_counter()  # `python -m mlgen.cli train` imports exactly what the mlgen-train script does
        done = subprocess.run([sys.executable, "-m", "mlgen.cli", "train", *args], env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"mlgen-train {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return time.perf_counter() - start

    one_step = [*data, "logger=csv", "trainer=cpu", "trainer.max_epochs=1", *(f"trainer.limit_{s}_batches=1" for s in ("train", "val", "test"))]
    return {"help_s": timed(["--help"]), "one_step_run_s": timed(one_step)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="CI smoke mode: digits, few epochs, one repeat")
    parser.add_argument("--families", nargs="+", default=["classifier", "vae", "gan"], choices=list(FAMILIES),
                        help="MLP families by default; classifier_cnn is the conv net for --channels-last")
    parser.add_argument("--precision", default=None, help="Lightning precision (default: bf16-mixed on cuda, 32-true on cpu)")
    parser.add_argument("--compile", action="store_true", help="model.compile=true in every case (plain arms too)")
    parser.add_argument("--channels-last", action="store_true", help="model.channels_last=true in every case (conv nets)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per case (the first is warm-up)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda (default: cpu, plus cuda if present)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES),
                        help="steps: cases (a)-(e); end-to-end: case (f), on CPU (default: both)")
    parser.add_argument("--e2e-epochs", type=int, default=None, help="epochs per case (f) run (the first is warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in every case (default: torch's)")
    parser.add_argument("--batches-per-step", type=int, default=None,
                        help="data.batches_per_step of the mlgen arms (default: the config's); when not 1, the same arms "
                             "with 1 run too, interleaved (before/after of the fast path)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/throughput.json"))
    add_data_option(parser)
    args = parser.parse_args(argv)
    if not args.small:
        check_data(parser, args.data)
    if args.threads:
        torch.set_num_threads(args.threads)

    epochs = args.epochs or (2 if args.small else 12)
    e2e_epochs = args.e2e_epochs or (3 if args.small else 12)
    repeats = args.repeats or (1 if args.small else 3)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    with tempfile.TemporaryDirectory() as tmp:
        # full mode: all 10,000 images as the train split (the test split, unused, is their first 100)
        data = ["data=digits"] if args.small else [
            "data=mnist", f"data.root={mnist_root(args.data, Path(tmp) / 'mnist', slice(None), slice(0, 100))}"]
        base = [*data, f"data.batch_size={args.batch_size}", "logger=csv",
                "callbacks.model_summary=null", "trainer.limit_val_batches=0",
                "trainer.num_sanity_val_steps=0", "test=false", "trainer.enable_progress_bar=false"]
        report: dict[str, Any] = {"mode": "small" if args.small else "full", "epochs": epochs, "repeats": repeats,
                                  "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(), "results": [],
                                  "end_to_end_epochs": e2e_epochs, "end_to_end": []}
        options = [*(["model.compile=true"] if args.compile else []), *(["model.channels_last=true"] if args.channels_last else [])]
        report["options"] = options
        # the 8,000 / 2,000 split of the test set, as `mlgen-train data=mnist` on a small MNIST
        split = ["data=digits"] if args.small else ["data=mnist", f"data.root={mnist_root(args.data, Path(tmp) / 'mnist-split')}"]
        for device_name in devices:
            precision = args.precision or ("bf16-mixed" if device_name == "cuda" else "32-true")
            device = torch.device(device_name)
            for name in args.families if "steps" in args.cases else []:
                result = bench_family(FAMILIES[name], [*base, *options], epochs, repeats, device, precision, Path(tmp) / "run",
                                      args.batches_per_step)
                report["results"].append({"family": name, "device": device_name, "precision": precision, **result})
            for name in args.families if "end-to-end" in args.cases else []:
                result = bench_end_to_end(FAMILIES[name], split, args.batch_size, e2e_epochs, repeats, Path(tmp) / "e2e",
                                          device, precision, options, args.batches_per_step)
                report["end_to_end"].append({"family": name, "device": device_name, "precision": precision, **result})
        report["startup"] = startup_seconds(["data=digits"], Path(tmp) / "logs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_report(report, args.out)
    return report


CASES = ("steps", "end-to-end")


def print_report(report: dict[str, Any], path: Path) -> None:
    from rich.console import Console

    console = Console(width=max(Console().width, 120))
    if report["results"]:
        console.print(_steps_table(report))
    if report["end_to_end"]:
        console.print(_end_to_end_table(report))
    s = report["startup"]
    console.print(f"mlgen-train --help: {s['help_s']:.2f} s; one-step run: {s['one_step_run_s']:.2f} s; JSON: {path}")


def _end_to_end_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"(f) end to end, epochs 1-{report['end_to_end_epochs'] - 1} of {report['end_to_end_epochs']}: "
                        f"samples/s and ms per epoch (plain: training, validation) {' '.join(report['options'])}")
    for column in ("family", "device", "arm", "samples/s", "mlgen/plain", "epoch ms", *CATEGORIES):
        table.add_column(column)
    for r in report["end_to_end"]:
        for arm in ("plain", "mlgen", "mlgen_one_per_step"):
            if arm not in r:
                continue
            row = r[arm]
            ratio = f"{row['samples_per_s'] / r['plain']['samples_per_s']:.2f}" if arm != "plain" else ""
            table.add_row(r["family"], f"{r['device']} {r['precision']}", arm, f"{row['samples_per_s']:,.0f}", ratio,
                          f"{1000 * row['epoch_s']:.1f}", *(f"{1000 * row[p]:.1f}" if p in row else "-" for p in CATEGORIES))
    return table


def _steps_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"Training throughput, samples/s ({report['mode']} mode, batch {report['batch_size']}) {' '.join(report['options'])}")
    for column in ("family", "device", "(a) plain", "(b) plain DL", "(c) mlgen mem", "(c1) 1/step", "(d) mlgen DL",
                   "(e) Lightning", "c/a", "c1/a", "d/a", "c/d", "e/a"):
        table.add_column(column)
    for r in report["results"]:
        table.add_row(r["family"], f"{r['device']} {r['precision']}",
                      *(f"{r[k]:,.0f}" if k in r else "-" for k in ("plain_tensors", "plain_dataloader", "mlgen_in_memory", "mlgen_one_per_step",
                                                                   "mlgen_dataloader", "lightning_bare")),
                      *(f"{r[k]:.2f}" if k in r else "-" for k in ("in_memory_vs_plain", "one_per_step_vs_plain", "dataloader_vs_plain",
                                                                   "in_memory_vs_dataloader", "lightning_vs_plain")))
    return table


if __name__ == "__main__":
    main()
