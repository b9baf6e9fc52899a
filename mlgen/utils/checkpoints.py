"""Open user-given checkpoint paths with messages that say what is wrong and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mlgen.utils.errors import CheckpointError

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
