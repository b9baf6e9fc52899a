"""Resume without retyping: the run config stored in the checkpoint, with this command line on top.

`mlgen-train ckpt_path=<run dir>/checkpoints/last.ckpt` composes the defaults, which would rebuild the
default model (a `size mismatch` on loading) unless every original override was typed again. The
checkpoint carries the composed config of its run (`ConfigInCheckpoint`), so that is the base; what
the user typed now wins: a `key=value` sets that value, a group choice (`trainer=cpu`, `model/net=...`)
replaces that group's node. An `experiment=` or `hparams_search=` choice changes keys that cannot be
told apart afterwards, so with one the command line is taken as the whole config, as before.
"""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from mlgen.checkpoints.config_in_checkpoint import CONFIG_KEY
from mlgen.errors import ConfigError

# Always this command's: where it writes, what it resumes from, what the user trusts (never a checkpoint's
# list), and what it does (train, test).
_OWN_KEYS = ("paths", "ckpt_path", "trusted_targets", "task_name", "train", "test")
_WHOLE_CONFIG_GROUPS = ("experiment", "hparams_search")
# Computed from the run dir when composed (the W&B run found there): this composition's, not the stored value.
_RUN_DIR_KEYS = ("logger.wandb.id",)


def config_for_resume(cfg: DictConfig, checkpoint: dict[str, Any]) -> DictConfig:
    """`cfg` with every key the command line did not set taken from the checkpoint's stored run config."""
    stored = checkpoint.get(CONFIG_KEY)
    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    if not isinstance(stored, dict) or hydra is None:
        return cfg  # not from mlgen-train, or no command line to read: the composed config as it is
    typed = OverridesParser.create().parse_overrides(list(hydra.overrides.task))
    choices = set(hydra.runtime.choices)
    if any(o.key_or_group in _WHOLE_CONFIG_GROUPS for o in typed):
        return cfg
    merged = OmegaConf.create(_moved(stored, str(stored.get("paths", {}).get("output_dir", "")),
                                     str(cfg.paths.output_dir)))
    for override in typed:
        path = override.key_or_group.replace("/", ".") if override.key_or_group in choices else override.key_or_group
        if path.split(".")[0] in (*_OWN_KEYS, "hydra"):
            continue
        if override.is_delete():
            _delete(merged, path)
        else:
            value = OmegaConf.select(cfg, path)
            OmegaConf.update(merged, path, OmegaConf.to_container(value, resolve=True)
                             if isinstance(value, DictConfig) else value, merge=False, force_add=True)
    for path in _RUN_DIR_KEYS:
        if OmegaConf.select(merged, path, default=None) is None and OmegaConf.select(cfg, path, default=None):
            OmegaConf.update(merged, path, OmegaConf.select(cfg, path), merge=False)
    _check_same_model(stored, merged, cfg.ckpt_path)
    with open_dict(cfg):
        for key, value in merged.items():
            if key not in _OWN_KEYS and key != "hydra":
                cfg[key] = value
    return cfg


def _moved(node: Any, old_dir: str, new_dir: str) -> Any:
    """The stored config with paths inside the old run dir moved to this run's dir (the same dir,
    unless the resume asked for a new one with hydra.run.dir=...)."""
    if isinstance(node, dict):
        return {k: _moved(v, old_dir, new_dir) for k, v in node.items()}
    if isinstance(node, list):
        return [_moved(v, old_dir, new_dir) for v in node]
    if old_dir and isinstance(node, str) and (node == old_dir or node.startswith(old_dir + "/")):
        return new_dir + node[len(old_dir):]
    return node


def _delete(cfg: DictConfig, path: str) -> None:
    parent, _, leaf = path.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if isinstance(node, DictConfig) and leaf in node:
        del node[leaf]


def _check_same_model(stored: dict[str, Any], merged: DictConfig, ckpt_path: str) -> None:
    before = (stored.get("model") or {}).get("_target_")
    now = OmegaConf.select(merged, "model._target_")
    if before and now and before != now:
        raise ConfigError(
            f"ckpt_path={ckpt_path} holds a {before.rsplit('.', 1)[-1]} model, but this command builds a "
            f"{now.rsplit('.', 1)[-1]} ({now}), so its weights can't be loaded. Fix: drop the model= choice to "
            f"resume the checkpoint's own model, or start a new run without ckpt_path.")
