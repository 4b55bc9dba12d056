"""train.py as a user runs it: in a subprocess, from the project root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_script

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return run_script(args, tmp_path, timeout=300)


def test_help_lists_the_groups_without_importing_torch(tmp_path):
    code = (
        "import sys, runpy; sys.argv = ['train.py', '--help'];\n"
        "try:\n    runpy.run_path('train.py', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules or 'lightning' in sys.modules else 'LIGHT')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "model: cnn, regression, text" in out.stdout
    assert out.stdout.strip().endswith("LIGHT")


def test_unknown_model_lists_the_choices(tmp_path):
    out = run(["model=resnet9000"], tmp_path)
    assert out.returncode != 0
    assert "Could not find 'model/resnet9000'" in out.stderr and "cnn" in out.stderr


def test_bad_value_is_one_line_and_non_zero(tmp_path):
    out = run(["data.batch_size=0"], tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip() == "error: data.batch_size must be a positive integer, got 0."
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_readme_command_and_run_directory(tmp_path):
    """`python train.py model=cnn trainer.max_epochs=5`, exactly as in the README."""
    out = run(["model=cnn", "trainer.max_epochs=5"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    names = {p.name for p in run_dir.iterdir()}
    assert {".hydra", "tensorboard", "checkpoints", "metrics.json", "train.log"} <= names
    assert "Training budget" in (run_dir / "train.log").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["acc"] >= 0.97


@pytest.mark.slow
def test_two_runs_started_together_get_their_own_directories(tmp_path):
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(tmp_path / "logs")}
    args = [sys.executable, "train.py", "model=regression", "debug=fast_dev_run"]
    procs = [
        subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    runs = list((tmp_path / "logs" / "debug" / "runs").iterdir())
    assert len(runs) == 2 and all((r / "metrics.json").is_file() for r in runs)
