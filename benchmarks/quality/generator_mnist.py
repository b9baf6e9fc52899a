"""Quality benchmark of mlgen's image generators (GANs and diffusion) on real MNIST (the test set shipped
in tests/data/mnist-t10k, or `--data FOLDER`: first 8,000 images train, last 2,000 test).

Trains the judging classifier (experiment=mnist_cnn) unless `--clf` is given, optionally measures the
generator's test/fid_clf at initialisation (`--init`, the GANs' acceptance: final <= init / 5), trains the
generator (experiment=mnist_<model>) and reports its test fid_clf, kid_clf and, for conditional models,
label agreement. `--synth` then runs `mlgen-synth experiment=mnist_synth` on the trained generator:
CAS (train on its samples, test on real), real accuracy and CAS / real over the synth config's seeds.
Prints one line per step and a JSON summary with the wall and CPU time of each part.

    nice -n 10 python -m benchmarks.quality.generator_mnist --model cgan_sn --out OUT --clf CLF --synth
    nice -n 10 python -m benchmarks.quality.generator_mnist --model ddpm_cond --out OUT --clf CLF --synth
    nice -n 10 python -m benchmarks.quality.generator_mnist --model dcgan --out OUT --init
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `python benchmarks/quality/<this>.py` finds `benchmarks`

from benchmarks.config import QUICK, compose  # noqa: E402
from benchmarks.mnist_data import add_data_option, check_data, mnist_root  # noqa: E402
from mlgen.tasks.synth import synth  # noqa: E402
from mlgen.tasks.train import train  # noqa: E402

MODELS = {"dcgan": False, "cgan": True, "cgan_sn": True, "ddpm": False, "ddpm_cond": True}  # name: conditional


def timed(run: Callable[[], Any]) -> tuple[Any, dict[str, int]]:
    """`run()`'s result and its wall and CPU seconds (CPU of all threads of this process)."""
    start, cpu_start = time.time(), time.process_time()
    result = run()
    return result, {"wall_s": round(time.time() - start), "cpu_s": round(time.process_time() - cpu_start)}


def prepare_classifier(out: Path, common: list[str]) -> str:
    """Train the classifier whose features judge the generators (once; reused when its checkpoint exists)."""
    ckpt = out / "clf" / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        result, cost = timed(lambda: train(compose([*common, "experiment=mnist_cnn"], out / "clf")))
        print(f"classifier: test/acc={result.metrics['test/acc']:.4f} ({cost}) -> {ckpt}", flush=True)
    return str(ckpt)


def val_curve(run: Path) -> list[float]:
    with open(run / "csv" / "metrics.csv") as f:
        return [round(float(row["val/fid_clf"]), 2) for row in csv.DictReader(f) if row.get("val/fid_clf")]


def quality(metrics: dict[str, float], prefix: str = "") -> dict[str, float]:
    keys = ("test/fid_clf", "test/kid_clf", "test/label_agreement")
    return {f"{prefix}{key.split('/')[1]}": round(metrics[key], 4) for key in keys if key in metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), required=True, help="experiment=mnist_<model>")
    parser.add_argument("--out", type=Path, required=True, help="work folder (data, runs)")
    parser.add_argument("--clf", help="classifier checkpoint to reuse (default: train one)")
    parser.add_argument("--epochs", type=int, help="generator epochs (default: the experiment's)")
    parser.add_argument("--trainer", default="cpu", help="trainer config of every run (cpu, gpu, ...)")
    parser.add_argument("--init", action="store_true", help="also measure the untrained generator (train=false)")
    parser.add_argument("--synth", action="store_true", help="then mlgen-synth experiment=mnist_synth on it (conditional models)")
    parser.add_argument("--synth-overrides", nargs="*", default=[], help="extra Hydra overrides of the mlgen-synth run")
    add_data_option(parser)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the generator run")
    args = parser.parse_args()
    check_data(parser, args.data)
    if args.synth and not MODELS[args.model]:
        parser.error(f"--synth needs a conditional generator (its samples carry labels): --model {args.model} is not one; "
                     f"use one of {[name for name, conditional in MODELS.items() if conditional]}")
    os.environ.setdefault("MLGEN_LOG_DIR", str(args.out / "logs"))
    os.environ.setdefault("WANDB_MODE", "disabled")

    import torch

    common = [*QUICK, f"trainer={args.trainer}", f"data.root={mnist_root(args.data, args.out / 'mnist')}"]
    clf = args.clf or prepare_classifier(args.out, common)
    generator = [*common, f"experiment=mnist_{args.model}", f"model.metrics.feature_ckpt={clf}", *args.overrides]
    if args.epochs is not None:
        generator.append(f"trainer.max_epochs={args.epochs}")
    summary: dict[str, Any] = {"model": args.model, "torch_threads": torch.get_num_threads()}
    if args.init:
        init = train(compose([*generator, "train=false"], args.out / f"{args.model}_init")).metrics
        summary.update(quality(init, "init_"))
        print(f"{args.model} at initialisation: {init}", flush=True)

    run = args.out / args.model
    cfg = compose(generator, run)
    result, cost = timed(lambda: train(cfg))
    summary.update(epochs=cfg.trainer.max_epochs, train_and_test=cost, **quality(result.metrics),
                   val_fid_clf=val_curve(run), generator_ckpt=str(run / "checkpoints" / "last.ckpt"))
    if args.init:
        summary["fid_ratio"] = round(summary["fid_clf"] / summary["init_fid_clf"], 4)
    print(f"{args.model}: {summary}", flush=True)

    if args.synth:
        synth_cfg = compose([*common, "experiment=mnist_synth", f"generator_ckpt={summary['generator_ckpt']}",
                             *args.synth_overrides], args.out / f"{args.model}_synth", config_name="synth")
        report, cost = timed(lambda: synth(synth_cfg))
        scores = report.scores()
        summary["synth"] = {"cost": cost, "steps_per_arm": report.steps, "seeds": report.seeds,
                            **{key: round(value, 4) for key, value in scores.items()}}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
