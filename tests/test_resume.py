"""Exact resume, interrupts, atomic checkpoints, determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import tb_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trainkit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
# CNN with dropout (uses the RNG), 10 iterations an epoch, an LR halved every epoch
EXACT = [
    "model=cnn",
    "trainer.limit_train_batches=10",
    "trainer.deterministic=true",
    "callbacks.early_stopping=null",
    "seed=7",
]
HALVING = ["scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.5"]


def final_lr(run_dir: Path) -> float:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return ckpt["optimizer_states"][0]["param_groups"][0]["lr"]


def assert_same_run(a: dict, b: dict) -> None:
    assert (a["global_step"], a["epochs"], a["iterations"]) == (
        b["global_step"],
        b["epochs"],
        b["iterations"],
    )
    for stage in ("train", "val", "test"):
        assert a[stage].keys() == b[stage].keys()
        for name, value in a[stage].items():
            assert b[stage][name] == pytest.approx(value, abs=1e-6), f"{stage}/{name}"


def test_two_epochs_then_resume_to_four_equals_four_straight(run_train):
    straight, straight_dir = run_train(
        [*EXACT, *HALVING, "trainer.max_epochs=4"], run_dir="straight"
    )
    _, first_dir = run_train([*EXACT, *HALVING, "trainer.max_epochs=2"], run_dir="first")
    resumed, resumed_dir = run_train(
        [*EXACT, *HALVING, "trainer.max_epochs=4", f"ckpt_path={first_dir}"], run_dir="resumed"
    )
    assert resumed["resumed_from"] == str(first_dir / "checkpoints" / "last.ckpt")
    assert_same_run(straight, resumed)
    assert final_lr(resumed_dir) == final_lr(straight_dir) == pytest.approx(1e-3 * 0.5**4)
    # the resumed run's curves continue the first's, in its TensorBoard run: at iteration 21
    assert tb_dir(resumed_dir) == tb_dir(first_dir)
    acc = EventAccumulator(str(tb_dir(resumed_dir)), size_guidance={"scalars": 0})
    acc.Reload()
    steps = [e.step for e in acc.Scalars("train/loss")]
    assert steps == sorted(set(steps)) and steps[-1] == resumed["iterations"]  # no step twice
    assert [e.step for e in acc.Scalars("epoch/train_loss")] == [1, 2, 3, 4]
    for tag in ("epoch/train_loss", "epoch/val_loss"):  # the same curve as the uninterrupted run
        straight_acc = EventAccumulator(str(tb_dir(straight_dir)), size_guidance={"scalars": 0})
        straight_acc.Reload()
        mine = [e.value for e in acc.Scalars(tag)]
        assert mine == pytest.approx([e.value for e in straight_acc.Scalars(tag)], abs=1e-6)


def test_resume_mid_epoch(run_train):
    straight, _ = run_train([*EXACT, "trainer.max_epochs=3"], run_dir="straight")
    # last.ckpt every 5 steps: the one at step 15 is mid-epoch (5 of the 2nd epoch's 10 batches)
    _, first_dir = run_train(
        [
            *EXACT,
            "trainer.max_epochs=-1",
            "trainer.max_steps=15",
            "callbacks.last_checkpoint.every_n_train_steps=5",
            "test=false",
        ],
        run_dir="first",
    )
    assert torch.load(first_dir / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1
    resumed, _ = run_train(
        [*EXACT, "trainer.max_epochs=3", f"ckpt_path={first_dir}"], run_dir="resumed"
    )
    assert_same_run(straight, resumed)


def test_ckpt_path_last_takes_the_newest_unfinished_run(run_train, tmp_path):
    import json
    import shutil

    from trainkit.checkpoints import resolve_checkpoint

    args = ["model=regression", "trainer.max_epochs=1", "test=false"]
    _, older = run_train(args, run_dir="runs/a")
    time.sleep(0.05)
    _, newer = run_train(args, run_dir="runs/b")
    (tmp_path / "runs" / "c").mkdir()  # the current run's own, still empty, directory
    # every run finished: nothing to resume, and saying so beats training nothing
    with pytest.raises(ConfigError, match=r"ckpt_path=last: every run in .* finished"):
        resolve_checkpoint("last", runs_dir=tmp_path / "runs")
    # an interrupted run (older than b) is the one to resume
    for run in (older,):
        summary = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    assert resolve_checkpoint("last", runs_dir=tmp_path / "runs") == str(
        older / "checkpoints" / "last.ckpt"
    )
    # a run killed before it wrote metrics.json is unfinished too
    killed = tmp_path / "runs" / "d"
    shutil.copytree(newer / "checkpoints", killed / "checkpoints")
    assert resolve_checkpoint("last", runs_dir=tmp_path / "runs") == str(
        killed / "checkpoints" / "last.ckpt"
    )


def test_same_seed_deterministic_runs_are_bit_identical(run_train):
    args = [
        "model=cnn",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=10",
        "trainer.deterministic=true",
    ]
    a, _ = run_train([*args, "seed=0"], run_dir="a")  # 0 is a seed too, not "draw one"
    b, _ = run_train([*args, "seed=0"], run_dir="b")
    c, _ = run_train([*args, "seed=1"], run_dir="c")
    assert a["seed"] == 0
    for stage in ("train", "val", "test"):
        assert a[stage] == b[stage]  # exactly equal floats
    assert a["test"] != c["test"] and a["train"] != c["train"]


SLOW_RUN = [
    "model=cnn",
    "trainer.max_epochs=1000",
    "callbacks.early_stopping=null",
    "trainer.enable_progress_bar=false",
]


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 1), (signal.SIGTERM, 143)])
def test_interrupt_saves_last_checkpoint_and_says_how_to_resume(tmp_path, sig, code):
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(tmp_path / "logs")}
    proc = subprocess.Popen(
        [sys.executable, "train.py", *SLOW_RUN],
        cwd=ROOT,
        env=env,
        stderr=subprocess.STDOUT,
        stdout=subprocess.PIPE,
        text=True,
    )
    runs = tmp_path / "logs" / "train" / "runs"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for the first epoch's checkpoint: training is under way
        if list(runs.glob("*/checkpoints/last.ckpt")):
            break
        time.sleep(0.2)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == code, output[-2000:]
    (run_dir,) = runs.iterdir()
    assert "Resume with:" in output and f"ckpt_path={run_dir}" in output
    assert "Resume with:" in (run_dir / "train.log").read_text()
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] > 40  # the state at the interrupt, after the first epoch
    assert not list((run_dir / "checkpoints").glob("*.tmp-*"))
    # one count: every iteration done made its optimizer step (no accumulation here), in
    # metrics.json, in the checkpoint's progress and in the message
    metrics = json.loads((run_dir / "metrics.json").read_text())
    progress = ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]
    assert metrics["iterations"] == metrics["optimizer_steps"] == ckpt["global_step"]
    assert progress["completed"] == ckpt["global_step"]  # a resume starts the next iteration
    assert f"stopped after iteration {ckpt['global_step']} " in output


WRITER = """
import sys, torch
from trainkit.checkpoints import atomic_save
atomic_save({"weights": torch.full((8_000_000,), float(sys.argv[2]))}, sys.argv[1])
"""


@pytest.mark.slow
def test_kill_9_never_leaves_a_half_written_checkpoint(tmp_path):
    from trainkit.checkpoints import atomic_save

    path = tmp_path / "last.ckpt"
    atomic_save({"weights": torch.zeros(8_000_000)}, path)
    for delay in (0.0, 0.05, 0.1, 0.2, 0.4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "1"])
        time.sleep(delay + 1.5)  # interpreter + torch start, then somewhere in the write
        proc.kill()
        proc.wait()
        weights = torch.load(path, weights_only=True)["weights"]  # always a complete file
        assert weights.shape == (8_000_000,) and weights[0].item() in (0.0, 1.0)


@pytest.mark.parametrize(("min_interval", "written"), [(0, [0, 1, 2]), (3600, [0, "end"])])
def test_last_checkpoint_after_validations_at_most_every_min_interval(
    run_train, monkeypatch, min_interval, written
):
    from trainkit.callbacks.checkpointing import LastCheckpoint

    saves: list = []
    original = LastCheckpoint.save

    def spy(self, trainer):
        at_end = trainer.fit_loop.epoch_loop.done and trainer.current_epoch == 3
        saves.append("end" if at_end else trainer.current_epoch)
        original(self, trainer)

    monkeypatch.setattr(LastCheckpoint, "save", spy)
    args = ["model=regression", "trainer.max_epochs=3", "test=false"]
    _, run_dir = run_train([*args, f"callbacks.last_checkpoint.min_interval={min_interval}"])
    assert saves == written  # the first validation always writes; the end always has the state
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 3 * 25  # the final state either way
    with pytest.raises(ConfigError, match="min_interval must be >= 0 seconds, got -1"):
        LastCheckpoint(str(run_dir), min_interval=-1)


def test_ctrl_c_still_works_after_an_interrupted_fit_in_process(run_train, monkeypatch):
    """Lightning ignores SIGINT for good once fit catches a KeyboardInterrupt; trainkit gives it
    back, so a notebook (or a test process) can still be interrupted, and the processes it
    starts later do not inherit an ignored Ctrl-C."""
    from trainkit.models.classifier import ClassifierModule

    step = ClassifierModule.training_step

    def interrupted_step(self, batch, batch_idx):
        if batch_idx == 2:
            raise KeyboardInterrupt
        return step(self, batch, batch_idx)

    before = signal.getsignal(signal.SIGINT)
    run_train(["model=cnn", "trainer.max_epochs=1", "trainer.limit_train_batches=3"], "done")
    assert signal.getsignal(signal.SIGINT) is before  # a run that ends as planned
    monkeypatch.setattr(ClassifierModule, "training_step", interrupted_step)
    with pytest.raises(SystemExit):
        run_train(["model=cnn", "trainer.max_epochs=1"])
    assert signal.getsignal(signal.SIGINT) is before is not signal.SIG_IGN
