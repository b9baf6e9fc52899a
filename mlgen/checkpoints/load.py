"""Open user-given checkpoint paths with messages that say what is wrong and what to do."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from mlgen.checkpoints.allowlist import check_checkpoint
from mlgen.errors import CheckpointError

_WHERE = "runs keep them in <run dir>/checkpoints/ (last.ckpt and the best epoch_*.ckpt)"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a Lightning checkpoint on CPU, or raise `CheckpointError` naming the path and the fix.

    Everything it could make mlgen build has passed the allowlist (`allowlist.check_checkpoint`)."""
    return _read_checked(path)[0]


def _read_checked(path: str | Path) -> tuple[dict[str, Any], bytes]:
    """The checked checkpoint and the bytes it was read from: rebuilding from these same bytes, not
    from the path again, means the file checked is the file built (it may change in between)."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise CheckpointError(f"ckpt_path={path} {what}. Fix: point ckpt_path at a .ckpt file written by mlgen-train; {_WHERE}.")
    try:
        raw = path.read_bytes()
        # mlgen checkpoints hold only tensors and plain containers, so the safe loader suffices.
        checkpoint = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"ckpt_path={path} is not a readable checkpoint ({type(err).__name__}: {err}); the file may be "
            f"truncated or not a PyTorch file. Fix: use another checkpoint of the run; {_WHERE}."
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"ckpt_path={path} is a PyTorch file but not a Lightning checkpoint (no state_dict). "
            f"Fix: point ckpt_path at a .ckpt written by mlgen-train; {_WHERE}."
        )
    check_checkpoint(checkpoint, str(path))
    return checkpoint, raw


def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Rebuild the LightningModule of an mlgen checkpoint; returns `(model, run_config)`.

    The run config stored by `ConfigInCheckpoint` names the class, so no other config is needed.
    Its class, and everything `__init__` builds from the stored hyper-parameters, passed the allowlist.
    """
    from hydra.utils import get_class

    from mlgen.checkpoints.config_in_checkpoint import CONFIG_KEY

    checkpoint, raw = _read_checked(path)
    run_config = checkpoint.get(CONFIG_KEY)
    model_cfg = run_config.get("model") if isinstance(run_config, dict) else None
    if not isinstance(model_cfg, dict) or not isinstance(model_cfg.get("_target_"), str):
        raise CheckpointError(
            f"ckpt_path={path} holds no mlgen config naming its model (it was not written by mlgen-train), so the "
            f"model can't be rebuilt. Fix: use a checkpoint from an mlgen-train run; {_WHERE}."
        )
    model_cls = get_class(model_cfg["_target_"])  # only after check_checkpoint allowed it
    model = model_cls.load_from_checkpoint(io.BytesIO(raw), map_location="cpu", weights_only=True)
    return model, run_config
