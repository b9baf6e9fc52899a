"""A reachable address for DDP's rendezvous on the first node of a Slurm job.

Lightning's SLURMEnvironment uses the first node's *name* as MASTER_ADDR. On clusters (and on test
machines running several slurmd on one host) where only Slurm knows the node names, that name does not
resolve and every rank waits forever, printing c10d warnings. Here the name is kept when it resolves,
else the node's address as Slurm knows it (`scontrol show node` NodeAddr) is used, else the job fails
at once with a message. `python -m mlgen.distributed.rendezvous` prints it for batch scripts.
Written by hand: Lightning has no fallback and Slurm exports no node addresses.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

from mlgen.errors import MLGenError


class RendezvousError(MLGenError):
    """The first node of the job has no address this process can reach."""


def _scontrol(*args: str) -> str:
    try:
        return subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True


def first_node_address(nodelist: str | None = None) -> str:
    """Address of the first node of `nodelist` (default: this job's SLURM_JOB_NODELIST)."""
    nodelist = nodelist or os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST", "")
    hostnames = _scontrol("show", "hostnames", nodelist).split()
    first = hostnames[0] if hostnames else nodelist.split(",")[0]
    if first and _resolves(first):
        return first
    match = re.search(r"\bNodeAddr=(\S+)", _scontrol("-o", "show", "node", first)) if first else None
    if match and _resolves(match.group(1)):
        return match.group(1)
    raise RendezvousError(
        f"MASTER_ADDR: the first node {first!r} of the job's nodes {nodelist!r} has no address here "
        f"(not in DNS or /etc/hosts, and `scontrol show node {first}` gives none that resolves), so DDP's "
        f"ranks could not meet and would wait forever. Fix: export MASTER_ADDR=<address of {first}> in the "
        f"batch script, or ask the cluster admins to make node names resolvable.")


if __name__ == "__main__":
    try:
        print(first_node_address())
    except RendezvousError as err:
        print(f"mlgen error: {err}", file=sys.stderr)
        sys.exit(2)
