"""The per-step fast path (`data.batches_per_step`, mlgen/models/fast_path.py): several batches per Lightning
step train to exactly the weights of one batch per step, for every family, with the same logged values at
the same steps, gradient clipping, EMA, `max_steps` and a mid-epoch resume; accumulation is refused."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pytest
import torch

from mlgen.config.instantiate import instantiate_datamodule, instantiate_model
from mlgen.data.in_memory import EpochPermutation, InMemoryLoader
from mlgen.data.step_batches import StepBatches
from mlgen.errors import ConfigError
from mlgen.tasks.common import build_trainer
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.resume import CRASH_TRUSTED, crash_mid_epoch_and_resume

# digits: 1,294 training rows, 21 batches of 64 per epoch (the last of 14 rows); groups of 4: 4 + 4 + 4 + 4 + 4 + 1
COMMON = [*CPU_QUICK, "trainer.deterministic=true", "seed=5", "test=false", "trainer.log_every_n_steps=5",
          "data.eval_batch_size=500"]
FAMILIES = {
    "classifier_clipped": ["trainer.gradient_clip_val=0.05", "model.net.dropout=0.2"],
    "vae_ema": ["model=vae", "data.binarize=true", "model.ema_decay=0.9", "model.latent_dim=4"],
    "gan_n_critic_2": ["model=cgan", "model/gan_nets=mlp", "model.latent_dim=8", "model.generator.hidden=[32]",
                       "model.discriminator.hidden=[32]", "model.n_critic=2"],
    "ddpm": ["model=ddpm_cond", "model.denoiser.width=16", "model.ema_decay=0.9"],
}


def _checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def _same(a: object, b: object) -> bool:
    """Nested containers equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _step_rows(run: Path) -> list[dict[str, str]]:
    """The CSV logger's rows of per-step values (those with a `*_step` column filled)."""
    with open(run / "csv" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in row.items() if v and (k.endswith("_step") or k in ("step", "epoch"))}
            for row in rows if any(v and k.endswith("_step") for k, v in row.items())]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_groups_of_batches_train_to_the_same_weights_and_log_the_same_steps(family, tmp_path):
    overrides = [*COMMON, "trainer.max_epochs=2", *FAMILIES[family]]
    one = train(compose_config("train", [*overrides, "data.batches_per_step=1"], tmp_path / "one"))
    four = train(compose_config("train", [*overrides, "data.batches_per_step=4"], tmp_path / "four"))
    a, b = _checkpoint(tmp_path / "one"), _checkpoint(tmp_path / "four")
    per_batch = 2 if family.startswith("gan") else 1  # the GAN steps D every batch, G every 2nd here
    expected = 2 * 21 if per_batch == 1 else 2 * (21 + 10)
    assert a["global_step"] == b["global_step"] == expected
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name in a["state_dict"]:  # the same operations in the same order: bit-identical, EMA copies included
        assert torch.equal(a["state_dict"][name], b["state_dict"][name]), name
    assert _same(a["optimizer_states"], b["optimizer_states"])  # Adam's moments and step counts too
    rows_one, rows_four = _step_rows(one.output_dir), _step_rows(four.output_dir)
    assert [r["step"] for r in rows_one] == ["4", "9", "14", "19", "24", "29", "34", "39"]  # every 5th batch, 0-based steps
    assert [r["step"] for r in rows_four] == [r["step"] for r in rows_one]
    for normal, fast in zip(rows_one, rows_four):  # the same values at the same steps, with the same epoch; Lightning
        # also repeats a value not computed at a logged step from an earlier one (the GAN's g_loss when G skips a batch)
        assert fast.items() <= normal.items() and len(fast) >= len(normal) - 1, (normal, fast)
    assert one.metrics == pytest.approx(four.metrics, abs=1e-6)  # epoch means and validation


def test_loader_groups_consecutive_batches_of_each_pass_and_shard(tmp_path):
    x, y = torch.arange(100.0).unsqueeze(1), torch.arange(100)
    def loader(rank: int, k: int) -> InMemoryLoader:
        sampler = EpochPermutation(100, True, seed=3, rank=rank, world_size=2, passes=2)
        sampler.set_epoch(1)
        return InMemoryLoader(x, y, 8, sampler, batches_per_step=k)

    for rank in (0, 1):  # rank 1 of 2: the interleaved DDP shard; 2 passes per epoch: groups never span passes
        plain, grouped = list(loader(rank, 1)), list(loader(rank, 3))
        assert len(loader(rank, 1)) == len(plain) == 2 * 7 and len(loader(rank, 3)) == len(grouped) == 2 * 3  # 50 rows: 7 batches a pass
        assert all(isinstance(g, StepBatches) for g in grouped)
        assert [g.first for g in grouped] == [0, 3, 6, 7, 10, 13]
        unrolled = [(i, b) for g in grouped for i, b in g.batches()]
        assert [i for i, _ in unrolled] == list(range(14))
        for (bx, by), (_, (gx, gy)) in zip(plain, unrolled, strict=True):
            assert torch.equal(bx, gx) and torch.equal(by, gy)


@pytest.mark.parametrize("hook", ["on_train_batch_start", "on_train_batch_end"])
def test_a_run_preempted_between_groups_resumes_to_the_same_weights(hook, tmp_path):
    """Step 29 lies inside epoch 1 (21 batches per epoch), at the end of its second group of 4."""
    overrides = [*COMMON, "trainer.max_epochs=2", "model.net.dropout=0.3", "data.batches_per_step=4"]
    straight = train(compose_config("train", overrides, tmp_path / "straight"))
    mid = tmp_path / "mid.ckpt"
    resumed = crash_mid_epoch_and_resume(tmp_path, overrides, step=29, hook=hook, mid=mid)
    a, b = _checkpoint(tmp_path / "straight"), _checkpoint(tmp_path / "resumed")
    assert a["global_step"] == b["global_step"] == 42
    for name in a["state_dict"]:
        assert torch.equal(a["state_dict"][name], b["state_dict"][name]), name
    for name in ("train/loss_epoch", "train/acc_epoch"):  # the epoch's running sums travelled in the checkpoint
        assert resumed.metrics[name] == pytest.approx(straight.metrics[name], abs=1e-6), name
    # another group size would read the checkpoint's count of steps done as other batches
    with pytest.raises(ConfigError, match=r"data.batches_per_step=1 is invalid: this checkpoint was written inside an "
                                          r"epoch trained with 4 batch\(es\) per step.*Fix: resume with data.batches_per_step=4"):
        train(compose_config("train", [*overrides, f"ckpt_path={mid}", "data.batches_per_step=1", "++callbacks.crash=null",
                                       CRASH_TRUSTED], tmp_path / "other"))


def test_max_steps_inside_a_group_stops_at_that_step(tmp_path):
    overrides = [*COMMON, "trainer.max_epochs=3", "trainer.max_steps=23", "objective=null"]
    train(compose_config("train", [*overrides, "data.batches_per_step=1"], tmp_path / "one"))
    train(compose_config("train", [*overrides, "data.batches_per_step=4"], tmp_path / "four"))
    a, b = _checkpoint(tmp_path / "one"), _checkpoint(tmp_path / "four")
    assert a["global_step"] == b["global_step"] == 23  # 21 + 2: the first group of epoch 1 stops after 2 of 4
    assert all(torch.equal(a["state_dict"][name], b["state_dict"][name]) for name in a["state_dict"])


def test_gradient_accumulation_is_refused_with_groups(tmp_path):
    cfg = compose_config("train", [*COMMON, "data.batches_per_step=4", "trainer.accumulate_grad_batches=2"], tmp_path / "run")
    with pytest.raises(ConfigError, match=r"trainer.accumulate_grad_batches=2 is invalid: it can't be combined with "
                                          r"data.batches_per_step=4.*Fix: set data.batches_per_step=1"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_grouped_batches_reaching_a_model_trained_one_batch_per_step_are_refused(tmp_path):
    cfg = compose_config("train", [*COMMON, "data.batches_per_step=4", "model.batches_per_step=1"], tmp_path / "run")
    with pytest.raises(ConfigError, match=r"model.batches_per_step=1 is invalid: the loader groups several batches per "
                                          r"training step.*Fix: set model.batches_per_step=\$\{data.batches_per_step\}"):
        train(cfg)


@pytest.mark.parametrize(("limit", "steps"), [("+trainer.fast_dev_run=3", 3), ("trainer.limit_train_batches=3", 6)])
def test_where_the_trainer_counts_batches_the_loader_yields_one_per_step(limit, steps, tmp_path):
    cfg = compose_config("train", [*COMMON, "trainer.max_epochs=2", limit, "data.batches_per_step=4"], tmp_path)
    model, datamodule = instantiate_model(cfg.model), instantiate_datamodule(cfg.data)
    trainer = build_trainer(cfg, model)
    trainer.fit(model, datamodule=datamodule)
    assert not model.automatic_optimization and trainer.global_step == steps  # batches (per epoch), not groups of 4


@pytest.mark.parametrize(("batches_per_step", "warned"), [(1, True), (4, False)])
def test_lightnings_warning_about_too_few_batches_to_log_counts_batches_not_groups(batches_per_step, warned, tmp_path):
    """21 batches per epoch and `log_every_n_steps=10`: rows are written every 10 batches either way, so a run
    of 6 groups of 4 gets no warning that its epoch is shorter than the logging interval; with an epoch of 21
    single batches and an interval of 30, Lightning's warning stays (the control)."""
    every = 30 if warned else 10
    overrides = [*COMMON, "trainer.max_epochs=1", f"trainer.log_every_n_steps={every}", f"data.batches_per_step={batches_per_step}"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train(compose_config("train", overrides, tmp_path / "run"))
    about_interval = [w for w in caught if "smaller than the logging interval" in str(w.message)]
    assert bool(about_interval) is warned, [str(w.message) for w in about_interval]
    assert warned or len(_step_rows(run.output_dir)) == 2  # batches 10 and 20 were logged
