"""2-process DDP on CPU (`trainer=ddp_cpu`, the real `mlgen-train` CLI) ends with the same weights as one
process whose batch is the global batch (2 x 16 = 32), for a classifier, a VAE, a GAN (G, D and the EMA
generator), a DDPM, and the tabular TVAE and CTGAN, also on the fast path (`data.batches_per_step`); and DDP
under Hydra leaves exactly one run dir."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

COMMON = ["trainer.max_epochs=2", "test=false", "logger=csv", "trainer.enable_progress_bar=false",
          "callbacks.model_summary=null", "callbacks.model_checkpoint.monitor=null"]
# Random masks are drawn per rank, so dropout is off; VAE and GAN noise is drawn per global batch
# (`GenerativeModule.noise`). The GAN is conditional, so each noise row must meet its own label, as the
# interleaved rows ensure; its MLP nets have no batch norm, whose statistics are per rank.
MODELS = {
    "classifier": ["model.net.dropout=0"],
    "vae": ["model=vae", "data.binarize=true", "model.latent_dim=4"],
    "gan": ["model=cgan", "model/gan_nets=mlp", "model.latent_dim=8", "model.generator.hidden=[64]",
            "model.discriminator.hidden=[64]", "model.ema_decay=0.9"],
    # conditional with label dropout: noise, timesteps and dropped labels are all drawn per global batch
    "ddpm": ["model=ddpm_cond", "model.denoiser.width=64", "model.ema_decay=0.9"],
    # tables: 12 full global batches per epoch (a short last batch would split unevenly between ranks).
    # TVAE on breast_cancer; CTGAN on fair, whose categorical columns drive the conditional vector and
    # training-by-sampling (drawn per global batch; 16 rows per rank round up to 2 packs of pac=10 on each
    # rank, 32 to 4 in one process), with batch norm and dropout off
    "tvae": ["experiment=breast_cancer_tvae", "trainer.limit_train_batches=12", "model.latent_dim=8",
             "model.net.encoder.hidden=[32]", "model.net.decoder.hidden=[32]"],
    "ctgan": ["experiment=fair_ctgan", "trainer.limit_train_batches=12", "model.latent_dim=16",
              "model.generator.hidden=[64]", "model.generator.batch_norm=false", "model.discriminator.hidden=[64]",
              "model.discriminator.dropout=0", "model.optimizer.lr=1e-3"],
}
# the epoch loss that shows each run trained; a GAN makes a D and a G step per batch
LOSS = {"classifier": "train/loss_epoch", "vae": "train/loss_epoch", "gan": "train/d_loss_epoch", "ddpm": "train/loss_epoch",
        "tvae": "train/loss_epoch", "ctgan": "train/cond_loss_epoch"}
STEPS_PER_BATCH = {"classifier": 1, "vae": 1, "gan": 2, "ddpm": 1, "tvae": 1, "ctgan": 2}
BATCHES_PER_EPOCH = {"tvae": 12, "ctgan": 12}  # others: 1,294 digits / 32 per global batch = 41
# A WGAN critic's first-layer bias gets the difference of two nearly equal means (fake minus real), so the
# summation order of 2 ranks shows through Adam's normalised steps: 1.6e-5 apart where every other weight of
# CTGAN is within 1e-7 (measured).
ATOL = {"ctgan": 1e-4}


def _train(tmp_path: Path, name: str, overrides: list[str], loss: str = "train/loss_epoch") -> tuple[dict, list[float]]:
    """Final checkpoint and the per-epoch training losses of one run."""
    log_dir = tmp_path / name
    env = {**os.environ, "MLGEN_LOG_DIR": str(log_dir), "OMP_NUM_THREADS": "1"}
    cli = Path(sys.executable).with_name("mlgen-train")
    proc = subprocess.run([str(cli), *COMMON, *overrides], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = (log_dir / "train" / "runs").iterdir()  # the DDP child wrote into the parent's run dir
    assert not (run / "train_ddp_process_1.log").exists() and (run / "train.log").exists()
    with open(run / "csv" / "metrics.csv") as handle:
        losses = [float(row[loss]) for row in csv.DictReader(handle) if row.get(loss)]
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False), losses


def assert_same_weights(ddp: dict, single: dict, atol: float) -> None:
    """Both checkpoints hold the same tensors, equal within `atol` (and a relative 1e-4)."""
    assert ddp["state_dict"].keys() == single["state_dict"].keys()
    for name, weight in single["state_dict"].items():
        torch.testing.assert_close(ddp["state_dict"][name], weight, rtol=1e-4, atol=atol, msg=name)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_two_ranks_match_one_process_with_the_global_batch(tmp_path: Path, model: str) -> None:
    ddp, _ = _train(tmp_path, "ddp", ["trainer=ddp_cpu", "data.batch_size=16", *MODELS[model]], LOSS[model])
    single, losses = _train(tmp_path, "single", ["trainer=cpu", "data.batch_size=32", *MODELS[model]], LOSS[model])
    assert ddp["global_step"] == single["global_step"] == 2 * BATCHES_PER_EPOCH.get(model, 41) * STEPS_PER_BATCH[model]
    # it trained, so equal weights are not just equal initial weights
    if model == "gan":  # a GAN's losses need not fall; its generator moved away from its average instead
        state = single["state_dict"]
        assert int(state["generator_ema.n_averaged"]) == 2 * 41
        assert not torch.allclose(state["generator.net.0.0.weight"], state["generator_ema.module.net.0.0.weight"])
    else:
        assert losses[-1] < losses[0]
    assert_same_weights(ddp, single, ATOL.get(model, 1e-5))


@pytest.mark.parametrize("model", ["classifier", "vae", "gan"])
def test_the_fast_path_under_ddp_matches_one_process_on_lightnings_loop(tmp_path: Path, model: str) -> None:
    """`data.batches_per_step=4` on 2 ranks (each Lightning step trains 4 batches, DDP syncing each backward)
    ends where one process with the global batch and one batch per step ends."""
    ddp, _ = _train(tmp_path, "ddp", ["trainer=ddp_cpu", "data.batch_size=16", "data.batches_per_step=4", *MODELS[model]],
                    LOSS[model])
    single, _ = _train(tmp_path, "single", ["trainer=cpu", "data.batch_size=32", *MODELS[model]], LOSS[model])
    assert ddp["global_step"] == single["global_step"] == 2 * 41 * STEPS_PER_BATCH[model]
    # Lightning ran one step per group of 4 batches (41 batches an epoch: 11 groups), not per batch
    assert ddp["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] == 2 * 11
    assert_same_weights(ddp, single, 1e-5)


def test_ddp_multirun_keeps_both_ranks_in_each_jobs_dir(tmp_path: Path) -> None:
    # Lightning starts rank 1 by re-running the command line: without mlgen's fix, `-m` makes it a sweep
    # of its own in a new dir, and rank 0 waits for it forever.
    env = {**os.environ, "MLGEN_LOG_DIR": str(tmp_path / "logs"), "OMP_NUM_THREADS": "1"}
    cli = Path(sys.executable).with_name("mlgen-train")
    proc = subprocess.run([str(cli), "-m", "trainer=ddp_cpu", "model.optimizer.lr=1e-3,3e-3", *COMMON],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [p.name for p in (tmp_path / "logs" / "train").iterdir()] == ["multiruns"]
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    trials = json.loads((sweep / "trials.json").read_text())["trials"]
    assert [(t["status"], t["overrides"][1]) for t in trials] == [
        ("completed", "model.optimizer.lr=0.001"), ("completed", "model.optimizer.lr=0.003")]
    for job in ("0", "1"):
        assert sorted(p.name for p in (sweep / job).iterdir()) == [
            ".hydra", "checkpoints", "csv", "train.log", "trial.json"]
        ckpt = torch.load(sweep / job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        assert ckpt["global_step"] == 2 * 11  # the 2 ranks shared each epoch: 1,294 digits / (2 x 64), 2 epochs
