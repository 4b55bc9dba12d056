"""Declared ranges are tested ranges: CI's second environment installs the floor that
pyproject.toml declares for torch, torchvision, Lightning and Optuna, all four together, and
the Python range declared is the one CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from helpers import ROOT

TESTED_FLOORS = ("torch", "torchvision", "lightning", "optuna")


def test_ci_installs_every_declared_floor_together():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for requirement in project["dependencies"]:
        found = re.fullmatch(r"([\w-]+)>=([\d.]+)(,<[\d.]+)?", requirement)
        if found and found[1] in TESTED_FLOORS:
            floors[found[1]] = found[2]
    assert set(floors) == set(TESTED_FLOORS), project["dependencies"]
    ci = (ROOT / ".ci" / "run").read_text()
    (line,) = [line for line in ci.splitlines() if line.startswith("FLOORS=")]
    pins = subprocess.run(
        ["bash", "-c", f"{line}; echo $FLOORS"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert sorted(pins) == sorted(f"{name}=={version}.0" for name, version in floors.items())
    oldest = ci[ci.index("python3 -m venv .venv-oldest") :]
    assert '.venv-oldest/bin/pip install -e ".[dev]" $FLOORS)' in oldest
    tested = oldest[oldest.index("source .venv-oldest/bin/activate") :]  # the fast suite, there
    assert "\npytest\n" in tested


def test_the_declared_python_is_the_tested_one():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.11"
    assert project["tool"]["ruff"]["target-version"] == "py311"
    assert sys.version_info[:2] >= (3, 11)
