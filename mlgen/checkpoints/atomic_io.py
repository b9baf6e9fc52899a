"""Checkpoint writes that leave the old file or the new one, never a partial one, even on kill -9 or a full disk.

Lightning's `TorchCheckpointIO` writes through an fsspec transaction: a temp file in `$TMPDIR`, then a
move. When `$TMPDIR` is on another filesystem than the run dir, the move is a copy over the old file, so
a kill or a full disk in the middle leaves it truncated (and a truncated `epoch_*.ckpt` can look like the
best one); the temp file is never removed after a kill. Here the temp file is made in the destination
folder, flushed and fsynced, then `os.replace`d over the destination (atomic on POSIX), and the folder
is fsynced so the rename survives a crash too. Every checkpoint the Trainer writes (best, last, Slurm
`hpc_ckpt_*`) goes through this plugin. Every checkpoint the Trainer reads (resuming, testing the best
one) is unpickled with `weights_only=True` and passes the allowlist check (see allowlist.py).

Two checkpoints of one training position are one file: at an epoch end where the monitored checkpoint saves a
new best, `last.ckpt` (LatestCheckpoint, the next callback) would serialise and write the same weights,
optimizer and loop state again. Instead it becomes a hard link to the file just written (same guarantees: the
link is made under a temp name and `os.replace`d, the folder fsynced), which halves the checkpoint cost of
such an epoch. "The same position" is checked on the checkpoints themselves: same keys, epoch, global step
and loop progress (weights only change in optimizer steps, which move the global step). The one difference
is the checkpoint callbacks' own bookkeeping, which the second file takes from the first.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.utils.serialization
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from mlgen.checkpoints.allowlist import check_checkpoint
from mlgen.errors import CheckpointError

# Temp files are hidden and never contain "ckpt_": Lightning's Slurm resume takes the highest number in
# any file name of the run dir that contains "ckpt_" as the hpc checkpoint to load.
_TEMP_PREFIX = ".mlgen-partial"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` whose saves are atomic and durable; remote (fsspec URL) paths keep Lightning's way."""

    def __init__(self) -> None:
        super().__init__()
        self._last_write: _Written | None = None

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        position = _position(checkpoint)
        if self._last_write is not None and self._last_write.position == position and self._link(self._last_write, path):
            return
        with _without_zip_checksums():
            # into the open file object, not a path: torch then writes through its `write`, so a failed write is
            # the OSError with its errno (`_save`), and no second copy of the whole checkpoint is made in memory.
            # Timing: an 11 MiB save alone took 4 ms instead of 12-33 ms, but in a training run the full save's
            # median only went from 19.6 to 18.7 ms (fsync and rename took the rest)
            self._replace(path, lambda: _tensor_bytes(checkpoint), lambda f: _save(checkpoint, f))
        self._last_write = _Written(path, position, path.stat().st_ino)

    def _link(self, source: _Written, path: Path) -> bool:
        """Make `path` a hard link to the file last written, if it is still that file (same inode); False where
        that cannot be done (gone or replaced, or a filesystem without hard links): the caller then writes."""
        try:
            if source.path == path or source.path.stat().st_ino != source.inode:
                return False
            self._replace(path, lambda: 0, lambda temp: os.link(source.path, temp), open_temp=False)
        except OSError as err:
            if err.errno in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK, errno.ENOENT):
                return False
            raise
        return True

    def _replace(self, path: Path, size: Callable[[], int], fill: Callable[[Any], Any], open_temp: bool = True) -> None:
        """Put the new file at `path` atomically: filled under a temp name in the same folder (flushed and
        fsynced), `os.replace`d over `path`, the folder fsynced. A full disk raises one CheckpointError."""
        temp = path.parent / f"{_TEMP_PREFIX}-{_writer_id()}-{secrets.token_hex(4)}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if open_temp:
                with open(temp, "xb") as f:
                    fill(f)
                    f.flush()
                    os.fsync(f.fileno())
            else:
                fill(temp)
            os.replace(temp, path)
        except BaseException as err:
            with suppress(FileNotFoundError):
                temp.unlink()
            if isinstance(err, OSError) and err.errno in _DISK_FULL:
                raise CheckpointError(_disk_full_message(path, err.errno, size())) from None
            raise
        _fsync_folder(path.parent)
        _remove_orphans(path.parent)

    def load_checkpoint(self, path: Any, map_location: Callable | None = lambda storage, loc: storage,
                        weights_only: bool | None = None) -> dict[str, Any]:
        """mlgen checkpoints hold only tensors and plain containers: never unpickle anything else."""
        checkpoint = super().load_checkpoint(path, map_location=map_location, weights_only=True)
        check_checkpoint(checkpoint, str(path))
        return checkpoint


@dataclass(frozen=True)
class _Written:
    path: Path
    position: tuple[Any, ...]
    inode: int


def _position(checkpoint: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies the training state a checkpoint holds (see the module docstring)."""
    return (tuple(sorted(checkpoint)), checkpoint.get("epoch"), checkpoint.get("global_step"), repr(checkpoint.get("loops")))


@contextmanager
def _without_zip_checksums() -> Iterator[None]:
    """torch.save without the CRC-32 of every record: torch.load never checks it (a flipped byte in a tensor
    loads either way), and it cost ~4 ms of a ~5 ms serialisation of an 11 MiB checkpoint on CPU. What keeps a
    checkpoint whole is the atomic, fsynced write here. (PyTorch's own switch, torch>=2.6.)"""
    save_config = torch.utils.serialization.config.save
    before, save_config.compute_crc32 = save_config.compute_crc32, False
    try:
        yield
    finally:
        save_config.compute_crc32 = before


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


class _WriteErrors:
    """The file as torch.save sees it: its `write`, remembering the OSError that write raised. After a failed
    write torch.save still ends its zip file, which then fails with a RuntimeError ("unexpected pos") that hides
    the errno the caller needs (a full disk)."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.file.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def flush(self) -> None:
        self.file.flush()


def _save(checkpoint: dict[str, Any], file: Any) -> None:
    writer = _WriteErrors(file)
    try:
        torch.save(checkpoint, writer)
    except Exception:
        if writer.error is not None:
            raise writer.error from None
        raise


def _tensor_bytes(checkpoint: Any) -> int:
    """What the tensors of a checkpoint take, which is nearly all of its file (for the disk-full message)."""
    if isinstance(checkpoint, torch.Tensor):
        return checkpoint.untyped_storage().nbytes()
    if isinstance(checkpoint, dict):
        return sum(_tensor_bytes(v) for v in checkpoint.values())
    if isinstance(checkpoint, (list, tuple)):
        return sum(_tensor_bytes(v) for v in checkpoint)
    return 0


def _disk_full_message(path: Path, code: int, size: int) -> str:
    free = shutil.disk_usage(path.parent).free
    what = "the disk quota is used up" if code == errno.EDQUOT else "the disk is full"
    earlier = sorted(path.parent.glob("*.ckpt"), key=lambda p: (p.name == "last.ckpt", p.stat().st_mtime))
    then = (f"resume with ckpt_path={earlier[-1]}" if earlier else "start the run again (it had saved no checkpoint yet)")
    return (
        f"could not write checkpoint {path}: {what} ({_mib(free)} free on that filesystem, the checkpoint needs "
        f"about {_mib(size)}). Nothing partial was left and the earlier checkpoints in {path.parent} are intact. "
        f"Fix: free space there (or set MLGEN_LOG_DIR / paths.log_dir to a larger disk), then {then}."
    )


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
