"""A CPU run on a CUDA build of torch makes no GPU probe per optimizer step (mlgen/tasks/gpu_probes.py).

Each case runs in a fresh interpreter, as a run does: Lightning's import sets PYTORCH_NVML_BASED_CUDA_CHECK,
and CUDA_VISIBLE_DEVICES set there must not leak into the test process. A probe is counted as a
`ctypes.CDLL` load (torch's NVML query opens libnvidia-ml.so.1 through it on every call).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

PROBE = """
import ctypes, json, os
import pytorch_lightning, torch  # Lightning's import sets PYTORCH_NVML_BASED_CUDA_CHECK=1
from mlgen.tasks.gpu_probes import hide_absent_gpus
loads = []
class CountingCDLL(ctypes.CDLL):
    def __init__(self, name, *args, **kwargs):
        loads.append(name)
        super().__init__(name, *args, **kwargs)
ctypes.CDLL = CountingCDLL
weight = torch.nn.Parameter(torch.zeros(3))
weight.grad = torch.ones(3)
optimizer = torch.optim.AdamW([weight])
def probes_in_5_steps():
    loads.clear()
    for _ in range(5):
        optimizer.step()
    return len(loads)
before = probes_in_5_steps()
hide_absent_gpus()
print(json.dumps({"before": before, "after": probes_in_5_steps(), "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
                  "cuda_available": torch.cuda.is_available()}))
"""


def _probe() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "PYTORCH_NVML_BASED_CUDA_CHECK")}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_cpu_run_on_a_cuda_build_stops_probing_for_gpus_at_every_optimizer_step():
    """On CI's machine (a CUDA build of torch, no GPU) the probe is there and goes; elsewhere nothing changes."""
    result = _probe()
    if torch.version.cuda is None:  # a CPU build of torch never probes: nothing to hide
        assert result == {"before": 0, "after": 0, "visible": None, "cuda_available": False}
        return
    if torch.cuda.device_count() > 0:  # a GPU machine: its GPUs stay visible
        assert result["visible"] is None and result["cuda_available"] is True, result
        return
    assert result["before"] >= 5, result  # the control: without the fix every step loads NVML (or tries to)
    assert result["after"] == 0, result
    assert result["visible"] == "" and result["cuda_available"] is False


def test_gpus_that_torch_sees_stay_visible():
    """On any machine: where torch counts a GPU (faked here), the environment is left alone."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    code = ("import os, torch; torch.version.cuda = torch.version.cuda or '12'; torch.cuda.device_count = lambda: 1\n"
            "from mlgen.tasks.gpu_probes import hide_absent_gpus\nhide_absent_gpus()\n"
            "import json; print(json.dumps({'visible': os.environ.get('CUDA_VISIBLE_DEVICES')}))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"visible": None}  # an unconditional hide fails here
