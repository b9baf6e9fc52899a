"""A checkpoint is untrusted input: one whose stored config or hyper-parameters name a payload is
refused by every entry point before anything is built, and the payload's side effect never happens.

The crafted checkpoints are pickle-free (plain dicts and tensors, loadable with weights_only=True):
only the `_target_`s inside could run code. Trusted by name, each payload either runs (so the refusal is
what stops it) or is the kind that Hydra's own instantiate blocklist also stops (a second line of defence:
Hydra calls it best effort, and it lets file writes and unpickling loaders through).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from mlgen.checkpoints.allowlist import UntrustedCheckpointError, is_allowed, trusting
from mlgen.checkpoints.load import load_model
from mlgen.config.instantiate import instantiate_datamodule, instantiate_model
from mlgen.errors import MLGenError
from tests.faults.cli import run_cli
from tests.helpers.config import CPU_QUICK, compose_config

REFUSED = 2  # mlgen's exit code for bad input


class _Pickled:
    """Unpickling this runs `touch <mark>`: what `torch.load(weights_only=False)` or `numpy.load(allow_pickle=True)` of
    an attacker's file does."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.mark}",)


def _payloads(tmp: Path) -> dict[str, tuple[dict[str, Any], Callable[[], bool]]]:
    """name -> (config node, whether its side effect happened)."""
    mark = tmp / "pwned"
    victim = tmp / "victim"
    victim.mkdir(exist_ok=True)
    torch.save(_Pickled(mark), tmp / "evil.pt")
    np.save(tmp / "evil.npy", np.array([_Pickled(mark)], dtype=object), allow_pickle=True)
    marked = mark.exists
    return {
        "os.system": ({"_target_": "os.system", "_args_": [f"touch {mark}"]}, marked),
        "subprocess.run": ({"_target_": "subprocess.run", "_args_": [["touch", str(mark)]]}, marked),
        "subprocess.Popen": ({"_target_": "subprocess.Popen", "_args_": [["touch", str(mark)]]}, marked),
        "builtins.exec": ({"_target_": "builtins.exec", "_args_": [f"open({str(mark)!r}, 'w').close()"]}, marked),
        "builtins.eval": ({"_target_": "builtins.eval", "_args_": [f"__import__('pathlib').Path({str(mark)!r}).touch()"]}, marked),
        "pathlib.Path.write_text": ({"_target_": "pathlib.Path.write_text",
                                     "_args_": [{"_target_": "pathlib.Path", "_args_": [str(mark)]}, "x"]}, marked),
        "shutil.rmtree": ({"_target_": "shutil.rmtree", "_args_": [str(victim)]}, lambda: not victim.exists()),
        "torch.load": ({"_target_": "torch.load", "f": str(tmp / "evil.pt"), "weights_only": False}, marked),
        "numpy.load": ({"_target_": "numpy.load", "file": str(tmp / "evil.npy"), "allow_pickle": True}, marked),
        "omegaconf.OmegaConf.save": ({"_target_": "omegaconf.OmegaConf.save", "config": {"pwned": 1}, "f": str(mark)}, marked),
        "shutil.copyfile": ({"_target_": "shutil.copyfile", "src": str(tmp / "evil.npy"), "dst": str(mark)}, marked),
    }


# Payloads that run when nothing but Hydra stands in the way (file writes, unpickling loaders), and payloads
# that Hydra's own blocklist stops too (processes, string evaluation, deletions).
LIVE_PAYLOADS = ["pathlib.Path.write_text", "shutil.copyfile", "torch.load", "numpy.load", "omegaconf.OmegaConf.save"]
HYDRA_BLOCKED_PAYLOADS = ["os.system", "subprocess.run", "subprocess.Popen", "builtins.exec", "builtins.eval", "shutil.rmtree"]


def _targets(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [t for t in [node.get("_target_")] if isinstance(t, str)] + [t for v in node.values() for t in _targets(v)]
    if isinstance(node, list):
        return [t for v in node for t in _targets(v)]
    return []


def _craft(source: Path, out: Path, where: str, node: Any) -> Path:
    """A copy of the checkpoint `source` with `node` at the dotted key path `where` (e.g. hyper_parameters.net.hidden)."""
    checkpoint = torch.load(source, weights_only=True)
    *parents, last = where.split(".")
    parent = checkpoint
    for key in parents:
        parent = parent[key]
    parent[last] = copy.deepcopy(node)
    torch.save(checkpoint, out)
    torch.load(out, weights_only=True)  # pickle-free: only the config inside could do harm
    return out


# Nested as an argument of the real net, the payload is instantiated by Hydra's recursion in __init__.
IN_HPARAMS = "hyper_parameters.net.hidden"


def _evil_checkpoint(source: Path, tmp_path: Path, kind: str, where: str = IN_HPARAMS) -> tuple[Path, Callable[[], bool]]:
    """`source` with the payload `kind` at `where`, and whether its side effect happened."""
    node, happened = _payloads(tmp_path)[kind]
    return _craft(source, tmp_path / "evil.ckpt", where, node), happened


def _happened_after(happened: Callable[[], bool], wait: float = 0.0) -> bool:
    deadline = time.monotonic() + wait  # subprocess.Popen's child touches the mark a moment later
    while not happened() and time.monotonic() < deadline:
        time.sleep(0.05)
    return happened()


@pytest.mark.parametrize("kind", LIVE_PAYLOADS + HYDRA_BLOCKED_PAYLOADS)
def test_payload_is_refused_and_never_runs(kind, digits_checkpoint, tmp_path):
    node, happened = _payloads(tmp_path)[kind]
    path = _craft(digits_checkpoint, tmp_path / "evil.ckpt", IN_HPARAMS, node)
    with pytest.raises(UntrustedCheckpointError) as refused:
        load_model(path)
    assert f"{IN_HPARAMS}._target_ is {kind!r}" in str(refused.value)
    assert f"trusted_targets=[{kind}]" in str(refused.value)
    assert not _happened_after(happened, wait=0.5 if kind == "subprocess.Popen" else 0)
    # the same checkpoint, trusted by name: a live payload runs (the net then fails on its return value)
    with trusting(_targets(node)), pytest.raises(Exception) as trusted:
        load_model(path)
    if kind in LIVE_PAYLOADS:
        assert _happened_after(happened, wait=5)
    else:
        assert "blocklisted" in str(trusted.value) and not happened()


@pytest.mark.parametrize("where, node, shown", [
    ("mlgen_config.model._target_", "subprocess.Popen", "mlgen_config.model._target_ is 'subprocess.Popen'"),
    ("hyper_parameters.net._partial_", True, "hyper_parameters.net._partial_ is True"),
    ("hyper_parameters.optimizer._args_", [{"_target_": "os.getcwd"}], "hyper_parameters.optimizer._args_"),
    ("hyper_parameters.net.hidden", [256, {"_target_": "os.getcwd"}], "hyper_parameters.net.hidden[1]._target_ is 'os.getcwd'"),
    ("hyper_parameters.net._target_", ["os.system"], "hyper_parameters.net._target_ is ['os.system']"),
    ("hyper_parameters.net._target_", 7, "hyper_parameters.net._target_ is 7"),
    ("hyper_parameters._instantiator", "os.system", "hyper_parameters._instantiator is 'os.system'"),
    ("hparams", {"net": {"_target_": "os.getcwd"}}, "hparams.net._target_ is 'os.getcwd'"),
    ("hyper_parameters.net.dropout", "${oc.env:HOME}", "hyper_parameters.net.dropout is '${oc.env:HOME}'"),
    ("mlgen_config.data.root", {"_target_": "mlgen.data.synthetic.os.system"}, "'mlgen.data.synthetic.os.system'"),
    ("hyper_parameters.optimizer._target_", "torch.optim.adam.torch.load", "'torch.optim.adam.torch.load'"),
    ("hyper_parameters.net._target_", "torch.optim.swa_utils.AveragedModel", "'torch.optim.swa_utils.AveragedModel'"),
])
def test_target_tricks_are_refused(where, node, shown, digits_checkpoint, tmp_path):
    path = _craft(digits_checkpoint, tmp_path / "evil.ckpt", where, node)
    with pytest.raises(UntrustedCheckpointError, match="was refused") as refused:
        load_model(path)
    assert shown in str(refused.value)


def test_a_trust_list_stored_in_the_checkpoint_is_ignored(digits_checkpoint, tmp_path):
    path, happened = _evil_checkpoint(digits_checkpoint, tmp_path, "torch.load")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["mlgen_config"]["trusted_targets"] = ["torch.load"]
    torch.save(checkpoint, path)
    with pytest.raises(UntrustedCheckpointError, match="'torch.load'"):
        load_model(path)
    assert not happened()


def test_allowlist_covers_every_shipped_config(tmp_path):
    """Every _target_ of every experiment and model/data/callback/logger choice is allowed (hydra's own node excluded:
    it is never stored in a checkpoint)."""
    conf = Path(__file__).resolve().parents[2] / "conf"
    runs = [[f"experiment={p.stem}"] for p in sorted((conf / "experiment").glob("*.yaml"))]
    for group in ("model", "data", "callbacks", "logger", "trainer"):
        runs += [[f"{group}={p.stem}"] for p in sorted((conf / group).glob("*.yaml"))]
    runs += [["data=synthetic", "data.generator_ckpt=x"]]
    seen: set[str] = set()
    for overrides in runs:
        cfg = compose_config("train", overrides, tmp_path / "cfg")
        container = OmegaConf.to_container(cfg, resolve=False)
        container.pop("hydra")
        seen |= set(_targets(container))
    refused = sorted(t for t in seen if not is_allowed(t))
    assert not refused
    assert {"torch.optim.Adam", "mlgen.models.gan.GAN", "mlgen.data.mnist.MNISTDataModule", "pytorch_lightning.Trainer"} <= seen


def test_legit_checkpoint_loads_and_outside_classes_need_trust(digits_checkpoint, tmp_path):
    model, _ = load_model(digits_checkpoint)
    assert type(model).__name__ == "Classifier"
    outside = "tests.faults.trusted_net.OutsideNet"
    path = _craft(digits_checkpoint, tmp_path / "outside.ckpt", "hyper_parameters.net._target_", outside)
    with pytest.raises(UntrustedCheckpointError, match=f"trusted_targets=\\[{outside}\\]"):
        load_model(path)
    with trusting([outside]):
        trusted, _ = load_model(path)
    assert type(trusted.net).__name__ == "OutsideNet"
    assert torch.equal(trusted.net.head.weight, model.net.head.weight)


def _refused_cli(proc, key: str, target: str, happened: Callable[[], bool]) -> None:
    assert proc.returncode == REFUSED, proc.stderr[-3000:]
    assert "was refused" in proc.stderr and f"{key} is {target!r}" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert not _happened_after(happened, wait=0.3)


def test_mlgen_eval_refuses_payload_in_stored_config(digits_checkpoint, tmp_path):
    path, happened = _evil_checkpoint(digits_checkpoint, tmp_path, "omegaconf.OmegaConf.save", "mlgen_config.data.root")
    proc = run_cli("eval", [f"ckpt_path={path}", "trainer=cpu", "trainer.enable_progress_bar=false"], tmp_path)
    _refused_cli(proc, "mlgen_config.data.root._target_", "omegaconf.OmegaConf.save", happened)


@pytest.mark.slow  # two CLI runs
def test_mlgen_eval_trusted_targets_lets_a_trusted_checkpoint_through(digits_checkpoint, tmp_path):
    outside = "tests.faults.trusted_net.OutsideNet"
    path = _craft(digits_checkpoint, tmp_path / "outside.ckpt", "hyper_parameters.net._target_", outside)
    args = [f"ckpt_path={path}", "trainer=cpu", "trainer.enable_progress_bar=false"]
    refused = run_cli("eval", args, tmp_path)
    assert refused.returncode == REFUSED and f"trusted_targets=[{outside}]" in refused.stderr, refused.stderr[-3000:]
    trusted = run_cli("eval", [*args, f"trusted_targets=[{outside}]"], tmp_path)
    assert trusted.returncode == 0, trusted.stderr[-3000:]
    assert "test/acc" in trusted.stdout


def test_mlgen_sample_refuses_payload_in_hyperparameters(digits_checkpoint, tmp_path):
    path, happened = _evil_checkpoint(digits_checkpoint, tmp_path, "torch.load")
    proc = run_cli("sample", [f"ckpt_path={path}", f"out={tmp_path / 'grid.png'}"], tmp_path)
    _refused_cli(proc, f"{IN_HPARAMS}._target_", "torch.load", happened)
    assert not (tmp_path / "grid.png").exists()


def test_mlgen_synth_refuses_payload_generator_before_training(digits_checkpoint, tmp_path):
    path, happened = _evil_checkpoint(digits_checkpoint, tmp_path, "shutil.copyfile")
    proc = run_cli("synth", [f"generator_ckpt={path}", *CPU_QUICK, "trainer.max_epochs=1"], tmp_path)
    _refused_cli(proc, f"{IN_HPARAMS}._target_", "shutil.copyfile", happened)
    assert not list((tmp_path / "logs").rglob("*.ckpt"))  # no arm trained


def test_mlgen_train_refuses_to_resume_from_payload_checkpoint(digits_checkpoint, tmp_path):
    path, happened = _evil_checkpoint(digits_checkpoint, tmp_path, "pathlib.Path.write_text", "mlgen_config.model.net.hidden")
    proc = run_cli("train", [f"ckpt_path={path}", *CPU_QUICK, "trainer.max_epochs=2"], tmp_path)
    _refused_cli(proc, "mlgen_config.model.net.hidden._target_", "pathlib.Path.write_text", happened)
    assert not list((tmp_path / "logs").rglob("*.ckpt"))


def test_synthetic_data_refuses_payload_generator(digits_checkpoint, tmp_path):
    path, happened = _evil_checkpoint(digits_checkpoint, tmp_path, "numpy.load")
    cfg = compose_config("train", ["data=synthetic", f"data.generator_ckpt={path}"], tmp_path / "run")
    datamodule = instantiate_datamodule(cfg.data)
    with pytest.raises(UntrustedCheckpointError, match=f"{IN_HPARAMS}._target_ is 'numpy.load'"):
        datamodule.prepare_data()
    assert not happened()


def test_feature_ckpt_refuses_payload_classifier(digits_checkpoint, tmp_path):
    path, happened = _evil_checkpoint(digits_checkpoint, tmp_path, "pathlib.Path.write_text")
    cfg = compose_config("train", ["experiment=digits_cgan", f"model.metrics.feature_ckpt={path}"], tmp_path / "run")
    model = instantiate_model(cfg.model)
    with pytest.raises(MLGenError, match=f"{IN_HPARAMS}._target_ is 'pathlib.Path.write_text'"):
        model.setup("fit")  # where the GAN reads its feature extractor
    assert not happened()
