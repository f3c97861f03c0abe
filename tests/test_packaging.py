"""Packaging checks: dependency lists agree, CI runs the README's test command, imports stay light.

Run: pytest tests/test_packaging.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _normalized(requirements: list[str]) -> dict[str, str]:
    """{canonical name: requirement without the name}, so "PyYAML>=6" == "pyyaml >= 6"."""
    out = {}
    for text in requirements:
        req = Requirement(text)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name not in out, f"{name} listed twice"
        out[name] = f"{sorted(req.extras)}{req.specifier}{req.marker or ''}"
    return out


def test_pyproject_and_environment_yml_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip section"
    pip = [r for r in pip_sections[0] if not r.startswith("-e")]
    assert any(r.startswith("-e") for r in pip_sections[0]), "environment.yml must install the package (-e .)"
    assert _normalized(project["dependencies"] + project["optional-dependencies"]["lora"]) == _normalized(pip)


def readme_test_command() -> str | None:
    """The line after ``# test`` inside a fenced block of README.md (the lead's convention)."""
    in_fence, lines = False, (ROOT / "README.md").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("```"):
            in_fence = not in_fence
        elif in_fence and line.strip() == "# test":
            rest = [next_line.strip() for next_line in lines[i + 1 :] if next_line.strip()]
            return rest[0] if rest and not rest[0].startswith("```") else None
    return None


def test_ci_runs_the_readme_test_command():
    if not (ROOT / "README.md").is_file() or not (ROOT / ".ci" / "run").is_file():
        pytest.skip("README.md or .ci/run not written yet")
    command = readme_test_command()
    assert command, "README.md needs a fenced block with a '# test' line followed by the command"
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines, f".ci/run does not run the README's test command: {command!r}"


def test_imports_stay_light():
    # Reward functions run inside the training loop and the package is imported by notebooks:
    # neither should drag in torch/transformers/datasets just to grade text.
    code = (
        "import sys, tinyzero, tinyzero.tasks, tinyzero.tasks.grading, tinyzero.tasks.countdown, "
        "tinyzero.tasks.multiplication, tinyzero.tasks.rewards, tinyzero.stats, tinyzero.nano.traces, "
        "tinyzero.nano.corpus; "
        "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'trl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
