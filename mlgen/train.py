"""`mlgen-train`: compose the config with Hydra, train, print the results, return the objective.

Only Hydra is imported at module level so `mlgen-train --help` and `--cfg job` stay fast.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from mlgen.utils import resolvers  # noqa: F401  (registers ${mlgen_run_id:} etc. before composing)
from mlgen.utils.errors import exit_on_user_error


@hydra.main(version_base="1.3", config_path="pkg://mlgen.conf", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    from mlgen.tasks.train import train
    from mlgen.utils.report import print_result

    result = train(cfg)
    print_result(result, title="mlgen-train")
    return result.objective


if __name__ == "__main__":
    main()
