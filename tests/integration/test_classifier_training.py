"""Real training runs of the Classifier on CPU."""

from __future__ import annotations

import math

import pytest
import torch

from mlgen.errors import ConfigError
from mlgen.tasks.evaluate import evaluate
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.resume import crash_mid_epoch_and_resume

NETS = ["classifier", "classifier_cnn", "classifier_resnet"]
DATA = ["digits", "mnist", "fashion_mnist", "kmnist", "cifar10"]


@pytest.mark.parametrize("model", NETS)
@pytest.mark.parametrize("data", DATA)
def test_fast_dev_run_every_datamodule_and_net(data, model, tmp_path, mnist_like_root, cifar_root):
    root = cifar_root if data == "cifar10" else mnist_like_root
    cfg = compose_config(
        "train",
        [*CPU_QUICK, f"data={data}", f"model={model}", f"data.root={root}", "data.batch_size=8",
         "+trainer.fast_dev_run=true"],
        tmp_path / "run",
    )
    result = train(cfg)
    for name in ("train/loss_epoch", "val/loss", "test/loss"):
        assert math.isfinite(result.metrics[name]) and result.metrics[name] > 0
    assert 0 <= result.metrics["test/acc"] <= 1


def test_default_run_reaches_95_percent_on_digits_and_writes_its_files(tmp_path):
    out = tmp_path / "run"
    result = train(compose_config("train", [*CPU_QUICK, "trainer.max_epochs=10"], out))
    assert result.metrics["test/acc"] >= 0.95
    assert result.objective_name == "val/acc" and result.objective >= 0.95
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert result.best_checkpoint and result.best_checkpoint.startswith(str(out / "checkpoints" / "epoch_"))
    header = (out / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss_step", "train/acc_step", "train/acc_epoch", "val/acc", "val/f1", "test/acc", "test/f1"} <= set(header)
    # training accuracy is a running count (not torchmetrics): the epoch value is a fraction, and high by epoch 10
    assert 0.9 <= result.metrics["train/acc_epoch"] <= 1.0


@pytest.mark.slow
def test_cnn_on_real_mnist_reaches_97_percent_in_3_epochs(tmp_path, mnist_root):
    cfg = compose_config("train", [*CPU_QUICK, "experiment=mnist_cnn", f"data.root={mnist_root}"], tmp_path / "run")
    result = train(cfg)
    assert cfg.trainer.max_epochs == 3
    assert result.metrics["test/acc"] >= 0.97, result.metrics


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_resume_after_epoch_2_ends_with_identical_weights(tmp_path):
    common = [*CPU_QUICK, "trainer.max_epochs=4", "trainer.deterministic=true", "seed=3",
              "model.net.dropout=0.3", "data.train_fraction=0.3"]
    train(compose_config("train", common, tmp_path / "straight"))

    interrupted = tmp_path / "interrupted"
    train(compose_config("train", [*common, "+callbacks.stop._target_=tests.helpers.callbacks.StopAfterEpochs",
                                   "+callbacks.stop.epochs=2", "test=false"], interrupted))
    stopped = torch.load(interrupted / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert stopped["epoch"] == 1  # epochs 0 and 1 done

    resumed = tmp_path / "resumed"
    train(compose_config("train", [*common, f"ckpt_path={interrupted / 'checkpoints' / 'last.ckpt'}", "++callbacks.stop=null",
                                   "trusted_targets=[tests.helpers.callbacks.StopAfterEpochs]"], resumed))
    straight, again = _weights(tmp_path / "straight" / "checkpoints" / "last.ckpt"), _weights(resumed / "checkpoints" / "last.ckpt")
    assert straight.keys() == again.keys()
    for name in straight:
        assert torch.equal(straight[name], again[name]), name
    halfway = _weights(interrupted / "checkpoints" / "last.ckpt")
    assert not all(torch.equal(halfway[k], straight[k]) for k in straight)  # the resumed run did train


def test_eval_rebuilds_model_and_data_from_the_checkpoint_alone(tmp_path):
    out = tmp_path / "run"
    trained = train(compose_config("train", [*CPU_QUICK, "trainer.max_epochs=3"], out))
    cfg = compose_config("eval", [f"ckpt_path={trained.best_checkpoint}", "logger=none", "trainer.enable_progress_bar=false"],
                         tmp_path / "eval")
    evaluated = evaluate(cfg)
    assert evaluated.metrics["test/acc"] == pytest.approx(trained.metrics["test/acc"], abs=1e-6)


def test_last_checkpoint_holds_the_final_epoch_even_when_the_best_is_earlier(tmp_path):
    out = tmp_path / "run"
    result = train(compose_config("train", [*CPU_QUICK, "trainer.max_epochs=6", "model.optimizer.lr=0.5"], out))
    last = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 5 and last["global_step"] == 6 * 21
    assert not result.best_checkpoint.endswith("epoch_005.ckpt")  # the case Lightning's save_last gets wrong


def test_last_checkpoint_follows_every_epoch_when_validation_is_sparser_and_resumes_exactly(tmp_path):
    """With trainer.check_val_every_n_epoch=2 (mnist_ddpm validates every 5th epoch) last.ckpt is still written
    after every epoch, so a run of 3 epochs ends with it at epoch 3, not 2, and one stopped after an epoch
    without validation resumes to the same weights."""
    common = [*CPU_QUICK, "trainer.max_epochs=3", "trainer.check_val_every_n_epoch=2", "trainer.deterministic=true",
              "seed=3", "data.train_fraction=0.3", "test=false"]
    train(compose_config("train", common, tmp_path / "straight"))
    last = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    steps_per_epoch = last["global_step"] // 3
    assert last["epoch"] == 2 and steps_per_epoch > 0 and last["global_step"] == 3 * steps_per_epoch

    interrupted = tmp_path / "interrupted"
    train(compose_config("train", [*common, "+callbacks.stop._target_=tests.helpers.callbacks.StopAfterEpochs",
                                   "+callbacks.stop.epochs=1", "objective=null"], interrupted))  # stopped before any validation
    stopped = torch.load(interrupted / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert stopped["epoch"] == 0 and stopped["global_step"] == steps_per_epoch  # epoch 0 had no validation
    train(compose_config("train", [*common, f"ckpt_path={interrupted / 'checkpoints' / 'last.ckpt'}", "++callbacks.stop=null",
                                   "trusted_targets=[tests.helpers.callbacks.StopAfterEpochs]"], tmp_path / "resumed"))
    straight, again = last["state_dict"], _weights(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert all(torch.equal(straight[name], again[name]) for name in straight)


def test_a_run_that_never_validated_says_so_about_its_objective_and_keeps_its_checkpoint(tmp_path):
    """A smoke test (`trainer.max_steps=1`) stops before the first validation, so the default objective val/acc
    is never logged: the message says why and how to run without one, rather than only listing train/ names."""
    with pytest.raises(ConfigError) as err:
        train(compose_config("train", [*CPU_QUICK, "trainer.max_steps=1", "test=false"], tmp_path / "run"))
    message = str(err.value)
    assert "objective='val/acc'" in message and "never validated" in message and "global step 1" in message
    assert "objective=null" in message and "train/loss" in message
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"] == 1


def test_last_checkpoint_every_n_epochs_must_reach_the_last_epoch(tmp_path):
    common = [*CPU_QUICK, "data.train_fraction=0.3", "test=false", "callbacks.last_checkpoint.every_n_epochs=2"]
    train(compose_config("train", [*common, "trainer.max_epochs=4"], tmp_path / "four"))
    last = torch.load(tmp_path / "four" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 3
    with pytest.raises(ConfigError, match=r"callbacks.last_checkpoint.every_n_epochs=2 is invalid: trainer.max_epochs=3 "
                                          r"is not a multiple of it.*Fix: set callbacks.last_checkpoint.every_n_epochs to a divisor"):
        train(compose_config("train", [*common, "trainer.max_epochs=3"], tmp_path / "three"))
    assert not (tmp_path / "three" / "checkpoints").exists()


@pytest.mark.parametrize("hook", ["on_train_batch_start", "on_train_batch_end"])
def test_resume_from_a_mid_epoch_checkpoint_ends_with_identical_weights(hook, tmp_path):
    common = [*CPU_QUICK, "trainer.max_epochs=2", "trainer.deterministic=true", "seed=3", "data.batch_size=32",
              "model.net.dropout=0.3", "test=false"]
    uninterrupted = train(compose_config("train", common, tmp_path / "straight"))
    resumed = crash_mid_epoch_and_resume(tmp_path, common, step=50, hook=hook)
    straight = _weights(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    again = _weights(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    for name in straight:  # step 50 lies in epoch 1 (41 batches per epoch): a mid-epoch resume
        assert torch.equal(straight[name], again[name]), name
    # the checkpoint carries the epoch's running sums: the resumed epoch's means cover all 41 batches
    for name in ("train/loss_epoch", "train/acc_epoch"):
        assert resumed.metrics[name] == pytest.approx(uninterrupted.metrics[name], abs=1e-6), name


@pytest.mark.slow
def test_several_passes_per_epoch_train_like_as_many_one_pass_epochs_and_resume_inside_a_pass(tmp_path):
    """data.passes_per_epoch=2 with 2 epochs runs the batches of 4 one-pass epochs (no epoch-interval
    scheduler, whose steps would follow Lightning's epochs), and a crash inside the second pass resumes exactly."""
    common = [*CPU_QUICK, "trainer.deterministic=true", "seed=3", "model.net.dropout=0.3", "data.train_fraction=0.3",
              "model.scheduler=null", "test=false"]
    train(compose_config("train", [*common, "trainer.max_epochs=4"], tmp_path / "one_pass"))
    two_passes = [*common, "trainer.max_epochs=2", "data.passes_per_epoch=2"]
    train(compose_config("train", two_passes, tmp_path / "two_passes"))
    one = torch.load(tmp_path / "one_pass" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    two = torch.load(tmp_path / "two_passes" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (one["epoch"], two["epoch"]) == (3, 1) and one["global_step"] == two["global_step"] == 4 * 7  # 437 rows, batch 64
    assert all(torch.equal(one["state_dict"][name], two["state_dict"][name]) for name in one["state_dict"])

    crash_mid_epoch_and_resume(tmp_path, two_passes, step=10)  # step 10: the 4th batch of epoch 0's second pass
    again = _weights(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert all(torch.equal(two["state_dict"][name], again[name]) for name in again)


def test_several_passes_per_epoch_need_the_in_memory_path(tmp_path):
    with pytest.raises(ConfigError, match=r"data.passes_per_epoch=3 is invalid: several passes per epoch need the in-memory "
                                          r"path.*Fix: set data.in_memory=true"):
        train(compose_config("train", [*CPU_QUICK, "data.in_memory=false", "data.passes_per_epoch=3"], tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()
