"""Decide W&B's mode without ever prompting for a login or blocking on the network."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

_VALID_MODES = ("online", "offline", "disabled", "shared")


def has_credentials() -> bool:
    """An API key in the environment or a netrc entry for the W&B host (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc_path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        hosts = netrc.netrc(str(netrc_path)).hosts
    except (OSError, netrc.NetrcParseError):
        return False
    base_url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    host = base_url.split("://", 1)[-1].split("/", 1)[0]
    return host in hosts


def resolve_wandb_mode() -> str:
    """`WANDB_MODE` always wins (`dryrun` means offline); otherwise online iff credentials exist."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode == "dryrun":
        return "offline"
    if mode in _VALID_MODES:
        return mode
    return "online" if has_credentials() else "offline"


def describe_wandb_mode(mode: str, save_dir: str) -> str:
    """One log line saying which mode W&B runs in and how to upload an offline run later."""
    if mode == "offline":
        return (
            f"W&B is offline (no credentials found or WANDB_MODE=offline); runs are kept in {save_dir}/wandb. "
            f"Upload later with: wandb sync {save_dir}/wandb/offline-run-*"
        )
    if mode == "disabled":
        return "W&B is disabled (WANDB_MODE=disabled); nothing is logged to W&B."
    return f"W&B is online; run files are also kept in {save_dir}/wandb."
