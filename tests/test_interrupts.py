"""Ctrl-C (SIGINT) and SIGTERM in every phase of a run, as a user sends them: the final weights are
never lost, the run says how to go on, and exits non-zero (end to end, in subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ROOT

# train.py, with a signal sent to itself once the run reaches PHASE (data: the data is being
# loaded; validation: the first validation batch of the second epoch; test: the first test batch)
INTERRUPTING = """
import os, signal, sys
PHASE, SIG = os.environ["PHASE"], getattr(signal, os.environ["SIG"])

def interrupt():
    os.kill(os.getpid(), SIG)

if PHASE == "data":
    from trainkit.data.digits import DigitsDataModule
    load = DigitsDataModule.load_splits
    def load_splits(self):
        interrupt()
        return load(self)
    DigitsDataModule.load_splits = load_splits
else:
    from trainkit.models.classifier import ClassifierModule
    name = "validation_step" if PHASE == "validation" else "test_step"
    step = getattr(ClassifierModule, name)
    def interrupting_step(self, batch, batch_idx):
        if batch_idx == 0 and (PHASE == "test" or self.current_epoch == 1):
            interrupt()
        return step(self, batch, batch_idx)
    setattr(ClassifierModule, name, interrupting_step)
TRAIN = {train!r}
sys.argv[0] = TRAIN
exec(compile(open(TRAIN).read(), TRAIN, "exec"), {{"__name__": "__main__", "__file__": TRAIN}})
"""

# the CNN, 3 iterations an epoch, 3 epochs; a learning rate so high that the best validation is
# the first epoch's, so the last weights differ from the best checkpoint's
RUN = [
    "model=cnn",
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=3",
    "optimizer.lr=0.05",
    "seed=1",
    "callbacks.early_stopping=null",
    "callbacks.last_checkpoint.min_interval=0",
    "trainer.enable_progress_bar=false",
]


def run(tmp_path: Path, phase: str, sig: str, args: list[str] = RUN) -> subprocess.CompletedProcess:
    script = tmp_path / "interrupting.py"
    script.write_text(INTERRUPTING.format(train=str(ROOT / "train.py")))
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(tmp_path / "logs"), "PHASE": phase, "SIG": sig}
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_dir(tmp_path: Path) -> Path:
    (one,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    return one


CODES = {"SIGINT": 1, "SIGTERM": 143}


def interrupted(tmp_path: Path, phase: str, sig: str) -> tuple[str, Path]:
    """(everything printed, the run dir) of a run interrupted by `sig` during `phase`, after
    checking that it exited with that signal's code."""
    out = run(tmp_path, phase, sig)
    output = out.stdout + out.stderr
    assert out.returncode == CODES[sig], output[-3000:]
    return output, run_dir(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupt_while_testing_keeps_the_final_weights(tmp_path, sig):
    output, folder = interrupted(tmp_path, "test", sig)
    assert "interrupted while testing: last.ckpt holds the final weights of fit" in output
    assert f"python eval.py ckpt_path={folder}" in output
    last = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=False)
    (best_path,) = (folder / "checkpoints").glob("best-*.ckpt")
    best = torch.load(best_path, weights_only=False)
    assert last["global_step"] == 9 and best["global_step"] == 3  # fit's end, the best epoch's
    weights = last["state_dict"].keys() & best["state_dict"].keys()
    assert any(not torch.equal(last["state_dict"][k], best["state_dict"][k]) for k in weights)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["iterations"] == 9


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupt_while_validating_saves_and_resumes(tmp_path, sig):
    output, folder = interrupted(tmp_path, "validation", sig)
    assert "Resume with:" in output and f"ckpt_path={folder}" in output
    last = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 6  # two epochs trained, the second one's validation under way
    assert json.loads((folder / "metrics.json").read_text())["status"] == "interrupted"
    # the printed command resumes it to the end
    resumed = subprocess.run(
        [sys.executable, "train.py", *RUN, f"ckpt_path={folder}"],
        cwd=ROOT,
        env={**os.environ, "TRAINKIT_LOG_DIR": str(tmp_path / "logs")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    done = max((tmp_path / "logs" / "train" / "runs").iterdir())
    metrics = json.loads((done / "metrics.json").read_text())
    assert (metrics["status"], metrics["epochs"], metrics["global_step"]) == ("ok", 3, 9)
    assert metrics["validations"] == 3  # the interrupted validation ran again, once


@pytest.mark.slow
def test_interrupt_while_loading_data_is_one_line(tmp_path):
    out = run(tmp_path, "data", "SIGINT")
    assert out.returncode == 130, out.stderr[-3000:]
    assert "interrupted before training started: nothing was trained or written" in out.stderr
    assert "Traceback" not in out.stderr
    assert not list(run_dir(tmp_path).glob("checkpoints/*"))


def test_the_interrupting_script_patches_what_exists():
    """The slow tests above patch these by name: fail here, fast, if they move."""
    from trainkit.data.digits import DigitsDataModule
    from trainkit.models.classifier import ClassifierModule

    assert callable(DigitsDataModule.load_splits)
    assert callable(ClassifierModule.validation_step) and callable(ClassifierModule.test_step)
