"""The figures of the README and its guides are what the code gives now, structure exactly and
numbers within the tolerance each page states (scripts/readme_figures.py --check)."""

from __future__ import annotations

import re
import sys

import pytest
from helpers import ROOT, run_script

sys.path.insert(0, str(ROOT / "scripts"))
import readme_figures as rf  # noqa: E402

SWEEP = """| job | data.batch_size | trainer.max_epochs | status | rank | **objective** | val/acc | test/acc | iters/epoch | optimizer steps |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| 0 | 16 | 2 | ok | 3 | 0.9778 | 0.9778 | 0.9815 | 79 | 158 |
| 1 | 16 | 4 | ok | 1 | 0.9889 | 0.9889 | 0.9889 | 79 | 316 |
| 2 | 64 | 2 | ok | 4 | 0.963 | 0.963 | 0.9741 | 20 | 40 |
| 3 | 64 | 4 | ok | 2 | 0.9852 | 0.9852 | 0.9852 | 20 | 80 |
| 4 | 256 | 2 | ok | 6 | 0.5037 | 0.5037 | 0.5778 | 5 | 10 |
| 5 | 256 | 4 | ok | 5 | 0.9111 | 0.9111 | 0.9259 | 5 | 20 |"""  # noqa: E501


def test_every_figure_block_of_the_pages_has_a_maker_and_its_tolerance():
    pages = {p: p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]}
    text = "".join(pages.values())
    opened = re.findall(r"<!-- figures:(\w+) -->", text)
    closed = re.findall(r"<!-- /figures:(\w+) -->", text)
    assert opened == closed and set(opened) == {
        "reference", "budget_plan", "budget_actual", "sweep", "sweep_resume_console",
        "sweep_resume", "sweep_seeds",
    }  # fmt: skip
    for page, content in pages.items():
        for name in re.findall(r"<!-- figures:(\w+) -->", content):
            numbers = rf.DECIMAL.findall(rf.block(name).search(content).group(2))
            if numbers:  # a block with measured numbers says, beside it, how close they must be
                assert rf.stated_tolerance(content, name) == 0.02, (page, name)


def test_numbers_within_the_tolerance_pass_and_structure_is_exact():
    old = "| `python train.py model=cnn` | test accuracy 0.981 (5 epochs) |\n| 1,257 | 32 |"
    assert rf.numbers_differ(old, old.replace("0.981", "0.989"), 0.02) == ([], pytest.approx(0.008))
    for changed in (
        old.replace("0.981", "0.951"),  # beyond the tolerance
        old.replace("(5 epochs)", "(6 epochs)"),  # a count
        old.replace("1,257", "1,258"),
        old.replace("test accuracy", "test acc"),  # the text
        old + "\n| 1 | 2 |",  # a row more
    ):
        assert rf.numbers_differ(old, changed, 0.02)[0], changed


def test_sweep_ranks_and_the_batch_256_claim():
    # as measured with ATEN_CPU_CAPABILITY=avx2: scores moved, job 3 now ranks first
    now = SWEEP.replace(
        "| 1 | 16 | 4 | ok | 1 | 0.9889 | 0.9889 |", "| 1 | 16 | 4 | ok | 3 | 0.9778 | 0.9741 |"
    )
    now = now.replace("| 3 | 64 | 4 | ok | 2 |", "| 3 | 64 | 4 | ok | 1 |")
    now = now.replace("| 0 | 16 | 2 | ok | 3 |", "| 0 | 16 | 2 | ok | 2 |")
    assert rf.sweep_differs(SWEEP, now, 0.02)[0] == []
    # each score within the tolerance, but two jobs now further apart in the other order than
    # the tolerance: their ranks on the page no longer hold
    swapped = SWEEP.replace("| 3 | 64 | 4 | ok | 2 | 0.9852 |", "| 3 | 64 | 4 | ok | 2 | 0.9662 |")
    swapped = swapped.replace(
        "| 0 | 16 | 2 | ok | 3 | 0.9778 |", "| 0 | 16 | 2 | ok | 3 | 0.9968 |"
    )
    assert rf.sweep_differs(SWEEP, swapped, 0.02)[0] == ["rank: job 3 above job 0 no longer holds"]
    # batches of 256 catching up breaks the claim the guide makes
    caught_up = SWEEP.replace("| 0.5037 | 0.5037 |", "| 0.97 | 0.97 |")
    problems, _ = rf.sweep_differs(SWEEP, caught_up, 0.5)
    assert "claim: batches of 256 no longer lag at max_epochs=2" in problems
    # statuses and counts stay exact
    failed = SWEEP.replace("| 5 | 256 | 4 | ok |", "| 5 | 256 | 4 | failed |")
    assert rf.sweep_differs(SWEEP, failed, 0.02)[0]
    assert rf.sweep_differs(SWEEP, SWEEP.replace("| 5 | 20 |", "| 5 | 21 |"), 0.02)[0]


@pytest.mark.slow
def test_readme_figures_match_the_code(tmp_path):
    """With two torch threads: the figures were made with one."""
    args = ["--check", "--threads", "2"]
    out = run_script(args, tmp_path, script="scripts/readme_figures.py", timeout=1500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for name in ("reference", "budget_plan", "budget_actual", "sweep", "sweep_resume_console",
                 "sweep_resume", "sweep_seeds"):  # fmt: skip
        assert re.search(rf"^{name}: \S+ matches", out.stdout, re.M), name
