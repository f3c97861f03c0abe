"""The declared linter: ``ruff check`` (configured in pyproject.toml) finds nothing in the
package, the tests or the benchmarks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def ruff() -> list[str]:
    try:
        import ruff as ruff_pkg  # the test extra pins it

        return [ruff_pkg.find_ruff_bin()]
    except (ImportError, FileNotFoundError):
        found = shutil.which("ruff")
        if found is None:
            pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
        return [found]


def test_ruff_finds_nothing():
    cmd = [*ruff(), "check", "--no-cache", "--output-format", "concise", "tinyzero", "tests", "benchmarks"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"ruff check (pyproject.toml [tool.ruff]):\n{done.stdout[-4000:]}{done.stderr[-2000:]}"


def test_ruff_reads_the_projects_rules():
    # the rule set is the project's, not ruff's defaults: an unmarked import inside a package
    # function is a finding (PLC0415 is not a default rule)
    cmd = [*ruff(), "check", "--no-cache", "--stdin-filename", "tinyzero/_probe.py", "-"]
    probe = "def f():\n    import json\n\n    return json\n"
    done = subprocess.run(cmd, input=probe, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "PLC0415" in done.stdout, done.stdout + done.stderr
