"""A non-editable install must find the configs: the wheel ships conf/ as `mlgen.conf`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_every_config_and_console_scripts(tmp_path):
    # built from a copy of the tracked files: setuptools reuses a stale ./build, which hid a missing package
    source = tmp_path / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for name in filter(None, tracked.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("mlgen-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"mlgen/conf/{p.relative_to(ROOT / 'conf').as_posix()}" for p in (ROOT / "conf").rglob("*.yaml")}
    assert configs and configs <= names, sorted(configs - names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    for script in ("mlgen-train = mlgen.cli:train", "mlgen-eval = mlgen.cli:evaluate", "mlgen-sample = mlgen.cli:sample",
                   "mlgen-synth = mlgen.cli:synth", "mlgen-plot = mlgen.cli:plot"):
        assert script in scripts
    modules = {p.relative_to(source).as_posix() for p in (source / "mlgen").rglob("*.py")}
    modules -= {p for p in modules if p.startswith("mlgen/tracking/sweeper_plugin/")}  # shipped as hydra_plugins/
    assert modules <= names, sorted(modules - names)  # every subpackage is listed in pyproject.toml
    assert "hydra_plugins/mlgen_sweeper/__init__.py" in names  # where Hydra's plugin scan finds the sweeper


def test_help_lists_config_groups_without_training():
    cli = Path(sys.executable).with_name("mlgen-train")
    out = subprocess.run([str(cli), "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    for group in ("data:", "model:", "trainer:", "logger:", "experiment:"):
        assert group in out
