"""Read back the W&B tables an offline run logged. W&B (>= 0.2x) writes a table's media (images) only into
the run's `run_table` artifact, staged under WANDB_DATA_DIR until `wandb sync`: the copy in the run's
`files/media/table` names each image just "Image". Tests point WANDB_DATA_DIR into tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers.wandb_runs import OfflineRun


def logged_tables(run: OfflineRun, key: str) -> list[dict[str, Any]]:
    """Every version of table `key` (`{"columns", "data", "files"}`), in logging order; `files` maps each
    media path in the table to its staged file."""
    name = f"run-{run.run['run_id']}-{key.replace('/', '')}"  # W&B appends a hash to a key with a "/"
    tables = []
    for artifact in run.artifacts:
        if artifact["type"] != "run_table" or not (artifact["name"] == name or artifact["name"].startswith(f"{name}-")):
            continue
        files = {entry["path"]: Path(entry["local_path"]) for entry in artifact["manifest"]["contents"]}
        (table_json,) = [path for name_, path in files.items() if name_.endswith(".table.json")]
        tables.append({**json.loads(table_json.read_text()), "files": files})
    return tables
