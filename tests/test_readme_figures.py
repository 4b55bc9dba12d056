"""The README's figures are what the code gives now (scripts/readme_figures.py --check)."""

from __future__ import annotations

import re

import pytest
from helpers import ROOT, run_script


def test_every_figure_block_of_the_readme_has_a_maker():
    readme = (ROOT / "README.md").read_text()
    opened = re.findall(r"<!-- figures:(\w+) -->", readme)
    closed = re.findall(r"<!-- /figures:(\w+) -->", readme)
    assert opened == closed and set(opened) == {
        "reference", "budget_plan", "budget_actual", "sweep"
    }  # fmt: skip


@pytest.mark.slow
def test_readme_figures_match_the_code(tmp_path):
    out = run_script(["--check"], tmp_path, script="scripts/readme_figures.py", timeout=1500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for name in ("reference", "budget_plan", "budget_actual", "sweep"):
        assert f"{name}: README matches" in out.stdout
