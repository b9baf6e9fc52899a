"""The one check every rebuild from a checkpoint goes through: which `_target_`s it may name.

`torch.load(weights_only=True)` stops pickled code, but mlgen then builds the model (and, for
evaluation, the data) from the config stored in the checkpoint, and `load_from_checkpoint` passes the
stored hyper-parameters to `__init__`, where nets, optimisers and schedulers are instantiated from
nested `_target_`s. A checkpoint is untrusted input: without this check, one that names
`os.system` or `builtins.exec` would run it. So before anything is built, every `_target_` in those
parts of the checkpoint is checked against an allowlist, and the keys and values that would let a
config do more than name a class (`_partial_`, `_args_`, Lightning's `_instantiator`, OmegaConf
interpolations that resolvers could turn into new nodes) are refused. Hydra and Lightning offer no
such check for configs (Lightning's `_ALLOWED_INSTANTIATORS` covers only its `_instantiator` key), so
it is written here.

The user extends the list explicitly, never silently: `trusted_targets=[pkg.Class]` on the command
line of mlgen-train, mlgen-eval, mlgen-sample and mlgen-synth (see `trusting_config_targets`); it
applies to every checkpoint the run reads (ckpt_path, data.generator_ckpt, model.metrics.feature_ckpt).
The targets that the run's own config names count as trusted too: the run builds them anyway (a run
with `+callbacks.mine._target_=my_pkg.MyCallback` resumes from its own checkpoints). Nothing stored
inside a checkpoint is ever trusted.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from mlgen.config.checks import require
from mlgen.errors import CheckpointError

F = TypeVar("F", bound=Callable[..., Any])

# The parts of a checkpoint that anything is built from: mlgen's stored run config, the module's
# hyper-parameters (and Lightning's older names for them, which `load_from_checkpoint` still reads),
# and the datamodule's.
CONFIG_SECTIONS = ("mlgen_config", "hyper_parameters", "hparams", "module_arguments", "datamodule_hyper_parameters")

# Exact names, and (below) families: what mlgen's own and its shipped configs name. The stored run config
# also holds the run's trainer, callbacks and loggers, although only the model and the data are ever
# rebuilt from a checkpoint. tests/faults/test_untrusted_checkpoints.py composes every shipped config and
# checks that each of its targets is allowed.
# ProgressForStdout is a factory class (it returns a Lightning progress bar), so no base-class rule covers it.
ALLOWED_TARGETS = frozenset({"pytorch_lightning.Trainer", "mlgen.tracking.progress.ProgressForStdout"})

# Families: a name under one of these packages is allowed when it resolves to a class defined in that
# package which subclasses one of the given bases (`module:attribute`). Importing these packages runs
# no foreign code, and such classes only build nets, data, optimiser state, callbacks or loggers.
ALLOWED_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mlgen.models", ("pytorch_lightning:LightningModule",)),
    ("mlgen.nets", ("torch.nn:Module",)),
    ("mlgen.data", ("pytorch_lightning:LightningDataModule",)),
    ("mlgen.checkpoints", ("pytorch_lightning:Callback",)),
    ("mlgen.tracking", ("pytorch_lightning:Callback", "pytorch_lightning.loggers:Logger")),
    ("pytorch_lightning.callbacks", ("pytorch_lightning:Callback",)),
    ("pytorch_lightning.loggers", ("pytorch_lightning.loggers:Logger",)),
    ("optuna.pruners", ("optuna.pruners:BasePruner",)),  # of mlgen's pruning callback (hparams_search/pruning)
    ("torch.optim", ("torch.optim:Optimizer", "torch.optim.lr_scheduler:LRScheduler",
                     "torch.optim.lr_scheduler:ReduceLROnPlateau")),
)

# Hydra's keys that only say how to build a node; every other `_key` is refused (see module doc).
_BUILD_OPTIONS = frozenset({"_target_", "_recursive_", "_convert_"})
_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")

_trusted: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("mlgen_trusted_targets", default=frozenset())


class UntrustedCheckpointError(CheckpointError):
    """A checkpoint names something mlgen does not build from a checkpoint."""


def trusted_targets() -> frozenset[str]:
    """The names the user trusts for this run, on top of the allowlist."""
    return _trusted.get()


@contextmanager
def trusting(targets: Iterable[str] | None, key: str = "trusted_targets") -> Iterator[None]:
    """Trust `targets` (exact dotted names) for the checkpoints read inside the block."""
    require(not isinstance(targets, str), key, targets, "it must be a list", f"{key}=[{targets}]")
    names = list(targets or [])
    for name in names:
        require(isinstance(name, str) and _DOTTED_NAME.fullmatch(name) is not None, key, names,
                "it must be a list of dotted names such as my_pkg.nets.MyNet",
                f"{key}=[my_pkg.nets.MyNet], naming only classes or functions you trust")
    token = _trusted.set(_trusted.get() | frozenset(names))
    try:
        yield
    finally:
        _trusted.reset(token)


def trusting_config_targets(task: F) -> F:
    """Run a task `task(cfg, ...)` trusting `cfg.trusted_targets` and the targets `cfg` itself names
    (the user's config, never a checkpoint's)."""

    @functools.wraps(task)
    def wrapper(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        from omegaconf import OmegaConf

        own = [t for t in _targets_in(OmegaConf.to_container(cfg, resolve=False)) if _DOTTED_NAME.fullmatch(t)]
        with trusting(cfg.get("trusted_targets")), trusting(own):
            return task(cfg, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _targets_in(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        if isinstance(node.get("_target_"), str):
            yield node["_target_"]
        for value in node.values():
            yield from _targets_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from _targets_in(item)


def check_checkpoint(checkpoint: Mapping[str, Any], path: str) -> None:
    """Raise `UntrustedCheckpointError` unless everything `checkpoint` could make mlgen build is allowed."""
    for section in CONFIG_SECTIONS:
        if section in checkpoint:
            _check_node(checkpoint[section], section, path)


def is_allowed(target: str) -> bool:
    """Whether a checkpoint may name `target` (allowlist or the user's `trusted_targets`)."""
    if target in ALLOWED_TARGETS or target in trusted_targets():
        return True
    if not _DOTTED_NAME.fullmatch(target):
        return False
    for package, bases in ALLOWED_FAMILIES:
        if target.startswith(package + "."):
            return _is_family_member(target, package, bases)
    return False


def _is_family_member(target: str, package: str, bases: tuple[str, ...]) -> bool:
    import importlib
    import pkgutil

    try:  # the name is under an allowed package, so resolving it imports only that package's modules
        cls = pkgutil.resolve_name(target)
    except (ImportError, AttributeError, ValueError):
        return False
    if not isinstance(cls, type):
        return False
    base_classes = tuple(getattr(importlib.import_module(module), name) for module, name in (b.split(":") for b in bases))
    defined_in_package = cls.__module__ == package or cls.__module__.startswith(package + ".")
    return defined_in_package and issubclass(cls, base_classes)


def _check_node(node: Any, where: str, path: str) -> None:
    if isinstance(node, Mapping):
        target = node.get("_target_")
        if "_target_" in node and not (isinstance(target, str) and is_allowed(target)):
            trust = f"trusted_targets=[{target}]" if isinstance(target, str) and _DOTTED_NAME.fullmatch(target) else None
            _refuse(path, f"{where}._target_", target, "a target outside mlgen's allowlist", trust)
        trusted_node = isinstance(target, str) and target in trusted_targets()
        for key, value in node.items():
            if isinstance(key, str) and key.startswith("_") and key not in _BUILD_OPTIONS and not trusted_node:
                trust = f"trusted_targets=[{target}] (that node's target)" if isinstance(target, str) else None
                _refuse(path, f"{where}.{key}", value, f"a {key} key, which mlgen never writes and which changes "
                        "what gets built or called", trust)
            _check_node(value, f"{where}.{key}", path)
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            _check_node(item, f"{where}[{i}]", path)
    elif isinstance(node, str) and "${" in node:
        _refuse(path, where, node, "an OmegaConf interpolation, which a resolver could turn into something to build", None)


def _refuse(path: str, where: str, value: Any, what: str, trust: str | None) -> None:
    fix = (f"if you trust this file and whoever made it, allow it explicitly with {trust} (accepted by mlgen-train, "
           f"mlgen-eval, mlgen-sample and mlgen-synth)" if trust else "such a value is never trusted; rebuild the "
           "checkpoint's config without it")
    raise UntrustedCheckpointError(
        f"checkpoint {path} was refused: {where} is {value!r}, {what}. A checkpoint is untrusted input: mlgen builds "
        f"only its own models, nets and datamodules, torch.optim optimizers and schedulers and the Lightning classes "
        f"of its configs from one, so nothing was built or run. Fix: use a checkpoint written by mlgen-train; {fix}."
    )
