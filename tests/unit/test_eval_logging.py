"""Validation and test values are logged once per epoch (`MLGenModule.log_eval_values`), with the numbers
per-batch `self.log(on_epoch=True)` gave: the mean over every example of the split, not over batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlgen.models.classifier import Classifier
from mlgen.models.vae import VAE

ADAM = {"_target_": "torch.optim.Adam", "lr": 1e-3}
ROWS = 37  # batches of 8: the last holds 5 rows, so a mean over batches would differ from one over rows


def classifier() -> Classifier:
    torch.manual_seed(0)
    net = {"_target_": "mlgen.nets.mlp.MLPClassifierNet", "hidden": [16], "dropout": 0.0}
    return Classifier(shape=(6,), num_classes=3, net=net, optimizer=ADAM)


def vae() -> VAE:
    torch.manual_seed(0)
    net = {"encoder": {"_target_": "mlgen.nets.vae_nets.Encoder", "hidden": [16]},
           "decoder": {"_target_": "mlgen.nets.vae_nets.Decoder", "hidden": [16]}}
    return VAE(shape=(1, 2, 3), num_classes=3, net=net, optimizer=ADAM, latent_dim=2, likelihood="gaussian",
               gaussian_std=1.0, iwae_samples=4, iwae_chunk=4)


def loader(shape: tuple[int, ...], batch_size: int = 8) -> DataLoader:
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(ROWS, *shape, generator=generator) * 2 - 1
    return DataLoader(TensorDataset(x, torch.randint(0, 3, (ROWS,), generator=generator)), batch_size=batch_size)


def trainer(tmp_path: Path) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=tmp_path)


@pytest.mark.parametrize("run", ["validate", "test"])
def test_classifier_logs_the_mean_over_every_row_of_the_split(tmp_path, run):
    model, data = classifier(), loader((6,))
    split = "val" if run == "validate" else "test"
    for _ in range(2):  # a second epoch starts from empty sums and metrics
        logged = getattr(trainer(tmp_path), run)(model, dataloaders=data, verbose=False)[0]
        x, y = data.dataset.tensors
        with torch.no_grad():
            logits = model.eval()(x)
        assert logged[f"{split}/loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
        assert logged[f"{split}/acc"] == pytest.approx((logits.argmax(1) == y).float().mean().item(), abs=1e-7)
        assert set(logged) == {f"{split}/loss", f"{split}/acc", f"{split}/f1"}


def test_vae_logs_the_mean_of_its_terms_over_every_row(tmp_path):
    model, data = vae(), loader((1, 2, 3))
    torch.manual_seed(5)
    logged = trainer(tmp_path).test(model, dataloaders=data, verbose=False)[0]
    torch.manual_seed(5)  # the same draws of z, batch by batch, as the test run made (iterating the loader
    rows = []  # draws its base seed first, as there)
    with torch.no_grad():
        for xb, yb in data:
            recon, kl = model.eval().elbo_terms(xb, yb)
            rows.append((recon, kl, model.iwae_nll(xb, yb)))
    recon, kl, nll = (torch.cat(t) for t in zip(*rows, strict=True))
    assert logged["test/recon"] == pytest.approx(recon.mean().item(), rel=1e-5)
    assert logged["test/kl"] == pytest.approx(kl.mean().item(), rel=1e-5)
    assert logged["test/elbo"] == pytest.approx(-(recon + kl).mean().item(), rel=1e-5)
    assert logged["test/iwae_nll"] == pytest.approx(nll.mean().item(), rel=1e-5)


@pytest.mark.parametrize("make, shape", [(classifier, (6,)), (vae, (1, 2, 3))])
def test_log_calls_per_validation_epoch_do_not_grow_with_its_batches(tmp_path, monkeypatch, make, shape):
    """Each `self.log` call costs Lightning about half a millisecond (issue #17)."""
    calls = []
    original = pl.LightningModule.log
    monkeypatch.setattr(pl.LightningModule, "log", lambda self, name, *a, **k: calls.append(name) or original(self, name, *a, **k))
    counts = []
    for batch_size in (ROWS, 4):  # one batch, then ten
        calls.clear()
        trainer(tmp_path).validate(make(), dataloaders=loader(shape, batch_size), verbose=False)
        counts.append(len(calls))
    assert counts[0] == counts[1] > 0
