"""OmegaConf resolvers that configs use; registered on import, before Hydra composes.

They bind config interpolations to `mlgen.distributed` (run ids, Slurm layout) and `mlgen.tracking`
(W&B mode), so this module sits above both, next to the entry points, not in `mlgen.config`.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from mlgen.data.tabular_resolver import table_fact
from mlgen.distributed import slurm
from mlgen.distributed.run_id import if_rank_zero, run_dir, run_id, wandb_run_id
from mlgen.tracking.wandb_mode import resolve_wandb_mode


def register() -> None:
    """Register mlgen's resolvers (idempotent)."""
    resolvers = {
        "mlgen_run_id": run_id,
        "mlgen_run_dir": run_dir,  # a resumed training run continues in its checkpoint's run dir
        "mlgen_wandb_mode": resolve_wandb_mode,  # never prompts: WANDB_MODE wins, else online iff credentials
        "mlgen_wandb_run_id": wandb_run_id,
        "mlgen_if_rank_zero": if_rank_zero,
        "mlgen_slurm_tasks_per_node": slurm.tasks_per_node,
        "mlgen_slurm_nodes": slurm.num_nodes,
        "mlgen_table": table_fact,  # a table's encoded width and class count (data/tabular_resolver.py)
    }
    for name, func in resolvers.items():
        if not OmegaConf.has_resolver(name):
            # mlgen_run_id is cached: Hydra copies the cache into each job's config of a multirun,
            # so a job that a launcher runs elsewhere (a submitit Slurm job) keeps the sweep dir.
            OmegaConf.register_new_resolver(name, func, use_cache=name in ("mlgen_run_id", "mlgen_run_dir"))


register()
