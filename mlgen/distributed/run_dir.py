"""The run dir of a Slurm job: its own, never another job's, and the same one again after a requeue.

Run dirs are named after the job (`slurm-<job id>`) so that a requeued job finds its checkpoint, and
Lightning resumes from any `hpc_ckpt_*.ckpt` it finds there. Job ids repeat (a controller whose state
was wiped starts again at 1, two clusters share a filesystem, ids wrap around), so the name alone would
let a new job restore an unrelated job's weights and optimizer and write into its folder.

So the first attempt of a job claims a dir that does not exist yet (`slurm-<id>`, else `slurm-<id>.2`,
`.3`, ...) and writes a marker in it naming the cluster, the job and the attempt; only a requeue of the
same job (SLURM_RESTART_COUNT > 0) takes over a dir whose marker names that cluster and job (the newest
such claim). A job that finds an old dir of its number leaves it untouched and says where it writes
instead; failing would throw away the hours the job waited in the queue, and both runs stay intact.

Only rank 0 claims. The other tasks of the srun step wait for the marker that names their attempt
(the attempt's SubmitTime, which Slurm renews at each requeue, and the step id), so all ranks agree
without a process group. Written by hand: neither Slurm nor Lightning nor Hydra does this.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MARKER = ".slurm-job.json"
_WAIT_FOR_RANK_ZERO_S = 600.0


@dataclass(frozen=True)
class SlurmAttempt:
    """One attempt (start or requeue) of a Slurm job, as every task of its srun step sees it."""

    cluster: str
    job: str  # `123`, or `120_3` for an array task
    restart: int  # SLURM_RESTART_COUNT: 0 for the first attempt
    submitted: str  # SubmitTime of this attempt (Slurm renews it at each requeue)
    step: str  # SLURM_STEP_ID ("batch" outside srun)

    @property
    def identity(self) -> dict[str, str]:
        return {"submitted": self.submitted, "step": self.step}


def job_tag() -> str | None:
    """`123` (or `120_3` for an array task) in a Slurm job, else None."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array_job:
        return f"{array_job}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    return os.environ.get("SLURM_JOB_ID") or None


def current_attempt() -> SlurmAttempt | None:
    """This process's Slurm attempt; None outside Slurm. Asks `scontrol` for the submit time."""
    tag = job_tag()
    if tag is None:
        return None
    return SlurmAttempt(cluster=os.environ.get("SLURM_CLUSTER_NAME", "slurm"), job=tag,
                        restart=int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0),
                        submitted=_submit_time(os.environ["SLURM_JOB_ID"]),
                        step=os.environ.get("SLURM_STEP_ID", "batch"))


def _submit_time(job_id: str) -> str:
    try:
        out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(r"\bSubmitTime=(\S+)", out)
    return match.group(1) if match else ""


def read_marker(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _candidates(parent: Path, base: str) -> list[Path]:
    """`base`, `base.2`, `base.3`, ... that exist, in that order."""
    found = [parent / base] if (parent / base).is_dir() else []
    pattern = re.compile(rf"{re.escape(base)}\.(\d+)")
    numbered = [(int(m.group(1)), p) for p in parent.glob(f"{base}.*") if (m := pattern.fullmatch(p.name))]
    return found + [p for _, p in sorted(numbered)]


def _is_job(marker: dict | None, attempt: SlurmAttempt) -> bool:
    return bool(marker) and marker.get("cluster") == attempt.cluster and marker.get("job") == attempt.job


def _write_marker(run_dir: Path, marker: dict) -> None:
    tmp = run_dir / f"{MARKER}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(marker, indent=1) + "\n")
    os.replace(tmp, run_dir / MARKER)  # readers never see half a marker


def claim_run_dir(parent: str | os.PathLike[str], base: str, attempt: SlurmAttempt, rank_zero: bool) -> str:
    """Name of the dir under `parent` this attempt writes to (created, with its marker, by rank 0)."""
    parent = Path(parent)
    if not rank_zero:
        return _wait_for_claim(parent, base, attempt)
    if attempt.restart > 0:
        own = [p for p in _candidates(parent, base) if _is_job(read_marker(p), attempt)]
        if own:
            newest = max(own, key=lambda p: read_marker(p).get("claimed_at", 0))
            marker = read_marker(newest)
            marker["attempts"].append(attempt.identity)
            _write_marker(newest, marker)
            return newest.name
    parent.mkdir(parents=True, exist_ok=True)
    for number in range(1, 10_000):
        name = base if number == 1 else f"{base}.{number}"
        try:
            (parent / name).mkdir()
        except FileExistsError:
            continue
        _write_marker(parent / name, {**{k: v for k, v in asdict(attempt).items() if k in ("cluster", "job")},
                                      "claimed_at": time.time(), "attempts": [attempt.identity]})
        if number > 1:
            print(f"mlgen: {parent / base} belongs to another Slurm job {attempt.job} (job ids repeat when a "
                  f"controller's state is reset or clusters share a filesystem); it is left untouched and "
                  f"this job writes to {parent / name}", file=sys.stderr, flush=True)
        return name
    raise RuntimeError(f"no free run dir name {base}.N under {parent}")


def _wait_for_claim(parent: Path, base: str, attempt: SlurmAttempt) -> str:
    """The dir rank 0 of this attempt's step claimed (rank 0 imports and composes as fast as we do)."""
    deadline = time.monotonic() + _WAIT_FOR_RANK_ZERO_S
    while time.monotonic() < deadline:
        for path in reversed(_candidates(parent, base) if parent.is_dir() else []):
            marker = read_marker(path)
            if _is_job(marker, attempt) and attempt.identity in marker.get("attempts", []):
                return path.name
        time.sleep(0.2)
    raise RuntimeError(
        f"rank 0 of Slurm job {attempt.job} did not claim a run dir {base}[.N] under {parent} within "
        f"{_WAIT_FOR_RANK_ZERO_S:.0f} s; see rank 0's error above in the job output.")


# What Hydra puts in a run dir before the task does anything. A Slurm claim marker keeps the dir: the other
# ranks of the step wait for it (they would hang if rank 0 removed it after failing on bad input).
_SET_UP_ONLY = {".hydra"}


def remove_if_unused(run_dir: str | os.PathLike[str]) -> bool:
    """Remove a run dir that holds only what set-up wrote (`.hydra/`, the claim marker, `<task>.log`), so
    a run that failed on bad input, or wrote its output elsewhere, leaves no empty run dir behind.
    Anything else in it (a checkpoint, a metrics file, a W&B folder) keeps the dir. Returns whether removed."""
    import shutil

    run_dir = Path(run_dir)
    try:
        entries = list(run_dir.iterdir())
    except OSError:
        return False
    if any(p.name not in _SET_UP_ONLY and not (p.suffix == ".log" and p.is_file()) for p in entries):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return not run_dir.exists()
