"""Sweep configs refer to real config keys: conf/hparams_search (Hydra/Optuna) and conf/wandb_sweep (W&B)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from hydra_plugins import mlgen_sweeper  # noqa: F401  (hydra/sweeper=mlgen_optuna, as mlgen.cli registers it)

from mlgen import resolvers  # noqa: F401
from mlgen.checkpoints.allowlist import is_allowed
from mlgen.config.instantiate import instantiate_model
from mlgen.errors import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"
_MISSING = object()

with warnings.catch_warnings():  # sweeps 0.2 uses a pydantic-1 option name that pydantic 2 warns about
    warnings.simplefilter("ignore")
    import sweeps

# hparams_search config -> (model it is for, objective, direction)
HPARAMS = {
    "classifier_optuna": ("classifier", "val/acc", "maximize"),
    "classifier_optuna_pruned": ("classifier", "val/acc", "maximize"),
    "classifier_grid": ("classifier", "val/acc", None),
    "vae_optuna": ("vae", "val/elbo", "maximize"),
    "gan_optuna": ("dcgan", "val/fid_clf", "minimize"),
}


def _compose(overrides: list[str], hydra_config: bool = False):
    with initialize_config_module("mlgen.conf", version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=hydra_config)


def _exists(cfg, key: str) -> bool:
    return OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False) is not _MISSING


def test_every_hparams_search_config_is_tested():
    assert {p.stem for p in (CONF / "hparams_search").glob("*.yaml")} == set(HPARAMS)


@pytest.mark.parametrize("name", sorted(HPARAMS))
def test_hparams_search_sweeps_existing_keys_towards_the_monitored_objective(name):
    model, objective, direction = HPARAMS[name]
    cfg = _compose([f"model={model}", f"hparams_search={name}"], hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert len(params) >= 2
    for key in params:
        assert _exists(cfg, key), f"{name} sweeps {key}, which model={model} does not have"
    assert cfg.objective == objective and cfg.model.monitor == objective
    assert cfg.hydra.mode.name == "MULTIRUN"
    if direction:
        assert cfg.hydra.sweeper.direction == direction
        assert cfg.model.monitor_mode == direction[:3]
        # mlgen's sweeper, whose study persists in the sweep dir (continued with hydra.sweep.dir=...)
        assert cfg.hydra.sweeper._target_ == "hydra_plugins.mlgen_sweeper.ResumableOptunaSweeper"
        assert cfg.hydra.sweeper.storage == f"sqlite:///{cfg.hydra.sweep.dir}/optuna.db"
    # pruning is off unless the config asks for it
    assert ("optuna_pruning" in cfg.callbacks) == name.endswith("_pruned")


def test_pruning_adds_to_any_optuna_search_and_reports_the_objective_to_the_sweepers_study():
    cfg = _compose(["model=vae", "hparams_search=vae_optuna", "+hparams_search/pruning=median"], hydra_config=True)
    pruning = cfg.callbacks.optuna_pruning
    assert pruning.monitor == cfg.objective == "val/elbo"
    assert pruning.pruner._target_ == "optuna.pruners.MedianPruner"
    # the job's trial: the sweeper's storage and study; hydra.job.num is resolved in each job
    assert OmegaConf.to_container(pruning, resolve=False)["storage"] == "${hydra:sweeper.storage}"
    assert OmegaConf.to_container(pruning, resolve=False)["trial_number"] == "${hydra:job.num}"
    # the run config stored in each trial's checkpoints names the pruner: loading the best one must accept it
    assert is_allowed(pruning._target_) and is_allowed(pruning.pruner._target_)


def test_gan_search_without_the_feature_checkpoint_stops_with_the_fix():
    cfg = _compose(["model=dcgan", "hparams_search=gan_optuna"])
    with pytest.raises(ConfigError, match="model.metrics.feature_ckpt=<its run dir>/checkpoints/last.ckpt"):
        instantiate_model(cfg.model)


WANDB_SWEEPS = sorted((CONF / "wandb_sweep").glob("*.yaml"))


def test_a_wandb_sweep_per_family():
    assert {p.stem for p in WANDB_SWEEPS} == {"classifier", "vae", "gan"}


@pytest.mark.parametrize("path", WANDB_SWEEPS, ids=lambda p: p.stem)
def test_wandb_sweep_is_valid_and_its_proposals_compose(path):
    config = yaml.safe_load(path.read_text())
    assert sweeps.schema_violations_from_proposed_config(config) == []
    command = config["command"]
    assert command[:2] == ["${env}", "mlgen-train"] and command[-1] == "${args_no_hyphens}"
    fixed = [arg for arg in command[2:-1]]

    base = _compose(fixed)
    for key in config["parameters"]:
        assert _exists(base, key), f"{path.name} sweeps {key}, which the composed config lacks"
    assert config["metric"]["name"] == base.objective == base.model.monitor

    # what `wandb agent` would run: the sweep's proposal as key=value overrides
    run = sweeps.next_run(config, [], validate=True)
    proposal = [f"{key}={value['value']}" for key, value in run.config.items()]
    cfg = _compose([*fixed, *proposal])
    for key, value in run.config.items():
        assert OmegaConf.select(cfg, key) == pytest.approx(value["value"]) if isinstance(value["value"], float) \
            else OmegaConf.select(cfg, key) == value["value"]


def test_schema_check_catches_a_broken_sweep():
    config = yaml.safe_load((CONF / "wandb_sweep" / "classifier.yaml").read_text())
    config["method"] = "tpe"
    config["parameters"]["model.optimizer.lr"]["distribution"] = "loguniform_values"
    violations = sweeps.schema_violations_from_proposed_config(config)
    assert any("'tpe' is not one of" in v for v in violations)
    assert len(violations) >= 2
