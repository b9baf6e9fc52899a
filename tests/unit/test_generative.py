"""GenerativeModule, the base of every generative family: label checks, the per-rank noise convention,
EMA of the sampling nets, and the base arguments declared once (saved for checkpoints, unknown ones named)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from mlgen.config.instantiate import build_from_config
from mlgen.errors import ConfigError
from mlgen.models.gan import GAN
from mlgen.models.generative import GenerativeModule
from mlgen.models.vae import VAE

ADAM = {"_target_": "torch.optim.Adam", "lr": 1e-3}
STEP_LR = {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1, "gamma": 0.5}
VAE_NET = {"encoder": {"_target_": "mlgen.nets.vae_nets.Encoder", "hidden": [8]},
           "decoder": {"_target_": "mlgen.nets.vae_nets.Decoder", "hidden": [8]}}
GAN_NETS = {"generator": {"_target_": "mlgen.nets.dcgan.MLPGenerator", "hidden": [8]},
            "discriminator": {"_target_": "mlgen.nets.dcgan.MLPDiscriminator", "hidden": [8]}}


class Tiny(GenerativeModule):
    """The least a family writes: its sampling net, and `generate` (which records the labels it got)."""

    sampling_nets = ("net",)

    def build_nets(self) -> None:
        self.net = nn.Linear(3, 4)
        self.seen_labels: list[Tensor | None] = []

    def generate(self, n: int, labels: Tensor | None) -> Tensor:
        self.seen_labels.append(labels)
        return self.sampling_net("net")(self.noise(n, 3))

    def train_batch(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self.net(batch[0]).pow(2).mean()


def tiny(**kwargs) -> Tiny:
    return Tiny(shape=(1, 2, 2), num_classes=3, optimizer=ADAM, **kwargs)


# --- labels ------------------------------------------------------------------------------
def test_conditional_model_without_labels_draws_the_classes_in_turn():
    model = tiny(conditional=True)
    assert model.conditional
    model.sample(7)
    assert model.seen_labels[-1].tolist() == [0, 1, 2, 0, 1, 2, 0]
    model.sample(2, torch.tensor([2, 2]))
    assert model.seen_labels[-1].tolist() == [2, 2]
    unconditional = tiny()
    assert not unconditional.conditional
    unconditional.sample(2)
    assert unconditional.seen_labels == [None]


@pytest.mark.parametrize(
    ("conditional", "labels", "message"),
    [
        (False, torch.tensor([0, 1]), r"labels were given to an unconditional Tiny.*Fix: call sample\(n\) without labels.*model.conditional=true"),
        (True, torch.tensor([0, 3]), r"labels from 0 to 3 are invalid: this Tiny has 3 classes. Fix: use class indices from 0 to 2"),
        (True, torch.tensor([-1, 0]), r"labels from -1 to 0 are invalid"),
        (True, torch.tensor([0, 1, 2]), r"labels of shape \[3\].*sample\(n=2\).*Fix: pass a 1-D integer tensor of length 2"),
        (True, torch.tensor([0.0, 1.0]), r"dtype torch.float32 are invalid.*integer class index"),
    ],
)
def test_bad_labels_raise_an_error_that_names_the_fix(conditional, labels, message):
    model = tiny(conditional=conditional)
    with pytest.raises(ValueError, match=message):
        model.sample(2, labels)
    assert model.seen_labels == []  # nothing was generated


# --- noise -------------------------------------------------------------------------------
def test_one_process_draws_exactly_torch_randn():
    model = tiny()
    torch.manual_seed(3)
    expected = torch.randn(5, 3)
    torch.manual_seed(3)
    assert torch.equal(model.noise(5, 3), expected)


def test_each_rank_keeps_its_interleaved_rows_of_the_global_batch_noise(monkeypatch):
    """2 ranks x 3 rows: rank r gets global rows r, r + 2, r + 4 of one 6-row draw (like the in-memory
    DDP shards), and both ranks consume the same random numbers, so their RNGs stay in step."""
    model = tiny()
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda *a: 2)
    per_rank, after = [], []
    for rank in (0, 1):
        monkeypatch.setattr(dist, "get_rank", lambda *a, r=rank: r)
        torch.manual_seed(7)
        per_rank.append(model.noise(3, 4))
        after.append(torch.rand(1))
    monkeypatch.undo()
    torch.manual_seed(7)
    global_noise = torch.randn(6, 4)
    assert torch.equal(per_rank[0], global_noise[0::2]) and torch.equal(per_rank[1], global_noise[1::2])
    assert torch.equal(after[0], after[1]) and torch.equal(after[0], torch.rand(1))


# --- EMA ---------------------------------------------------------------------------------
def test_ema_is_a_switch_of_every_family():
    assert tiny().net_ema is None
    model = tiny(ema_decay=0.5)
    assert isinstance(model.net_ema, torch.optim.swa_utils.AveragedModel)
    assert model.nets() == [model.net, model.net_ema.module]  # compiled and channels-last alike
    for value in (1.0, 3.0):
        with torch.no_grad():
            model.net.weight.fill_(value)
        model.update_ema()
    assert torch.allclose(model.net_ema.module.weight, torch.full((4, 3), 0.5 * 1.0 + 0.5 * 3.0))
    torch.manual_seed(0)
    z = torch.randn(2, 3)
    torch.manual_seed(0)
    assert torch.equal(model.sample(2), model.net_ema.module(z))  # samples come from the EMA copy
    assert model.net_ema.module.training  # eval mode only while sampling
    vae = VAE(shape=(1, 2, 2), num_classes=3, net=VAE_NET, optimizer=ADAM, latent_dim=2, ema_decay=0.9)
    assert vae.decoder_ema is not None and "decoder_ema.n_averaged" in vae.state_dict()


def test_automatic_optimisation_updates_the_ema_after_every_optimizer_step(tmp_path):
    model = tiny(ema_decay=0.9)
    data = DataLoader(TensorDataset(torch.randn(12, 3), torch.zeros(12)), batch_size=2)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, accumulate_grad_batches=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, data)
    assert trainer.global_step == 3 and int(model.net_ema.n_averaged) == 3  # 6 batches, 2 per optimizer step


# --- base arguments, declared once -------------------------------------------------------
def test_every_argument_of_every_level_is_saved_so_a_checkpoint_rebuilds_the_model():
    gan = GAN(shape=(1, 8, 8), num_classes=10, optimizer=ADAM, d_optimizer=ADAM, scheduler=STEP_LR, d_scheduler=STEP_LR,
              latent_dim=4, conditional=True, monitor=None, **GAN_NETS)
    hparams = dict(gan.hparams)
    assert hparams["scheduler"] == hparams["d_scheduler"] == STEP_LR  # a GAN keeps its schedulers
    assert {"shape", "num_classes", "optimizer", "scheduler", "monitor", "monitor_mode", "compile", "channels_last",
            "conditional", "ema_decay", "metrics", "generator", "discriminator", "d_optimizer", "latent_dim", "loss"} <= set(hparams)
    assert (hparams["compile"], hparams["monitor_mode"], hparams["loss"]) == (False, "min", "bce")  # defaults too
    rebuilt = GAN(**hparams)
    assert rebuilt.conditional and rebuilt.state_dict().keys() == gan.state_dict().keys()


@pytest.mark.parametrize(
    "cfg",
    [
        {"_target_": "mlgen.models.classifier.Classifier", "net": {"_target_": "mlgen.nets.mlp.MLPClassifierNet"}},
        {"_target_": "mlgen.models.vae.VAE", "net": VAE_NET, "ema_decay": 0.9},
        {"_target_": "mlgen.models.gan.GAN", "d_optimizer": ADAM, "d_scheduler": STEP_LR, **GAN_NETS},
    ],
    ids=["classifier", "vae", "gan"],
)
def test_base_options_pass_and_unknown_ones_are_named(cfg):
    base = {"shape": [1, 8, 8], "num_classes": 10, "optimizer": ADAM, "scheduler": STEP_LR, "compile": False,
            "channels_last": False, "monitor": "val/loss", "monitor_mode": "min"}
    model = build_from_config({**cfg, **base}, "model", _recursive_=False, _convert_="all")
    assert model.hparams.scheduler == STEP_LR and model.shape == (1, 8, 8)
    with pytest.raises(ConfigError, match=r"model has unknown option\(s\) model.foo for"):
        build_from_config({**cfg, **base, "foo": 1}, "model", _recursive_=False, _convert_="all")
