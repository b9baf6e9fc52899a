"""Checkpoint writes that leave the old file or the new one, never a partial one, even on kill -9 or a full disk.

Lightning's `TorchCheckpointIO` writes through an fsspec transaction: a temp file in `$TMPDIR`, then a
move. When `$TMPDIR` is on another filesystem than the run dir, the move is a copy over the old file, so
a kill or a full disk in the middle leaves it truncated (and a truncated `epoch_*.ckpt` can look like the
best one); the temp file is never removed after a kill. Here the temp file is made in the destination
folder, flushed and fsynced, then `os.replace`d over the destination (atomic on POSIX), and the folder
is fsynced so the rename survives a crash too. Every checkpoint the Trainer writes (best, last, Slurm
`hpc_ckpt_*`) goes through this plugin. Every checkpoint the Trainer reads (resuming, testing the best
one) is unpickled with `weights_only=True` and passes the allowlist check (see allowlist.py).
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import shutil
import socket
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from mlgen.checkpoints.allowlist import check_checkpoint
from mlgen.errors import CheckpointError

# Temp files are hidden and never contain "ckpt_": Lightning's Slurm resume takes the highest number in
# any file name of the run dir that contains "ckpt_" as the hpc checkpoint to load.
_TEMP_PREFIX = ".mlgen-partial"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` whose saves are atomic and durable; remote (fsspec URL) paths keep Lightning's way."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)  # serialised first, so a failed write is an OSError with its errno
        temp = path.parent / f"{_TEMP_PREFIX}-{_writer_id()}-{secrets.token_hex(4)}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(temp, "xb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)
        except BaseException as err:
            with suppress(FileNotFoundError):
                temp.unlink()
            if isinstance(err, OSError) and err.errno in _DISK_FULL:
                raise CheckpointError(_disk_full_message(path, err.errno, len(buffer.getbuffer()))) from None
            raise
        _fsync_folder(path.parent)
        _remove_orphans(path.parent)

    def load_checkpoint(self, path: Any, map_location: Callable | None = lambda storage, loc: storage,
                        weights_only: bool | None = None) -> dict[str, Any]:
        """mlgen checkpoints hold only tensors and plain containers: never unpickle anything else."""
        checkpoint = super().load_checkpoint(path, map_location=map_location, weights_only=True)
        check_checkpoint(checkpoint, str(path))
        return checkpoint


def _writer_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; some filesystems cannot fsync a folder, which is then all one can do."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _remove_orphans(folder: Path) -> None:
    """Delete temp files of writers on this host that were killed mid-save (kill -9 skips every cleanup)."""
    prefix = f"{_TEMP_PREFIX}-{socket.gethostname()}-"
    for temp in folder.glob(f"{prefix}*"):
        pid = temp.name[len(prefix):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            with suppress(FileNotFoundError):
                temp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _disk_full_message(path: Path, code: int, size: int) -> str:
    free = shutil.disk_usage(path.parent).free
    what = "the disk quota is used up" if code == errno.EDQUOT else "the disk is full"
    earlier = sorted(path.parent.glob("*.ckpt"), key=lambda p: (p.name == "last.ckpt", p.stat().st_mtime))
    then = (f"resume with ckpt_path={earlier[-1]}" if earlier else "start the run again (it had saved no checkpoint yet)")
    return (
        f"could not write checkpoint {path}: {what} ({_mib(free)} free on that filesystem, the checkpoint needs "
        f"{_mib(size)}). Nothing partial was left and the earlier checkpoints in {path.parent} are intact. "
        f"Fix: free space there (or set MLGEN_LOG_DIR / paths.log_dir to a larger disk), then {then}."
    )


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
