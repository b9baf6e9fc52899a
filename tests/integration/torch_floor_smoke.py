"""Train on the lowest torch mlgen declares; run by tests/integration/test_install.py inside a venv that holds it.

Exercises the torch features that set the floor: `nn.Module.compile` (mlgen's compiled net against eager),
`torch.optim.swa_utils.get_ema_multi_avg_fn` (the GAN's EMA generator) and `torch.load(weights_only=True)`
(mlgen's checkpoint loader). The classifier and GAN are built from mlgen's configs and trained by a plain
Lightning Trainer: mlgen's train task also draws image grids with torchvision, and the torchvision wheels on
this machine are CUDA builds that can't load beside the CPU build of the older torch.
Prints one JSON line of results.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from mlgen import resolvers  # noqa: F401  (the resolvers mlgen's configs use)
from mlgen.checkpoints.load import load_checkpoint
from mlgen.config.instantiate import instantiate_datamodule, instantiate_model


def build(overrides: list[str]) -> tuple[pl.LightningModule, DictConfig]:
    with initialize_config_module("mlgen.conf", version_base="1.3"):
        cfg = compose("train", overrides=["trainer=cpu", *overrides])
    return instantiate_model(cfg.model), cfg


def fit(overrides: list[str], max_epochs: int, out: Path) -> tuple[pl.LightningModule, pl.Trainer, Path]:
    model, cfg = build(overrides)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=max_epochs, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         default_root_dir=out)
    trainer.fit(model, instantiate_datamodule(cfg.data))
    ckpt = out / f"{type(model).__name__}.ckpt"
    trainer.save_checkpoint(ckpt)
    return model, trainer, ckpt


def compiled_gap() -> float:
    """Largest difference between the outputs of mlgen's compiled net and the same net run eagerly, in eval
    mode (no dropout masks) on one batch: compiling a whole training run costs a minute on 2 cores."""
    model, _ = build(["model=classifier", "model.compile=true"])
    model.configure_model()  # compiles the net in place
    if model.net._compiled_call_impl is None:
        return float("inf")
    model.eval()
    x = torch.rand(64, *model.shape)
    with torch.no_grad():  # calling forward directly bypasses the compiled call
        return (model.net(x) - model.net.forward(x)).abs().max().item()


def main(out: Path) -> None:
    classifier, trainer, ckpt = fit(["model=classifier"], 2, out)
    saved = load_checkpoint(ckpt)["state_dict"]  # weights_only=True
    gan, _, gan_ckpt = fit(["model=dcgan", "model/gan_nets=mlp"], 1, out)
    ema = dict(gan.generator_ema.module.named_parameters())
    gap = max((ema[name] - p).abs().max().item() for name, p in gan.generator.named_parameters())
    gan_saved = load_checkpoint(gan_ckpt)["state_dict"]
    print(json.dumps({
        "torch": torch.__version__,
        "compiled_vs_eager": compiled_gap(),
        "val_acc": trainer.callback_metrics["val/acc"].item(),
        "checkpoint_matches": all(torch.equal(saved[k], v.cpu()) for k, v in classifier.state_dict().items()),
        "ema_generator_gap": gap,
        "gan_checkpoint_has_ema": any(k.startswith("generator_ema.") for k in gan_saved),
    }))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
