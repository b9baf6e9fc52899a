"""A GAN under `trainer=ddp_cpu` (2 gloo processes, started by the real `mlgen-train` CLI): both ranks hold
bit-identical generator, discriminator and EMA weights after every optimizer step, on different data
and noise, for 2 epochs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ranks_hold_identical_weights_after_every_step(tmp_path):
    logs = tmp_path / "logs"
    env = {**os.environ, "MLGEN_LOG_DIR": str(logs), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cli = Path(sys.executable).with_name("mlgen-train")
    # conditional hinge GAN with spectral norm (buffers updated in forward), EMA, and 2 D steps per G step
    args = ["trainer=ddp_cpu", "logger=csv", "trainer.enable_progress_bar=false", "callbacks.model_summary=null",
            "model=cgan", "model/gan_nets=mlp", "model.loss=hinge", "model.discriminator.spectral_norm=true",
            "model.n_critic=2", "model.ema_decay=0.9", "model.latent_dim=8", "model.generator.hidden=[32]",
            "model.discriminator.hidden=[32]", "data.train_fraction=0.2", "data.batch_size=32",
            "trainer.max_epochs=2", "test=false", "trainer.log_every_n_steps=1",  # the probe reads each step's loss
            "+callbacks.probe._target_=tests.helpers.gan_probe.GANProbe"]
    proc = subprocess.run([str(cli), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (logs / "train" / "runs").iterdir()
    ranks = [json.loads((run / f"probe_rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    records = [r["records"] for r in ranks]
    assert len(records[0]) == len(records[1])

    weights = [[{k: rec[k] for k in ("event", "step", "g", "d", "ema", "ema_updates")} for rec in recs] for recs in records]
    assert weights[0] == weights[1]  # identical after every optimizer step (recorded before the next one)

    ends = [rec for rec in records[0] if rec["event"] == "batch_end"]
    # a fifth of the digits training split, halved between the ranks: 5 batches of 32 per rank and epoch;
    # G steps after batches 1 and 3 of each epoch (n_critic=2)
    assert len(ends) == 10
    assert ends[-1]["step"] == 10 + 4  # every D and G step counts
    assert ends[-1]["ema_updates"] == 4
    assert len({rec["d"] for rec in ends}) == 10  # D changed at every batch
    assert len({rec["g"] for rec in ends}) == 1 + 4  # G: its initial weights, then one change per G step
    # the ranks trained on different batches and noise: their own D losses differ
    losses = [[rec["d_loss"] for rec in recs if rec["event"] == "batch_end"] for recs in records]
    assert all(a != b for a, b in zip(losses[0], losses[1]))
