"""The speed options of issue 8 work on CPU: bf16 autocast, torch.compile, channels-last, progress bar."""

from __future__ import annotations

import pytest
import torch

from mlgen.checkpoints.load import load_checkpoint
from mlgen.config.instantiate import instantiate_model
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config


def _weights(result):
    return load_checkpoint(result.output_dir / "checkpoints" / "last.ckpt")["state_dict"]


def test_bf16_mixed_precision_trains_with_float32_weights(tmp_path):
    result = train(compose_config("train", [*CPU_QUICK, "trainer.precision=bf16-mixed", "trainer.max_epochs=5"], tmp_path / "run"))
    assert result.metrics["test/acc"] >= 0.85, result.metrics
    assert all(w.dtype == torch.float32 for w in _weights(result).values() if w.is_floating_point())


def test_channels_last_conv_net_gives_the_same_outputs_and_gradients():
    from mlgen.nets.conv import ConvClassifierNet

    torch.manual_seed(0)
    net = ConvClassifierNet(shape=(1, 28, 28), num_classes=10, dropout=0.0)  # no random masks
    fast = ConvClassifierNet(shape=(1, 28, 28), num_classes=10, dropout=0.0).to(memory_format=torch.channels_last)
    fast.load_state_dict(net.state_dict())
    x = torch.randn(16, 1, 28, 28)
    out, out_fast = net(x), fast(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out_fast, out, rtol=1e-4, atol=1e-5)
    out.square().sum().backward()
    out_fast.square().sum().backward()
    for (name, p), p_fast in zip(net.named_parameters(), fast.parameters()):
        torch.testing.assert_close(p_fast.grad, p.grad, rtol=1e-3, atol=1e-5, msg=lambda m: f"{name}: {m}")


def test_channels_last_training_run_learns_with_channels_last_weights(tmp_path):
    result = train(compose_config("train", [*CPU_QUICK, "model=classifier_cnn", "model.channels_last=true",
                                            "trainer.max_epochs=3"], tmp_path / "run"))
    assert result.metrics["test/acc"] >= 0.8, result.metrics
    conv = next(w for w in _weights(result).values() if w.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)


def test_compile_option_compiles_every_net_in_place(tmp_path):
    model = instantiate_model(compose_config("train", [*CPU_QUICK, "model.compile=true"], tmp_path / "run").model)
    model.configure_model()
    assert model.nets() == [model.net] and model.net._compiled_call_impl is not None


@pytest.mark.slow
def test_compiled_net_learns_and_its_checkpoint_loads_uncompiled(tmp_path):
    result = train(compose_config("train", [*CPU_QUICK, "model.compile=true", "trainer.max_epochs=3"], tmp_path / "run"))
    assert result.metrics["test/acc"] >= 0.9, result.metrics
    weights = _weights(result)
    assert not any("_orig_mod" in name for name in weights)  # the same keys as an eager checkpoint
    eager = instantiate_model(compose_config("train", CPU_QUICK, tmp_path / "eager").model)
    eager.load_state_dict(weights)


def test_default_progress_bar_refreshes_every_10_steps_on_a_terminal(tmp_path, monkeypatch):
    from pytorch_lightning.callbacks import TQDMProgressBar

    from mlgen.tasks.common import build_trainer
    from mlgen.tracking.progress import LogLineProgress

    cfg = compose_config("train", ["trainer=cpu", "logger=csv"], tmp_path / "run")
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    bar = build_trainer(cfg).progress_bar_callback
    assert isinstance(bar, TQDMProgressBar) and bar.refresh_rate == 10
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)  # a file or pipe: plain lines, no redraws
    assert isinstance(build_trainer(cfg).progress_bar_callback, LogLineProgress)


def test_channels_last_option_converts_weights_and_inputs_of_every_net(tmp_path):
    model = instantiate_model(compose_config("train", [*CPU_QUICK, "model=classifier_cnn", "model.channels_last=true"], tmp_path / "run").model)
    model.configure_model()
    seen = []
    model.net.features.register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    model(torch.randn(4, 1, 8, 8))
    assert seen == [True]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in model.parameters() if w.dim() == 4)
