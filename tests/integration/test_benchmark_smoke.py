"""The throughput benchmark runs end to end in its small mode (CI asserts nothing about speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_small_benchmark_reports_every_case(tmp_path):
    out = tmp_path / "throughput.json"
    subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--small", "--devices", "cpu", "--out", str(out)],
                   cwd=REPO, check=True, timeout=900)
    report = json.loads(out.read_text())
    assert [(r["family"], r["device"]) for r in report["results"]] == [("classifier", "cpu"), ("vae", "cpu"), ("gan", "cpu")]
    for row in report["results"]:
        for case in ("plain_tensors", "plain_dataloader", "mlgen_in_memory", "mlgen_dataloader"):
            assert row[case] > 0, (row["family"], case)
        assert row["in_memory_vs_plain"] == pytest.approx(row["mlgen_in_memory"] / row["plain_tensors"])
        # the bare-Lightning bound exists for the one-optimizer families only
        assert ("lightning_bare" in row) == (row["family"] != "gan"), row["family"]
        assert row.get("lightning_bare", 1.0) > 0
    assert 0 < report["startup"]["help_s"] < report["startup"]["one_step_run_s"]
