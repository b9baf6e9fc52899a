"""A real Slurm cluster for tests: one slurmctld and two nodes, n1 and n2, on this host.

Why: mocking Slurm proves nothing about srun/sbatch/requeue behaviour; on a root machine with
Debian packages we can run slurmctld + slurmd + munged for real in ~1 s. Debian's slurmd runs in
multiple-slurmd mode: each node is a `slurmd -N <name>` with its own port, pid file, spool dir and
log (`%n` in their paths). Node names do not resolve, as on clusters whose node names only Slurm
knows, so jobs must find the first node's address themselves (slurm/*.sbatch do).
Everything (config, state, spool, logs, pid files) lives in one directory, and the
daemons are stopped by the PIDs in their pid files, never by name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable

SLURM_BINARIES = ("slurmctld", "slurmd", "sbatch", "srun", "munged")
APT_PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
FINAL_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
     "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
)
# Variables that would leak an outer job/allocation (or sbatch/srun defaults) into ours.
_INHERITED_PREFIXES = ("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")
_MUNGE_RUN_DIR = Path("/run/munge")


def _which(name: str) -> str | None:
    """Find a binary also in sbin dirs, which a non-login PATH may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def _pid_alive(pid: int) -> bool:
    """True if pid runs and is not a zombie (daemons are re-parented, maybe to a non-reaping init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _kill_and_wait(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.1)


class LocalSlurmCluster:
    """slurmctld + one slurmd per node (+ munged if none runs) on this host, rooted at `root`.

    Each node gets all of this host's CPUs, so a 2-task job fits on one node and a 2-node job runs
    one task on each (the host's cores are shared, as the tests run one job at a time).
    """

    def __init__(self, root: str | os.PathLike[str], nodes: tuple[str, ...] = ("n1", "n2"),
                 ctld_port: int = 6817, slurmd_port: int = 6818, start_timeout: float = 30.0) -> None:
        self.root = Path(root).resolve()
        self.nodes = nodes
        self.ctld_port = ctld_port
        self.slurmd_ports = {node: slurmd_port + i for i, node in enumerate(nodes)}
        self.start_timeout = start_timeout
        self.host = socket.gethostname().split(".")[0]  # == `hostname -s`, the NodeHostname of every node
        self.conf_path = self.root / "slurm.conf"
        self.log_dir = self.root / "log"
        self._pid_files = {"slurmctld": self.root / "run" / "slurmctld.pid",
                           **{node: self.root / "run" / f"slurmd-{node}.pid" for node in nodes}}
        self._munged_pid: int | None = None  # set only when we started munged

    # ----------------------------------------------------------------- install
    @staticmethod
    def ensure_slurm_installed() -> str | None:
        """Install the Debian packages if missing.

        Returns None when Slurm is usable, or a reason string when installing is impossible
        here (not root / no apt-get), so the caller can skip. A failed install as root raises.
        """
        missing = [b for b in SLURM_BINARIES if _which(b) is None]
        if not missing:
            return None
        if os.geteuid() != 0:
            return f"Slurm binaries missing ({', '.join(missing)}) and not root to install them"
        if shutil.which("apt-get") is None:
            return f"Slurm binaries missing ({', '.join(missing)}) and no apt-get to install them"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES]):
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                                   f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        still = [b for b in SLURM_BINARIES if _which(b) is None]
        if still:
            raise RuntimeError(f"installed {APT_PACKAGES} but still missing: {still}")
        return None

    # ------------------------------------------------------------------- env
    @property
    def env(self) -> dict[str, str]:
        """os.environ with SLURM_CONF pointing here and no inherited job/allocation variables."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
        env["SLURM_CONF"] = str(self.conf_path)
        return env

    # ------------------------------------------------------------ lifecycle
    def write_conf(self) -> Path:
        """Write slurm.conf per ENV.md; all mutable paths are under self.root."""
        for sub in ("run", "state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        spool = self.root / "spool"
        if len(str(spool)) > 60:  # slurmd puts unix sockets there (sun_path max 108 bytes)
            raise ValueError(f"cluster root too long for slurmd's sockets: {self.root}")
        cpus = len(os.sched_getaffinity(0))  # == `nproc`
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        settings = {
            "ClusterName": "ci", "SlurmctldHost": self.host,
            "SlurmUser": "root", "SlurmdUser": "root",
            "AuthType": "auth/munge", "CredType": "cred/munge",
            # Short credential lifetime + 5 s scheduler: a requeued job restarts in ~10 s, not ~160 s.
            "AuthInfo": "cred_expire=10",
            "MpiDefault": "none", "ProctrackType": "proctrack/linuxproc",
            # task/affinity pins the tasks of both nodes to CPU 0 in multiple-slurmd mode
            "TaskPlugin": "task/none", "EnforcePartLimits": "ALL",
            "SelectType": "select/cons_tres", "SelectTypeParameters": "CR_Core",
            "SchedulerType": "sched/backfill",
            "SchedulerParameters": "sched_interval=5,bf_interval=5",
            "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none", "JobCompType": "jobcomp/none",
            "JobRequeue": "1", "ReturnToService": "2", "MailProg": "/bin/true",
            "InactiveLimit": "0", "KillWait": "10",
            "MinJobAge": "300",  # keeps finished jobs visible to `scontrol show job`
            "Waittime": "0",
            "SlurmctldPort": str(self.ctld_port),
            "SlurmctldPidFile": str(self._pid_files["slurmctld"]),
            "SlurmdPidFile": str(self.root / "run" / "slurmd-%n.pid"),  # %n: the node name
            "StateSaveLocation": str(self.root / "state"),
            "SlurmdSpoolDir": str(spool / "%n"),
            "SlurmctldLogFile": str(self.log_dir / "slurmctld.log"),
            "SlurmdLogFile": str(self.log_dir / "slurmd-%n.log"),
        }
        lines = [f"{k}={v}" for k, v in settings.items()]
        memory_mb = mem_kb * 9 // 10 // 1024 // len(self.nodes)
        lines += [f"NodeName={node} NodeHostname={self.host} NodeAddr=127.0.0.1 Port={port} CPUs={cpus} "
                  f"RealMemory={memory_mb} State=UNKNOWN" for node, port in self.slurmd_ports.items()]
        lines.append("PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP")
        self.conf_path.write_text("\n".join(lines) + "\n")
        return self.conf_path

    def start(self) -> None:
        """Write the config, start munged (unless running), slurmctld, slurmd; wait for `idle`."""
        for port in (self.ctld_port, *self.slurmd_ports.values()):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    raise RuntimeError(f"port {port} is taken (another Slurm cluster still running?)")
        self.write_conf()
        self._start_munged()
        daemons = [["slurmctld"], *(["slurmd", "-N", node] for node in self.nodes)]
        for daemon, *args in daemons:
            proc = subprocess.run([_which(daemon) or daemon, "-f", str(self.conf_path), *args],
                                  env=self.env, capture_output=True, text=True, timeout=30)
            if proc.returncode != 0:
                raise RuntimeError(f"{daemon} {' '.join(args)} failed to start ({proc.returncode}): "
                                   f"{proc.stderr}\n{self.logs()}")
        self._wait_until(lambda: self.run(["sinfo", "-h", "-N", "-o", "%T"], check=False)
                         .stdout.split() == ["idle"] * len(self.nodes), self.start_timeout,
                         f"{len(self.nodes)} nodes to become idle")

    def _start_munged(self) -> None:
        """Reuse a running munged (it is machine-wide); otherwise start one as the munge user."""
        # Ask the daemon itself: a stale socket, pid file or zombie (pgrep lists those) is no munged.
        if subprocess.run([_which("munge") or "munge", "-n"], capture_output=True).returncode == 0:
            return
        _MUNGE_RUN_DIR.mkdir(parents=True, exist_ok=True)
        shutil.chown(_MUNGE_RUN_DIR, "munge", "munge")
        (_MUNGE_RUN_DIR / "munged.pid").unlink(missing_ok=True)  # stale: no live munged answered
        proc = subprocess.run(["runuser", "-u", "munge", "--", _which("munged") or "munged"],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"munged failed to start ({proc.returncode}): {proc.stderr}")
        self._wait_until(lambda: _read_pid(_MUNGE_RUN_DIR / "munged.pid") is not None, 10,
                         "munged pid file")
        self._munged_pid = _read_pid(_MUNGE_RUN_DIR / "munged.pid")

    def stop(self) -> None:
        """Cancel our jobs, then stop the slurmds, slurmctld (and munged if ours) by PID."""
        ctld_pid = _read_pid(self._pid_files["slurmctld"])
        if ctld_pid and _pid_alive(ctld_pid):
            self.run(["scancel", "--user", str(os.getuid())], check=False)
            try:
                self._wait_until(lambda: not self.run(["squeue", "-h"], check=False).stdout.strip(),
                                 15, "jobs to drain")
            except TimeoutError:
                pass  # best effort; the daemons go anyway
        for daemon in (*self.nodes, "slurmctld"):
            pid = _read_pid(self._pid_files[daemon])
            if pid:
                _kill_and_wait(pid)
        if self._munged_pid:
            _kill_and_wait(self._munged_pid)
            self._munged_pid = None

    def __enter__(self) -> "LocalSlurmCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --------------------------------------------------------------- helpers
    def run(self, args: list[str], cwd: str | os.PathLike[str] | None = None,
            timeout: float = 60.0, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a Slurm client command (srun, squeue, ...) against this cluster; `env` adds
        variables (sbatch passes its environment on to the job)."""
        proc = subprocess.run(args, cwd=cwd, env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def sbatch(self, args: list[str], cwd: str | os.PathLike[str] | None = None,
               env: dict[str, str] | None = None) -> str:
        """Submit with `sbatch --parsable ARGS`; return the job id."""
        return self.run(["sbatch", "--parsable", *args], cwd=cwd, env=env).stdout.strip().split(";")[0]

    def state(self, job_id: str) -> str:
        """The job's current JobState (finished jobs stay visible for MinJobAge=300 s)."""
        out = self.run(["scontrol", "-o", "show", "job", str(job_id)]).stdout
        match = re.search(r"\bJobState=(\S+)", out)
        if not match:
            raise RuntimeError(f"no JobState for job {job_id}: {out!r}")
        return match.group(1)

    def wait(self, job_id: str, timeout: float = 60.0,
             until: Iterable[str] = FINAL_STATES) -> str:
        """Poll until the job reaches one of `until` (default: a final state); return it."""
        wanted = frozenset(until)
        seen: list[str] = []

        def reached() -> bool:
            seen.append(self.state(job_id))
            return seen[-1] in wanted

        try:
            self._wait_until(reached, timeout, f"job {job_id} to reach {sorted(wanted)}")
        except TimeoutError as err:
            detail = self.run(["scontrol", "show", "job", str(job_id)], check=False).stdout
            raise TimeoutError(f"{err}; last state {seen[-1:]}\n{detail}") from None
        return seen[-1]

    def logs(self, tail: int = 40) -> str:
        """Last lines of the daemon logs, for error messages."""
        parts = []
        for name in ("slurmctld.log", *(f"slurmd-{node}.log" for node in self.nodes)):
            path = self.log_dir / name
            text = path.read_text(errors="replace").splitlines()[-tail:] if path.exists() else []
            parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts)

    def _wait_until(self, cond: Callable[[], bool], timeout: float, what: str,
                    interval: float = 0.25) -> None:
        """Poll `cond()` until true; TimeoutError with the daemon logs otherwise."""
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.logs()}")
            time.sleep(interval)
