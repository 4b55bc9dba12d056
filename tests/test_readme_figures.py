"""The figures of the README and its guides are what the code gives now
(scripts/readme_figures.py --check)."""

from __future__ import annotations

import re

import pytest
from helpers import ROOT, run_script


def test_every_figure_block_of_the_pages_has_a_maker():
    readme = "".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    opened = re.findall(r"<!-- figures:(\w+) -->", readme)
    closed = re.findall(r"<!-- /figures:(\w+) -->", readme)
    assert opened == closed and set(opened) == {
        "reference", "budget_plan", "budget_actual", "sweep", "sweep_resume_console",
        "sweep_resume", "sweep_seeds",
    }  # fmt: skip


@pytest.mark.slow
def test_readme_figures_match_the_code(tmp_path):
    out = run_script(["--check"], tmp_path, script="scripts/readme_figures.py", timeout=1500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for name in ("reference", "budget_plan", "budget_actual", "sweep", "sweep_resume_console",
                 "sweep_resume", "sweep_seeds"):  # fmt: skip
        assert re.search(rf"^{name}: \S+ matches$", out.stdout, re.M), name
