"""Two checkpoints of one training position are written once: the second is a hard link to the first
(mlgen/checkpoints/atomic_io.py). Anything that differs in training position gets a file of its own."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from mlgen.checkpoints.atomic_io import AtomicCheckpointIO
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config


def _checkpoint(step: int, loops_batches: int = 0, weights: float = 1.0, with_optimizer: bool = True) -> dict:
    checkpoint = {"epoch": 0, "global_step": step, "state_dict": {"w": torch.full((4,), weights)},
                  "loops": {"fit_loop": {"batches_done": loops_batches}}}
    if with_optimizer:
        checkpoint["optimizer_states"] = [{"state": {}}]
    return checkpoint


def test_a_second_save_of_the_same_position_is_a_link_and_loads_the_same(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint(_checkpoint(10), tmp_path / "epoch_000.ckpt")
    io.save_checkpoint(_checkpoint(10, weights=2.0), tmp_path / "last.ckpt")  # same position: not serialised again
    assert (tmp_path / "last.ckpt").samefile(tmp_path / "epoch_000.ckpt")
    assert io.load_checkpoint(tmp_path / "last.ckpt")["state_dict"]["w"].tolist() == [1.0] * 4
    # the best file removed later (a new best elsewhere) leaves last.ckpt whole
    os.remove(tmp_path / "epoch_000.ckpt")
    assert io.load_checkpoint(tmp_path / "last.ckpt")["global_step"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temp file left


def test_another_position_or_other_contents_get_their_own_file(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint(_checkpoint(10), tmp_path / "a.ckpt")
    io.save_checkpoint(_checkpoint(11, weights=2.0), tmp_path / "b.ckpt")  # trained on: another global step
    io.save_checkpoint(_checkpoint(11, loops_batches=3, weights=3.0), tmp_path / "c.ckpt")  # same step, other loop state
    io.save_checkpoint(_checkpoint(11, loops_batches=3, weights=4.0, with_optimizer=False), tmp_path / "d.ckpt")  # weights only
    weights = [io.load_checkpoint(tmp_path / f"{n}.ckpt")["state_dict"]["w"][0].item() for n in "abcd"]
    assert weights == [1.0, 2.0, 3.0, 4.0]
    assert len({(tmp_path / f"{n}.ckpt").stat().st_ino for n in "abcd"}) == 4


def test_a_file_rewritten_over_the_link_leaves_the_linked_one_alone(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint(_checkpoint(10), tmp_path / "epoch_000.ckpt")
    io.save_checkpoint(_checkpoint(10), tmp_path / "last.ckpt")
    io.save_checkpoint(_checkpoint(20, weights=5.0), tmp_path / "last.ckpt")  # next epoch: last.ckpt replaced
    assert io.load_checkpoint(tmp_path / "epoch_000.ckpt")["state_dict"]["w"][0].item() == 1.0
    assert io.load_checkpoint(tmp_path / "last.ckpt")["state_dict"]["w"][0].item() == 5.0


def test_without_hard_links_the_file_is_written(tmp_path, monkeypatch):
    """Filesystems without hard links (some FUSE and object-store mounts) get the normal write."""

    def no_links(*args: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    io = AtomicCheckpointIO()
    io.save_checkpoint(_checkpoint(10), tmp_path / "epoch_000.ckpt")
    monkeypatch.setattr(os, "link", no_links)
    io.save_checkpoint(_checkpoint(10), tmp_path / "last.ckpt")
    assert not (tmp_path / "last.ckpt").samefile(tmp_path / "epoch_000.ckpt")
    assert io.load_checkpoint(tmp_path / "last.ckpt")["global_step"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]


def test_a_run_writes_best_and_last_of_an_improving_epoch_once_and_resumes_from_it(tmp_path):
    """Digits, 2 epochs: epoch 1 is the best (val/acc rises), so its best checkpoint and last.ckpt are one
    file; resuming from that last.ckpt continues at epoch 2 with those weights."""
    quick = [*CPU_QUICK, "test=false", "model.scheduler=null"]  # no cosine schedule ending at lr 0 after epoch 2
    run = train(compose_config("train", [*quick, "trainer.max_epochs=2"], tmp_path / "run"))
    checkpoints = run.output_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch_001.ckpt", "last.ckpt"]
    assert (checkpoints / "last.ckpt").samefile(checkpoints / "epoch_001.ckpt")
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1 and "optimizer_states" in last
    resumed = train(compose_config("train", [*quick, "trainer.max_epochs=3", f"ckpt_path={checkpoints / 'last.ckpt'}"], tmp_path / "resumed"))
    after = torch.load(resumed.output_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert after["epoch"] == 2 and after["global_step"] == 3 * last["global_step"] // 2
    assert any(not torch.equal(after["state_dict"][k], last["state_dict"][k]) for k in last["state_dict"])


def test_a_best_saved_at_validation_end_is_not_linked_to_the_later_epoch_end_state(tmp_path):
    """Validating every 2nd epoch, the best is saved at the end of validation, before the epoch ends (the
    running training sums are still open, Lightning's loops have not closed the epoch); last.ckpt, written at
    the epoch end, holds another state and gets its own file."""
    run = train(compose_config("train", [*CPU_QUICK, "test=false", "trainer.max_epochs=2",
                                         "trainer.check_val_every_n_epoch=2"], tmp_path / "run"))
    checkpoints = run.output_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch_001.ckpt", "last.ckpt"]
    assert not (checkpoints / "last.ckpt").samefile(checkpoints / "epoch_001.ckpt")
    best, last = (torch.load(checkpoints / n, weights_only=True) for n in ("epoch_001.ckpt", "last.ckpt"))
    assert best["global_step"] == last["global_step"]
    assert "mlgen_train_sums" in best and "mlgen_train_sums" not in last


def test_a_file_replaced_since_it_was_written_is_not_linked(tmp_path):
    """Only the very file this writer wrote is linked: if something replaced it since, the state is written."""
    io = AtomicCheckpointIO()
    io.save_checkpoint(_checkpoint(10), tmp_path / "epoch_000.ckpt")
    torch.save(_checkpoint(99, weights=9.0), tmp_path / "other.ckpt")
    os.replace(tmp_path / "other.ckpt", tmp_path / "epoch_000.ckpt")
    io.save_checkpoint(_checkpoint(10), tmp_path / "last.ckpt")
    assert not (tmp_path / "last.ckpt").samefile(tmp_path / "epoch_000.ckpt")
    assert io.load_checkpoint(tmp_path / "last.ckpt")["global_step"] == 10


def _differences(a: object, b: object, where: str = "") -> list[str]:
    """Where two loaded checkpoints differ, key by key (tensors by value)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str)
        return [d for k in keys for d in (_differences(a.get(k), b.get(k), f"{where}/{k}") if k in a and k in b else [f"{where}/{k}"])]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{i}]")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return [] if a.shape == b.shape and torch.equal(a, b) else [where]
    return [] if a == b else [where]


def _run_dir_named(state: object, run_dir: str) -> object:
    """`state` with the run dir in every string (config paths, callback paths) replaced by `RUN`."""
    if isinstance(state, dict):
        return {_run_dir_named(k, run_dir): _run_dir_named(v, run_dir) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_run_dir_named(v, run_dir) for v in state)
    return state.replace(run_dir, "RUN") if isinstance(state, str) else state


@pytest.mark.slow
def test_a_linked_last_checkpoint_holds_what_a_written_one_holds_key_by_key(tmp_path, monkeypatch):
    """The link stands in for a write of last.ckpt: same training position, so the same weights, optimizer,
    loops, RNG, callback states and config, apart from the directory the run wrote to."""
    quick = [*CPU_QUICK, "test=false", "model.scheduler=null", "trainer.max_epochs=2", "seed=5"]
    linked = train(compose_config("train", quick, tmp_path / "linked")).output_dir / "checkpoints"
    assert (linked / "last.ckpt").samefile(linked / "epoch_001.ckpt")

    def no_links(*args: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    written = train(compose_config("train", quick, tmp_path / "written")).output_dir / "checkpoints"
    assert not (written / "last.ckpt").samefile(written / "epoch_001.ckpt")
    a, b = (_run_dir_named(torch.load(path / "last.ckpt", map_location="cpu", weights_only=True), str(path.parent))
            for path in (linked, written))
    assert _differences(a, b) == []
    assert {"state_dict", "optimizer_states", "loops", "callbacks", "mlgen_rng_states"} <= set(a)


def test_checkpoints_skip_zip_checksums_and_leave_torch_save_as_it_was(tmp_path):
    """mlgen's saves skip the zip CRC-32s that torch.load never checks (atomic_io.py); torch.save elsewhere in
    the process keeps computing them, also after a save that failed."""
    import zipfile

    io = AtomicCheckpointIO()
    io.save_checkpoint(_checkpoint(1, weights=3.0), tmp_path / "last.ckpt")
    with zipfile.ZipFile(tmp_path / "last.ckpt") as saved:
        assert {info.CRC for info in saved.infolist() if info.file_size} == {0}
    assert io.load_checkpoint(tmp_path / "last.ckpt")["state_dict"]["w"].tolist() == [3.0] * 4

    with pytest.raises(Exception, match="pickle"):
        io.save_checkpoint({**_checkpoint(2), "bad": lambda: None}, tmp_path / "bad.ckpt")
    torch.save({"w": torch.ones(4)}, tmp_path / "plain.pt")
    with zipfile.ZipFile(tmp_path / "plain.pt") as plain:
        assert all(info.CRC != 0 for info in plain.infolist() if info.file_size)
