"""Lightning's SLURMEnvironment with a first-node address that resolves (see rendezvous.py)."""

from __future__ import annotations

from lightning_fabric.plugins.environments import SLURMEnvironment

from mlgen.distributed.rendezvous import first_node_address


class ResolvableSLURMEnvironment(SLURMEnvironment):
    """Used only when MASTER_ADDR is not set (Lightning reads that first); requeue is mlgen's, so
    Lightning's in-handler auto-requeue is off (see mlgen/distributed/requeue.py)."""

    def __init__(self) -> None:
        super().__init__(auto_requeue=False)

    @staticmethod
    def resolve_root_node_address(nodes: str) -> str:
        return first_node_address(nodes)
