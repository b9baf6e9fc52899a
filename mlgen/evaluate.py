"""`mlgen-eval ckpt_path=...`: test a checkpoint; model and data come from the config stored inside it."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from mlgen.utils import resolvers  # noqa: F401  (registers ${mlgen_run_id:} etc. before composing)
from mlgen.utils.errors import exit_on_user_error


@hydra.main(version_base="1.3", config_path="pkg://mlgen.conf", config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from mlgen.tasks.evaluate import evaluate
    from mlgen.utils.report import print_result

    print_result(evaluate(cfg), title="mlgen-eval")


if __name__ == "__main__":
    main()
