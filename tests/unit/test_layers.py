"""The import-layering contract of pyproject.toml ([tool.importlinter]) holds, and can fail.

`lint-imports` builds the import graph statically (grimp), function-level imports included, so both
tests take about a second and import nothing of mlgen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# the console script next to this interpreter (the venv's), else the first on PATH
LINT_IMPORTS = shutil.which("lint-imports", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on `project` (its pyproject.toml and its mlgen/), without writing a cache there."""
    env = {**os.environ, "PYTHONPATH": str(project)}  # the copy's mlgen, ahead of the editable install
    assert LINT_IMPORTS, "lint-imports not found: pip install -e '.[test]' installs import-linter"
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=120)


def test_mlgen_imports_only_downward():
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mlgen imports only downward KEPT" in done.stdout
    assert "Contracts: 1 kept, 0 broken." in done.stdout


def test_an_upward_import_or_an_unplaced_module_breaks_the_contract(tmp_path):
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(REPO / "mlgen", tmp_path / "mlgen", ignore=shutil.ignore_patterns("__pycache__"))
    checks = tmp_path / "mlgen" / "config" / "checks.py"
    # a function-level import counts as much as a module-level one
    checks.write_text(checks.read_text() + "\n\ndef _upward() -> None:\n    import mlgen.tasks.train  # noqa: F401\n")
    (tmp_path / "mlgen" / "helpers.py").write_text('"""A new top-level module that no layer names."""\n')

    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "mlgen imports only downward BROKEN" in done.stdout
    assert "mlgen.config.checks -> mlgen.tasks.train" in done.stdout
    assert "not listed as layers:\n\n- mlgen.helpers" in done.stdout  # the contract is exhaustive
