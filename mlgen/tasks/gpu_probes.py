"""No GPU probe at every optimizer step of a CPU run on a CUDA build of PyTorch.

Importing Lightning sets `PYTORCH_NVML_BASED_CUDA_CHECK=1` (lightning_fabric/__init__.py), so that
`torch.cuda.is_available()` asks NVML instead of initialising CUDA (fork safety). torch's optimizers ask it
at every `step()` (`Optimizer._accelerator_graph_capture_health_check`), and on a machine without an NVIDIA
driver each answer is a failed dlopen of libnvidia-ml.so.1 plus a CUDA runtime query: about 0.1 ms per
optimizer step on the 2-core CI machine, about 2 % of a small MLP's step (README.md, "Speed"), and
more where the dynamic loader searches a long LD_LIBRARY_PATH (a cluster's module system). PyPI's default
Linux wheel is a CUDA build, so this is what a CPU node gets. Until CUDA is initialised neither torch nor
Lightning caches the answer; with an empty `CUDA_VISIBLE_DEVICES` torch answers "no GPU" from the variable
alone, still without initialising CUDA. Written by hand: no library offers it.
"""

from __future__ import annotations

import os

import torch


def hide_absent_gpus() -> None:
    """Set `CUDA_VISIBLE_DEVICES=""` where a CUDA build of torch sees no GPU at all (so no answer changes,
    for this process or the ones it starts); leave everything as it is where a GPU is visible."""
    if torch.version.cuda is None or os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return
    if torch.cuda.device_count() == 0:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
