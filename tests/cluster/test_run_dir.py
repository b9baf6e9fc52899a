"""Run dirs of Slurm jobs (no cluster needed): who claims which dir when job ids repeat, how the other
ranks find it, and the first node's address for DDP when node names do not resolve."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from mlgen.distributed import rendezvous
from mlgen.distributed.run_dir import MARKER, SlurmAttempt, claim_run_dir, read_marker


def attempt(job: str = "7", restart: int = 0, submitted: str = "2026-01-01T00:00:00", step: str = "0") -> SlurmAttempt:
    return SlurmAttempt(cluster="ci", job=job, restart=restart, submitted=submitted, step=step)


def test_a_requeue_takes_over_its_own_dir_and_a_new_job_with_the_same_id_gets_a_new_one(tmp_path: Path) -> None:
    first = attempt()
    assert claim_run_dir(tmp_path, "slurm-7", first, rank_zero=True) == "slurm-7"
    (tmp_path / "slurm-7" / "hpc_ckpt_1.ckpt").write_text("weights of job 7")
    # the same job requeued: same dir, the attempt recorded next to the first
    requeued = attempt(restart=1, submitted="2026-01-01T01:00:00")
    assert claim_run_dir(tmp_path, "slurm-7", requeued, rank_zero=True) == "slurm-7"
    assert read_marker(tmp_path / "slurm-7")["attempts"] == [first.identity, requeued.identity]

    # job id 7 again (a wiped controller): a fresh job never enters the old dir
    before = (tmp_path / "slurm-7" / MARKER).read_text()
    again = attempt(submitted="2026-02-01T00:00:00")
    assert claim_run_dir(tmp_path, "slurm-7", again, rank_zero=True) == "slurm-7.2"
    assert (tmp_path / "slurm-7" / MARKER).read_text() == before
    # ... and its own requeue resumes its own dir (the newest claim of job 7), not the old job's
    assert claim_run_dir(tmp_path, "slurm-7", attempt(restart=1, submitted="2026-02-01T02:00:00"), True) == "slurm-7.2"
    # a dir without a marker (an older mlgen, a hand-made folder) is never anyone's
    (tmp_path / "slurm-8").mkdir()
    assert claim_run_dir(tmp_path, "slurm-8", attempt(job="8", restart=1), rank_zero=True) == "slurm-8.2"
    assert list((tmp_path / "slurm-8").iterdir()) == []


def test_other_ranks_wait_for_the_dir_rank_zero_claims_for_their_attempt(tmp_path: Path) -> None:
    (tmp_path / "slurm-7").mkdir()  # an old job's dir, with a marker of an earlier attempt of "job 7"
    (tmp_path / "slurm-7" / MARKER).write_text(json.dumps({"cluster": "ci", "job": "7", "claimed_at": 1.0,
                                                           "attempts": [attempt(submitted="old").identity]}))
    found: list[str] = []
    rank_one = threading.Thread(target=lambda: found.append(claim_run_dir(tmp_path, "slurm-7", attempt(), False)))
    rank_one.start()
    rank_one.join(timeout=0.5)
    assert rank_one.is_alive()  # nothing claimed for this attempt yet: rank 1 waits
    assert claim_run_dir(tmp_path, "slurm-7", attempt(), rank_zero=True) == "slurm-7.2"
    rank_one.join(timeout=10)
    assert found == ["slurm-7.2"]


def test_first_node_address_falls_back_to_slurms_node_address_or_says_what_to_do(monkeypatch) -> None:
    answers = {("show", "hostnames", "gpu[01-02]"): "gpu01\ngpu02\n"}
    monkeypatch.setattr(rendezvous, "_scontrol", lambda *args: answers.get(args, ""))
    monkeypatch.setattr(rendezvous, "_resolves", lambda host: host in ("localhost", "10.0.0.1"))
    assert rendezvous.first_node_address("localhost") == "localhost"  # a name that resolves is kept
    answers[("-o", "show", "node", "gpu01")] = "NodeName=gpu01 Arch=x86_64 NodeAddr=10.0.0.1 NodeHostName=gpu01"
    assert rendezvous.first_node_address("gpu[01-02]") == "10.0.0.1"
    del answers[("-o", "show", "node", "gpu01")]
    with pytest.raises(rendezvous.RendezvousError, match=r"MASTER_ADDR: the first node 'gpu01' of the job's nodes "
                                                         r"'gpu\[01-02\]' has no address here .* Fix: export "
                                                         r"MASTER_ADDR=<address of gpu01>"):
        rendezvous.first_node_address("gpu[01-02]")
