"""Every option of every config group composes and resolves with the rest of train.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from statsmodels.datasets import fair

from tests.helpers.config import compose_config

CONF = Path(__file__).resolve().parents[2] / "conf"
GROUPS = ["data", "model", "model/net", "trainer", "logger", "callbacks", "paths", "experiment", "hparams_search"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


CASES = [(g, o) for g in GROUPS for o in _options(g)]
# options with a mandatory value (???) get one here
REQUIRED = {
    ("data", "synthetic"): ["data.generator_ckpt=generator.ckpt"],
    # a CSV that an installed package ships (statsmodels' fair survey), with a class column
    ("data", "csv"): [f"data.path={Path(fair.__file__).with_name('fair.csv')}", "data.target=religious"],
}


def test_every_group_has_options():
    for group in ("data", "model", "trainer", "logger", "callbacks", "experiment"):
        assert _options(group), f"conf/{group}/ is empty"


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_group_option_composes_and_resolves(group, option, tmp_path):
    cfg = compose_config("train", [f"{group}={option}", *REQUIRED.get((group, option), [])], tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in ("data", "model", "trainer", "callbacks", "paths"):
        assert key in resolved
    assert resolved["model"]["shape"] == resolved["data"]["shape"]
    assert resolved["model"]["num_classes"] == resolved["data"]["num_classes"]
    if group in ("data", "model", "trainer"):
        assert resolved[group]["_target_"].startswith(("mlgen.", "pytorch_lightning."))


def test_synth_config_extends_train(tmp_path):
    cfg = compose_config("synth", ["generator_ckpt=g.ckpt", "experiment=mnist_synth"], tmp_path)
    assert cfg.task_name == "synth" and cfg.model.net._target_.endswith("ConvClassifierNet")
    assert cfg.data._target_.endswith("MNISTDataModule") and cfg.low_data.train_fraction == 0.1


def test_eval_config_composes(tmp_path):
    cfg = compose_config("eval", ["ckpt_path=x.ckpt"], tmp_path)
    assert cfg.ckpt_path == "x.ckpt" and cfg.trainer._target_ == "pytorch_lightning.Trainer"


def test_trainer_presets_select_what_their_names_say(tmp_path):
    pick = lambda name: compose_config("train", [f"trainer={name}"], tmp_path).trainer  # noqa: E731
    assert pick("cpu").accelerator == "cpu"
    assert pick("gpu").accelerator == "gpu"
    assert pick("ddp").strategy == "ddp"
    ddp_cpu = pick("ddp_cpu")
    assert (ddp_cpu.accelerator, ddp_cpu.strategy, ddp_cpu.devices) == ("cpu", "ddp", 2)
