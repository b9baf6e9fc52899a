"""`mlgen-synth`: train on a generator's samples, test on real data (see `mlgen.tasks.synth`)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from mlgen.utils import resolvers  # noqa: F401  (registers ${mlgen_run_id:} etc. before composing)
from mlgen.utils.errors import exit_on_user_error


@hydra.main(version_base="1.3", config_path="pkg://mlgen.conf", config_name="synth")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    from mlgen.tasks.synth import print_report, synth

    report = synth(cfg)
    print_report(report, Path(cfg.paths.output_dir))
    return report.cas_ratio


if __name__ == "__main__":
    main()
