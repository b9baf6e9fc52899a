"""Quality benchmark of the VAE family on real MNIST (the test set shipped in tests/data/mnist-t10k, or
`--data FOLDER`: first 8,000 images train, last 2,000 test, binarized).

`--model vae`: the MLP VAE of experiment=mnist_vae (2x400 hidden, 20-d latent, 30 epochs) and its
test/iwae_nll (k = model.iwae_samples = 1000); acceptance (issue 3): < 110 nats.
`--model cvae`: trains the judging classifier (experiment=mnist_cnn) unless --clf is given, trains the
CVAE (experiment=mnist_cvae, 2-d latent) and prints the share of its samples for label c that the classifier
calls c; acceptance: >= 0.90. Prints one line per step and a JSON summary at the end.

    nice -n 10 python -m benchmarks.quality.vae_mnist --model vae --out /tmp/vae_bench
    nice -n 10 python -m benchmarks.quality.vae_mnist --model cvae --out /tmp/vae_bench [--clf CKPT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `python benchmarks/quality/<this>.py` finds `benchmarks`

from benchmarks.config import QUICK, compose  # noqa: E402
from benchmarks.mnist_data import add_data_option, check_data, mnist_root  # noqa: E402
from mlgen.checkpoints.load import load_model  # noqa: E402
from mlgen.metrics.label_agreement import label_agreement  # noqa: E402
from mlgen.tasks.train import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["vae", "cvae"], required=True)
    parser.add_argument("--out", type=Path, required=True, help="work folder (data, runs)")
    parser.add_argument("--clf", help="cvae: classifier checkpoint to reuse (default: train one)")
    parser.add_argument("--per-class", type=int, default=1000, help="cvae: samples per class judged")
    parser.add_argument("--trainer", default="cpu", help="trainer config of every run (cpu, gpu, ...)")
    add_data_option(parser)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the VAE run")
    args = parser.parse_args()
    check_data(parser, args.data)
    os.environ.setdefault("MLGEN_LOG_DIR", str(args.out / "logs"))
    os.environ.setdefault("WANDB_MODE", "disabled")

    common = [*QUICK, f"trainer={args.trainer}", f"data.root={mnist_root(args.data, args.out / 'mnist')}", "seed=1"]
    summary: dict[str, object] = {"model": args.model}

    start = time.time()
    cfg = compose([*common, f"experiment=mnist_{args.model}", *args.overrides], args.out / args.model)
    result = train(cfg)
    summary.update(epochs=cfg.trainer.max_epochs, train_and_test_wall_s=round(time.time() - start),
                   **{k: result.metrics[k] for k in ("val/elbo", "test/elbo", "test/recon", "test/kl") if k in result.metrics})
    print(f"{args.model}: {summary}", flush=True)
    if args.model == "vae":
        summary["test/iwae_nll"] = result.metrics["test/iwae_nll"]
        summary["iwae_samples"] = cfg.model.iwae_samples
    else:
        clf = args.clf
        if clf is None:
            clf_result = train(compose([*common, "experiment=mnist_cnn", "logger=none"], args.out / "clf"))
            clf = clf_result.best_checkpoint
            summary["classifier_test_acc"] = clf_result.metrics["test/acc"]
        generator, _ = load_model(result.best_checkpoint)
        classifier, _ = load_model(clf)
        torch.manual_seed(0)
        summary["label_agreement"] = label_agreement(generator.eval(), classifier.eval(), 10, args.per_class)
        summary["samples_judged"] = 10 * args.per_class
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
