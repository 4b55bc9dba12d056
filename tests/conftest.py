"""Fixtures: compose the real Hydra config and train in-process (no subprocess: the
torch/Lightning import is paid once per test session). Plain helpers are in helpers.py."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from helpers import QUIET, make_cfg
from hydra.core.global_hydra import GlobalHydra


@pytest.fixture
def compose_cfg(tmp_path: Path):
    def _compose(overrides: list[str], run_dir: str = "run", config_name: str = "train"):
        return make_cfg(overrides, tmp_path / run_dir, config_name)

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture
def run_train(compose_cfg):
    """Train in-process with the given overrides; returns (summary, run_dir)."""
    from trainkit.training import train

    def _run(overrides: list[str], run_dir: str = "run") -> tuple[dict, Path]:
        cfg = compose_cfg([*QUIET, *overrides], run_dir)
        summary = train(cfg)
        out = Path(cfg.paths.output_dir)
        assert json.loads((out / "metrics.json").read_text()) == summary
        return summary, out

    return _run


def pytest_configure(config):
    """One torch thread per test process, and per process a test starts (OMP_NUM_THREADS, which
    they inherit): the suite runs in two processes (pytest-xdist, -n 2) on two cores; tiny models
    gain nothing from a second thread, and on a busy machine two spinning threads per process
    make a subprocess's short run many times slower."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if hasattr(config, "workerinput"):  # an xdist worker (the controller imports no torch)
        import torch

        torch.set_num_threads(1)


# The slow suite's two longest tests (about 7 and 1.5 minutes, each running commands one after
# another): the first starts at once on one worker and the second runs last on the other, while
# that worker takes the rest (xdist gives each worker a contiguous half of the list).
FIRST, LAST = "tests/test_readme_commands.py", "tests/test_readme_figures.py"


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: {FIRST: 0, LAST: 2}.get(item.nodeid.split("::")[0], 1))


@pytest.fixture(autouse=True)
def _quiet_logs():
    logging.getLogger("lightning").setLevel(logging.WARNING)
    yield
