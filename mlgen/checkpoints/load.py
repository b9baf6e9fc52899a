"""Open user-given checkpoint paths with messages that say what is wrong and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mlgen.errors import CheckpointError

_WHERE = "runs keep them in <run dir>/checkpoints/ (last.ckpt and the best epoch_*.ckpt)"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a Lightning checkpoint on CPU, or raise `CheckpointError` naming the path and the fix."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise CheckpointError(f"ckpt_path={path} {what}. Fix: point ckpt_path at a .ckpt file written by mlgen-train; {_WHERE}.")
    try:
        # mlgen checkpoints hold only tensors and plain containers, so the safe loader suffices.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
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
    return checkpoint


def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Rebuild the LightningModule of an mlgen checkpoint; returns `(model, run_config)`.

    The run config stored by `ConfigInCheckpoint` names the class, so no other config is needed.
    """
    from hydra.utils import get_class

    from mlgen.checkpoints.config_in_checkpoint import CONFIG_KEY

    checkpoint = load_checkpoint(path)
    if CONFIG_KEY not in checkpoint:
        raise CheckpointError(
            f"ckpt_path={path} holds no mlgen config (it was not written by mlgen-train), so the model "
            f"can't be rebuilt. Fix: use a checkpoint from an mlgen-train run; {_WHERE}."
        )
    run_config = checkpoint[CONFIG_KEY]
    model_cls = get_class(run_config["model"]["_target_"])
    model = model_cls.load_from_checkpoint(path, map_location="cpu")
    return model, run_config
