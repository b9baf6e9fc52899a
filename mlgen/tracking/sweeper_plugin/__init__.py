"""mlgen's Optuna sweeper for Hydra (`hydra/sweeper=mlgen_optuna`): a study that persists in a database,
continues where a stopped sweep left it, takes trials from several workers at once and records pruned
trials as pruned. The loop is in `mlgen/tracking/optuna_sweep.py`; this package is only what Hydra needs
to find it: Hydra instantiates sweepers only from the `hydra_plugins` package.

Without the `sweep` extra (hydra-optuna-sweeper) nothing is defined: an ImportError here would make
Hydra's plugin scan print a warning at every start of every mlgen command.
"""

# No `from __future__ import annotations`: Hydra's plugin scan executes this module before it is in
# sys.modules, where dataclasses look up string annotations (it fails on them; wheel installs only).
import logging
from dataclasses import dataclass
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins

# alembic, which optuna imports, logs a "setup plugin ..." line per plugin at import: noise in every sweep's log
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

try:
    from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:
    OptunaSweeper = None

if OptunaSweeper is not None:

    @dataclass
    class ResumableOptunaSweeperConf(OptunaSweeperConf):
        """hydra-optuna-sweeper's options, with `n_trials` the study's total, plus the heartbeat that tells
        a live worker's running trial from one a stopped worker left behind (Optuna's RDB heartbeat)."""

        _target_: str = "hydra_plugins.mlgen_sweeper.ResumableOptunaSweeper"
        # seconds between heartbeats of each running trial (database storages only)
        heartbeat_interval: int = 60
        # a running trial without a heartbeat for this long is failed (its worker stopped); null: 2 intervals
        grace_period: Optional[int] = None

    class ResumableOptunaSweeper(OptunaSweeper):
        """hydra-optuna-sweeper's sweeper (config, sampler, search space) with mlgen's sweep loop."""

        def __init__(self, heartbeat_interval: int, grace_period: Optional[int], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.heartbeat_interval = heartbeat_interval
            self.grace_period = grace_period

        def sweep(self, arguments: List[str]) -> None:
            from mlgen.errors import exit_on_user_error
            from mlgen.tracking.optuna_sweep import ResumableSweep

            sweep = ResumableSweep(self.sweeper, self.heartbeat_interval, self.grace_period)
            exit_on_user_error(sweep.run)(arguments)  # a config mistake: its message, exit code 2, no traceback

    ConfigStore.instance().store(group="hydra/sweeper", name="mlgen_optuna", node=ResumableOptunaSweeperConf,
                                 provider="mlgen")


def register() -> None:
    """Make the sweeper known to Hydra where its scan of `hydra_plugins` cannot see this package (setuptools'
    editable installs map it through an import hook that the scan does not walk). mlgen's entry points call it."""
    if OptunaSweeper is not None:
        Plugins.instance().register(ResumableOptunaSweeper)
