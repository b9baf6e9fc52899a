"""`mlgen-sample ckpt_path=... n=64 [labels=...] out=...`: a PNG grid (and optionally a .pt file) of samples
from any generative checkpoint. Only Hydra is imported at module level so `--help` stays fast."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from mlgen.utils import resolvers  # noqa: F401  (registers ${mlgen_run_id:} etc. before composing)
from mlgen.utils.errors import exit_on_user_error


@hydra.main(version_base="1.3", config_path="pkg://mlgen.conf", config_name="sample")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from mlgen.tasks.sample import sample

    for path in sample(cfg):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
