"""Quality benchmark of the GANs on real MNIST (the test set shipped in tests/data/mnist-t10k, or
`--data FOLDER`: first 8,000 images train, last 2,000 test).

Trains the judging classifier (experiment=mnist_cnn), measures the GAN's test/fid_clf at
initialisation (train=false), trains it on CPU and measures again; the conditional GAN also reports
test/label_agreement. Acceptance (issue 4): final fid_clf <= init / 5 (dcgan); label agreement
>= 0.85 (cgan). Prints the numbers, and a JSON summary with wall and CPU time of the GAN training.

    nice -n 10 python -m benchmarks.quality.gan_mnist --model dcgan --out /tmp/gan_bench
    nice -n 10 python -m benchmarks.quality.gan_mnist --model cgan --out /tmp/gan_bench --clf CKPT
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `python benchmarks/quality/<this>.py` finds `benchmarks`

from benchmarks.config import QUICK, compose  # noqa: E402
from benchmarks.mnist_data import add_data_option, check_data, mnist_root  # noqa: E402
from mlgen.tasks.train import train  # noqa: E402


def prepare_classifier(out: Path, data_root: Path) -> str:
    """Train the classifier whose features judge the GANs (once; reused when its checkpoint exists)."""
    ckpt = out / "clf" / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        start = time.time()
        cfg = compose([*QUICK, f"data.root={data_root}", "experiment=mnist_cnn"], out / "clf")
        result = train(cfg)
        print(f"classifier: test/acc={result.metrics['test/acc']:.4f} in {time.time() - start:.0f} s -> {ckpt}", flush=True)
    return str(ckpt)


def val_curve(run: Path) -> list[float]:
    with open(run / "csv" / "metrics.csv") as f:
        return [round(float(row["val/fid_clf"]), 2) for row in csv.DictReader(f) if row.get("val/fid_clf")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["dcgan", "cgan"], required=True)
    parser.add_argument("--out", type=Path, required=True, help="work folder (data, runs)")
    parser.add_argument("--clf", help="classifier checkpoint to reuse (default: train one)")
    parser.add_argument("--epochs", type=int, help="GAN epochs (default: the experiment's)")
    add_data_option(parser)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the GAN run")
    args = parser.parse_args()
    check_data(parser, args.data)
    os.environ.setdefault("MLGEN_LOG_DIR", str(args.out / "logs"))
    os.environ.setdefault("WANDB_MODE", "disabled")
    data_root = mnist_root(args.data, args.out / "mnist")
    clf = args.clf or prepare_classifier(args.out, data_root)

    gan = [*QUICK, f"data.root={data_root}", f"experiment=mnist_{args.model}",
           f"model.metrics.feature_ckpt={clf}", *args.overrides]
    if args.epochs is not None:
        gan.append(f"trainer.max_epochs={args.epochs}")
    init = train(compose([*gan, "train=false"], args.out / f"{args.model}_init")).metrics
    print(f"{args.model} at initialisation: {init}", flush=True)

    start, cpu_start = time.time(), time.process_time()
    run = args.out / args.model
    cfg = compose([*gan, "model.monitor=val/fid_clf"], run)
    final = train(cfg).metrics
    summary = {
        "model": args.model,
        "epochs": cfg.trainer.max_epochs,
        "torch_threads": __import__("torch").get_num_threads(),
        "train_wall_s": round(time.time() - start),
        "train_cpu_s": round(time.process_time() - cpu_start),
        "fid_clf_init": round(init["test/fid_clf"], 2),
        "fid_clf_final": round(final["test/fid_clf"], 2),
        "fid_ratio": round(final["test/fid_clf"] / init["test/fid_clf"], 4),
        "kid_clf_final": round(final["test/kid_clf"], 4),
        "val_fid_clf_per_epoch": val_curve(run),
    }
    if args.model == "cgan":
        summary["label_agreement_init"] = round(init["test/label_agreement"], 4)
        summary["label_agreement_final"] = round(final["test/label_agreement"], 4)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
