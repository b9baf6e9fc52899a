"""Installing mlgen keeps an environment's own supported torch; `-c constraints.txt` installs the exact pair.

On a cluster torch comes from a module or the user's own CUDA build, so pyproject.toml declares a range
and constraints.txt pins the pair CI runs. The other supported torch here is 2.13.0, a CPU build on local
disk. Everything runs offline: pip reads only the local wheel sources of its own configuration (find-links,
file:// indexes), and as root it runs in a network namespace with no network at all. Each venv holds torch
2.13.0 in its own site-packages and sees every other package of the running environment through a .pth
(symlinks, minus torch, torchvision and mlgen), so pip only has torch, torchvision and mlgen to decide.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
OTHER_TORCH = "2.13.0"  # the lowest torch pyproject.toml declares
PAIRED_TORCHVISION = "0.28.0"  # the torchvision release built for it
SMOKE = Path(__file__).with_name("torch_floor_smoke.py")

pytestmark = pytest.mark.slow


def _pinned(name: str) -> str:
    """The version constraints.txt pins for `name`."""
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#") and Requirement(line).name == name:
            (spec,) = Requirement(line).specifier
            assert spec.operator == "==", line
            return spec.version
    raise AssertionError(f"constraints.txt pins no {name}")


def _local_sources() -> list[str]:
    """pip options naming only the local wheel sources of pip's configuration (never a network index)."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            check=True).stdout
    indexes: list[str] = []
    links: list[str] = []
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        option = key.rsplit(".", 1)[-1]
        for item in value.strip("'\"").split():
            if option in ("index-url", "extra-index-url") and item.startswith("file:"):
                indexes.append(item)
            elif option == "find-links" and (item.startswith("file:") or Path(item).is_dir()):
                links.append(item)
    args = ["--index-url", indexes[0]] if indexes else ["--no-index"]
    for url in dict.fromkeys(indexes[1:]):
        args += ["--extra-index-url", url]
    for link in dict.fromkeys(links):
        args += ["--find-links", link]
    return args


@functools.cache
def _no_network() -> list[str]:
    """As root: a fresh network namespace, so any download attempt fails instead of happening."""
    if os.geteuid() == 0 and shutil.which("unshare") and subprocess.run(["unshare", "--net", "true"], check=False).returncode == 0:
        return ["unshare", "--net"]
    return []


def _pip(python: Path | None, *args: str) -> subprocess.CompletedProcess:
    """The running environment's pip, for `python`'s environment, reading no pip configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    target = ["--python", str(python)] if python else []
    return subprocess.run([*_no_network(), sys.executable, "-m", "pip", *target, *args],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def _check(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-6000:]
    return done


def _top_level_entries(name: str) -> set[str]:
    try:
        files = distribution(name).files or []
    except PackageNotFoundError:
        return set()
    return {f.parts[0] for f in files if f.parts[0] != ".."}


@pytest.fixture(scope="module")
def sources() -> list[str]:
    return _local_sources()


@pytest.fixture(scope="module")
def other_torch(tmp_path_factory, sources) -> Path:
    """torch 2.13.0 unpacked once from the local wheel; each venv gets a hard-linked copy of it."""
    target = tmp_path_factory.mktemp("torch-other")
    done = _pip(None, "install", "--no-deps", "--target", str(target), f"torch=={OTHER_TORCH}", *sources)
    if "No matching distribution" in done.stderr:
        pytest.skip(f"torch {OTHER_TORCH} is not among this machine's local wheels ({' '.join(sources)}); "
                    "tests download nothing")
    _check(done)
    return target


@pytest.fixture(scope="module")
def shared_packages(tmp_path_factory) -> Path:
    """The running environment's packages as symlinks, without torch, torchvision and mlgen."""
    site = Path(sysconfig.get_paths()["purelib"])
    left_out = _top_level_entries("torch") | _top_level_entries("torchvision") | _top_level_entries("mlgen")
    folder = tmp_path_factory.mktemp("shared")
    for entry in site.iterdir():
        if entry.name not in left_out:
            (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture
def venv(tmp_path, other_torch, shared_packages) -> Path:
    """A venv holding torch 2.13.0 (no torchvision, no mlgen); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for entry in other_torch.iterdir():  # hard links: no second 760 MB copy
        if entry.is_dir() and entry.name != "bin":
            shutil.copytree(entry, site / entry.name, copy_function=os.link)
        elif entry.is_file():
            os.link(entry, site / entry.name)
    (site / "zz_shared_packages.pth").write_text(f"import site; site.addsitedir({str(shared_packages)!r})\n")
    assert _versions(python) == {"torch": f"{OTHER_TORCH}+cpu", "torchvision": None}
    return python


def _versions(python: Path) -> dict[str, str | None]:
    """torch and torchvision as `python`'s environment sees them."""
    code = ("import json, importlib.metadata as m\n"
            "def v(n):\n try: return m.version(n)\n except m.PackageNotFoundError: return None\n"
            "print(json.dumps({n: v(n) for n in ('torch', 'torchvision')}))")
    return json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout)


def _install(python: Path, report: Path, *args: str, sources: list[str], dry_run: bool = True) -> dict[str, dict]:
    """What `pip install` installs (or would), by name, from pip's JSON report."""
    _check(_pip(python, "install", *(["--dry-run"] if dry_run else []), "--report", str(report), *args, *sources))
    return {item["metadata"]["name"]: item["metadata"] for item in json.loads(report.read_text())["install"]}


def test_environment_with_torch_and_torchvision_keeps_both(venv, tmp_path, sources):
    """A cluster environment with a supported pair: a real `pip install -e .` adds mlgen and nothing else."""
    _check(_pip(venv, "install", "--no-deps", f"torchvision=={PAIRED_TORCHVISION}", *sources))
    installed = _install(venv, tmp_path / "report.json", "-e", str(ROOT), sources=sources, dry_run=False)
    assert set(installed) == {"mlgen"}
    assert _versions(venv) == {"torch": f"{OTHER_TORCH}+cpu", "torchvision": PAIRED_TORCHVISION}


def test_named_torch_is_kept_and_gets_its_torchvision(venv, tmp_path, sources):
    """The README's command for an environment that has torch only: pip keeps it and pairs torchvision."""
    installs = _install(venv, tmp_path / "report.json", "-e", str(ROOT), f"torch=={OTHER_TORCH}+cpu", sources=sources)
    assert "torch" not in installs
    assert installs["torchvision"]["version"] == PAIRED_TORCHVISION
    assert set(installs) == {"mlgen", "torchvision"}


def test_constraints_install_exactly_the_pinned_pair(venv, tmp_path, sources):
    installs = _install(venv, tmp_path / "report.json", "-c", str(ROOT / "constraints.txt"), "-e", str(ROOT),
                        sources=sources)
    assert installs["torch"]["version"] == _pinned("torch")
    assert installs["torchvision"]["version"] == _pinned("torchvision")
    # mlgen's declared range (the metadata pip read) admits both pairs, and its floor is the torch tested here
    declared = {Requirement(r).name: Requirement(r).specifier for r in installs["mlgen"]["requires_dist"]}
    assert declared["torch"].contains(_pinned("torch")) and declared["torch"].contains(OTHER_TORCH)
    assert declared["torchvision"].contains(_pinned("torchvision")) and declared["torchvision"].contains(PAIRED_TORCHVISION)
    assert not declared["torch"].contains("2.12.1")


def test_training_runs_on_the_lowest_supported_torch(venv, tmp_path, sources):
    """A compiled net matches eager, a classifier learns, a GAN keeps an EMA generator, checkpoints load with weights_only."""
    _check(_pip(venv, "install", "--no-deps", "--no-build-isolation", "-e", str(ROOT), *sources))
    out = tmp_path / "runs"
    out.mkdir()
    done = subprocess.run([str(venv), str(SMOKE), str(out)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=400, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")})
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["torch"] == f"{OTHER_TORCH}+cpu"
    assert result["compiled_vs_eager"] < 1e-5  # inf when the net was not compiled
    assert result["checkpoint_matches"] and result["gan_checkpoint_has_ema"]
    assert result["val_acc"] > 0.8  # 10 classes: chance is 0.1
    assert 0 < result["ema_generator_gap"] < 0.5  # the EMA copy moved with the generator, lagging behind
