"""Lightning code as users bring it (tests/plain_lightning: no trainkit import) trains with
trainkit and gets what trainkit adds: a training stream with no length, LitData's streaming
format, dict batches, Lightning's own demo pair, SIGTERM and a sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import QUIET, ROOT, make_cfg, tb_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trainkit.errors import ConfigError
from trainkit.evaluation import evaluate
from trainkit.training import train

TESTS = Path(__file__).parent
SEARCH = f"hydra.searchpath=[file://{TESTS}/plain_lightning/conf]"
SIZES = ["+model.input_size=64", "+model.num_classes=10"]  # the data provides no dimensions


@pytest.fixture(autouse=True)
def importable(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))


def run(tmp_path: Path, overrides: list[str], name: str = "run") -> tuple[dict, Path]:
    cfg = make_cfg([SEARCH, *QUIET, *overrides], tmp_path / name)
    return train(cfg), Path(cfg.paths.output_dir)


def scalars(run_dir: Path) -> dict[str, list[int]]:
    events = EventAccumulator(str(tb_dir(run_dir)))
    events.Reload()
    return {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_stream_without_length_needs_max_steps_and_then_trains_and_resumes(tmp_path: Path):
    args = ["data=plain_stream", "model=plain", *SIZES, "trainer.val_check_interval=20"]
    with pytest.raises(ConfigError, match=r"stream of unknown length .* set trainer\.max_steps"):
        run(tmp_path, [*args, "trainer.max_epochs=2"], "unbounded")
    first, run_dir = run(tmp_path, [*args, "trainer.max_steps=50"], "first")
    plan = first["plan"]
    assert plan["streaming"] and plan["iterations_per_epoch"] is None and plan["epochs"] is None
    assert first["iterations"] == plan["iterations"] == 50 and first["validations"] == 2
    steps = scalars(run_dir)
    assert steps["val/acc"] == [20, 40] and steps["train/loss"][-1] == 50
    # a pass over the stream (40 batches) is an epoch; max_steps ends the second one
    assert steps["epoch/train_loss"] == [1, 2] and first["epochs"] == 2
    resumed, _ = run(tmp_path, [*args, "trainer.max_steps=70", f"ckpt_path={run_dir}"], "more")
    assert resumed["iterations"] == 70 and resumed["global_step"] == 70


@pytest.mark.slow
def test_litdata_streaming_dataset_trains_and_resumes_exactly(tmp_path: Path):
    """LitData's StreamingDataset over a folder written by litdata.optimize; Lightning keeps the
    StreamingDataLoader's position in the checkpoint, so a resume mid-epoch is exact."""
    out = tmp_path / "data" / "digits_stream"
    subprocess.run([sys.executable, "-m", "plain_lightning.make_stream", str(out)], cwd=tmp_path,
                   env={**os.environ, "PYTHONPATH": str(TESTS)}, check=True,
                   capture_output=True)  # fmt: skip
    args = ["data=plain_litdata", "model=plain", *SIZES, f"paths.data_dir={tmp_path / 'data'}",
            "trainer.deterministic=true", "callbacks.early_stopping=null"]  # fmt: skip
    straight, _ = run(tmp_path, [*args, "trainer.max_epochs=2"], "straight")
    assert straight["plan"]["train_samples"] == 1257 and straight["iterations"] == 80
    # last.ckpt at step 50, in the middle of the second epoch (40 batches each); resumed from it
    half = ["trainer.max_epochs=-1", "trainer.max_steps=50", "test=false",
            "callbacks.last_checkpoint.every_n_train_steps=25"]  # fmt: skip
    _, half_dir = run(tmp_path, [*args, *half], "half")
    resumed, _ = run(tmp_path, [*args, "trainer.max_epochs=2", f"ckpt_path={half_dir}"], "more")
    assert resumed["iterations"] == 80 and resumed["epochs"] == 2
    assert resumed["val"] == pytest.approx(straight["val"], abs=1e-6)
    assert resumed["test"] == pytest.approx(straight["test"], abs=1e-6)


def test_dict_batches(tmp_path: Path):
    """{"image": ..., "label": ...} batches, as Hugging Face datasets give them, with a model
    that reads them: trained, the confusion matrix drawn, predictions with their targets."""
    args = ["data=plain_dicts", "model=plain_dict", *SIZES, "trainer.max_epochs=2"]
    summary, run_dir = run(tmp_path, args)
    assert summary["status"] == "ok" and summary["test"]["acc"] > 0.5
    events = EventAccumulator(str(tb_dir(run_dir)))
    events.Reload()
    assert "val_images/confusion_matrix" in events.Tags()["images"]
    evaluate(make_cfg([f"ckpt_path={run_dir}", "predict=true"], tmp_path / "eval", "eval"))
    rows = (tmp_path / "eval" / "predictions_test.csv").read_text().splitlines()
    assert rows[0].startswith("index,target,prediction,p_0") and len(rows) == 1 + 269


def test_lightnings_demo_pair(tmp_path: Path):
    """BoringModel + BoringDataModule, each from a two-line config: it trains; a best checkpoint
    on a metric it does not log is one sentence naming what it logs."""
    demo = ["~model", "~data", "+model._target_=lightning.pytorch.demos.boring_classes.BoringModel",
            "+data._target_=lightning.pytorch.demos.boring_classes.BoringDataModule",
            "trainer.max_epochs=2"]  # fmt: skip
    boring = make_cfg([*QUIET, *demo], tmp_path / "no")
    with pytest.raises(ConfigError, match=r"watch val/loss, which BoringModel does not log"):
        train(boring)
    off = ["callbacks.model_checkpoint=null", "callbacks.early_stopping=null"]
    cfg = make_cfg([*QUIET, *demo, *off], tmp_path / "run")
    summary = train(cfg)
    assert summary["status"] == "ok" and summary["iterations"] == 2 * 64
    assert summary["plan"]["train_samples"] == 64 and summary["plan"]["batch_size"] == 1


@pytest.mark.slow
def test_sigterm_stops_a_plain_datamodule_run_and_it_resumes(tmp_path: Path):
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(tmp_path / "logs"), "PYTHONPATH": str(TESTS)}
    args = [SEARCH, "data=plain_digits", "model=plain", *SIZES, "trainer.max_epochs=50",
            "callbacks.early_stopping=null", "trainer.enable_progress_bar=false"]  # fmt: skip
    out = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    proc = subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, env=env, **out)
    runs = tmp_path / "logs" / "train" / "runs"
    deadline = time.monotonic() + 120
    while not list(runs.glob("*/checkpoints/last.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[0]
    assert proc.returncode == 143, err[-2000:]
    (run_dir,) = runs.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and "Resume with" in err
    done = subprocess.run([sys.executable, "train.py", *args[:-3], "trainer.max_epochs=" +
                           str(metrics["epochs"] + 1), f"ckpt_path={run_dir}",
                           "trainer.enable_progress_bar=false"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_a_sweep_over_a_plain_datamodule_reports_every_job(tmp_path: Path):
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(tmp_path / "logs"), "PYTHONPATH": str(TESTS)}
    args = ["-m", SEARCH, "data=plain_digits", "model=plain", *SIZES, "trainer.max_epochs=1",
            "data.batch_size=32,64", "trainer.enable_progress_bar=false"]  # fmt: skip
    done = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    report = (sweep / "report.md").read_text()
    assert "2 job(s), 2 ok" in report and "| 0 | 32 | ok |" in report
