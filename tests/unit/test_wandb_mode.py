"""W&B mode never prompts: WANDB_MODE wins, else online only with credentials."""

from __future__ import annotations

import pytest

from mlgen.tracking.wandb_mode import describe_wandb_mode, resolve_wandb_mode


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))


def test_offline_without_credentials(no_credentials):
    assert resolve_wandb_mode() == "offline"


def test_online_with_api_key(no_credentials, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode() == "online"


def test_online_with_netrc_entry_for_the_wandb_host(no_credentials, tmp_path):
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    (tmp_path / "netrc").chmod(0o600)
    assert resolve_wandb_mode() == "online"


@pytest.mark.parametrize(("env", "mode"), [("offline", "offline"), ("dryrun", "offline"), ("disabled", "disabled"), ("online", "online")])
def test_wandb_mode_env_always_wins(no_credentials, monkeypatch, env, mode):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", env)
    assert resolve_wandb_mode() == mode


def test_offline_message_says_how_to_sync():
    line = describe_wandb_mode("offline", "/runs/a")
    assert "offline" in line and "wandb sync /runs/a/wandb/offline-run-*" in line
