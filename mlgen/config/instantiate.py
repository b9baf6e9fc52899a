"""Build data, models, callbacks and loggers from config, with errors that name the config key."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from mlgen.errors import ConfigError, MLGenError


def _accepted_options(target: Any) -> set[str] | None:
    """Argument names `target` accepts, following **kwargs up mlgen's own base classes;
    None when a foreign target takes arbitrary **kwargs (then it reports unknowns itself)."""
    mlgen_classes = [c for c in getattr(target, "__mro__", ()) if c.__module__.startswith("mlgen.")]
    names: set[str] = set()
    for obj in mlgen_classes or [target]:
        params = inspect.signature(obj).parameters.values()
        if not mlgen_classes and any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        names |= {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return names


def _unknown_options(cfg: Mapping[str, Any], kwargs: Mapping[str, Any]) -> list[str]:
    try:
        accepted = _accepted_options(get_class(cfg["_target_"]))
    except Exception:  # not a class (a function target) or not importable: instantiate will say
        return []
    if accepted is None:
        return []
    return [k for k in [*cfg, *kwargs] if not str(k).startswith("_") and k not in accepted]


def build_from_config(cfg: Mapping[str, Any], key: str, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate` whose errors name the config key instead of a deep traceback.

    Unknown options (e.g. `+model.foo=1`) are reported by name; errors raised by mlgen's own
    checks pass through unchanged, since they already say what to fix.
    """
    unknown = _unknown_options(cfg, kwargs) if "_target_" in cfg else []
    if unknown:
        raise ConfigError(
            f"{key} has unknown option(s) {', '.join(f'{key}.{u}' for u in unknown)} for "
            f"{cfg['_target_']}. Fix: remove them or correct the spelling; `mlgen-train --cfg job` "
            f"shows every valid option."
        )
    try:
        return instantiate(cfg, **kwargs)
    except Exception as err:  # instantiate wraps everything in InstantiationException
        cause = err.__cause__ or err
        if isinstance(cause, MLGenError):
            raise cause from None
        raise ConfigError(
            f"{key} (_target_={cfg.get('_target_')!r}) could not be built: {cause}. "
            f"Fix: check the options under {key} against that class's arguments."
        ) from None


def instantiate_model(cfg: DictConfig) -> Any:
    """Models build their own nets and optimisers, so they receive plain dicts, not objects."""
    return build_from_config(cfg, "model", _recursive_=False, _convert_="all")


def instantiate_datamodule(cfg: DictConfig) -> Any:
    """Plain containers as arguments keep the saved hyper-parameters free of OmegaConf objects."""
    return build_from_config(cfg, "data", _convert_="all")


def instantiate_group(cfg: DictConfig | None, key: str) -> list[Any]:
    """Instantiate every entry of a dict-of-configs group (callbacks, loggers); skip nulls."""
    if not cfg:
        return []
    return [build_from_config(entry, f"{key}.{name}") for name, entry in cfg.items() if entry and "_target_" in entry]
