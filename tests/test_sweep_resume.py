"""Resuming a sweep (the same command into the same sweep folder) and stopping one with SIGTERM
wherever it lands, end to end: train.py in subprocesses, with a signal sent at a chosen point."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import QUIET, ROOT

from trainkit.run_files import read_scalars

# train.py, with SIG (default SIGTERM) sent to itself at POINT: "metrics" right after the first
# job's metrics.json was written; "report" while the sweep report is written; "validation" in the
# first validation batch of the second epoch of the job whose overrides hold JOB
SIGNALLING = """
import os, signal, sys
POINT = os.environ["POINT"]

def sigterm():
    os.kill(os.getpid(), getattr(signal, os.environ.get("SIG", "SIGTERM")))

if POINT == "report":
    import trainkit.reports as reports
    report = reports.sweep_report
    def stopped_report(*args, **kwargs):
        sigterm()
        return report(*args, **kwargs)
    reports.sweep_report = stopped_report
elif POINT == "metrics":
    import trainkit.training as training
    write = training.write_metrics
    def write_then_stop(run_dir, summary):
        path = write(run_dir, summary)
        if summary["status"] == "ok":
            sigterm()
        return path
    training.write_metrics = write_then_stop
else:
    from hydra.core.hydra_config import HydraConfig
    from trainkit.models.classifier import ClassifierModule
    step = ClassifierModule.validation_step
    def validation_step(self, batch, batch_idx):
        job = os.environ["JOB"] in HydraConfig.get().overrides.task
        if batch_idx == 0 and self.current_epoch == 1 and job:
            sigterm()
        return step(self, batch, batch_idx)
    ClassifierModule.validation_step = validation_step
TRAIN = {train!r}
sys.argv[0] = TRAIN
exec(compile(open(TRAIN).read(), TRAIN, "exec"), {{"__name__": "__main__", "__file__": TRAIN}})
"""


def train(args: list[str], tmp_path: Path, **signal_at: str) -> subprocess.CompletedProcess:
    """`python train.py <args>` (through SIGNALLING when `signal_at` says where to stop)."""
    script = ["train.py"]
    tmp_path.mkdir(parents=True, exist_ok=True)
    if signal_at:
        (tmp_path / "signalling.py").write_text(SIGNALLING.format(train=str(ROOT / "train.py")))
        script = [str(tmp_path / "signalling.py")]
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(tmp_path / "logs"), **signal_at}
    return subprocess.run(
        [sys.executable, *script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def files_of(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def statuses(sweep: Path) -> dict[str, str]:
    return {
        p.name: json.loads((p / "metrics.json").read_text())["status"]
        for p in sorted(sweep.iterdir())
        if (p / "metrics.json").is_file()
    }


REGRESSION = ["-m", "model=regression", "data.n_samples=230", "trainer.max_epochs=1", *QUIET]
GRID = ["data.batch_size=16,64", "optimizer.lr=0.05,0.1"]


@pytest.mark.slow
def test_sigterm_after_a_job_stops_the_sweep_and_the_same_command_resumes_it(tmp_path):
    out = train([*REGRESSION, *GRID], tmp_path, POINT="metrics")
    output = out.stdout + out.stderr
    assert out.returncode == 143, output[-3000:]
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    assert statuses(sweep) == {"0_batch_size=16,lr=0.05": "ok"}
    assert not (sweep / "1_batch_size=16,lr=0.1").exists()  # jobs 1-3 never started
    assert f"resume with:\n  python {ROOT / 'train.py'} -m " in output
    report = (sweep / "report.md").read_text()  # written on the way out, every job in it
    assert "4 job(s), 1 ok, 3 not started." in report
    job0 = files_of(sweep / "0_batch_size=16,lr=0.05")

    out = train([*REGRESSION, *GRID, f"hydra.sweep.dir={sweep}"], tmp_path)
    output = out.stdout + out.stderr
    assert out.returncode == 0, output[-3000:]
    assert "job 0 (0_batch_size=16,lr=0.05): finished in an earlier run: skipped" in output
    assert "sweep done: 1 skipped (finished earlier), 3 run" in output
    assert files_of(sweep / "0_batch_size=16,lr=0.05") == job0  # not run again, not touched
    assert set(statuses(sweep).values()) == {"ok"} and len(statuses(sweep)) == 4
    assert "4 job(s), 4 ok." in (sweep / "report.md").read_text()


CNN = ["model=cnn", "trainer.max_epochs=3", "trainer.limit_train_batches=3", "seed=1", *QUIET]
CNN += ["callbacks.early_stopping=null", "callbacks.last_checkpoint.min_interval=0"]


@pytest.mark.slow
def test_a_job_interrupted_in_its_fit_resumes_exactly_in_its_own_folder(tmp_path):
    sweep_args = ["-m", *CNN, "optimizer.lr=0.002,0.001"]
    out = train(sweep_args, tmp_path, POINT="validation", JOB="optimizer.lr=0.001")
    assert out.returncode == 143, (out.stdout + out.stderr)[-3000:]
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    job1 = sweep / "1_lr=0.001"
    assert statuses(sweep) == {"0_lr=0.002": "ok", "1_lr=0.001": "interrupted"}

    out = train([*sweep_args, f"hydra.sweep.dir={sweep}"], tmp_path)
    output = out.stdout + out.stderr
    assert out.returncode == 0, output[-3000:]
    assert "job 1 (1_lr=0.001): interrupted in an earlier run: resumes from its last.ckpt" in output
    resumed = json.loads((job1 / "metrics.json").read_text())
    assert resumed["resumed_from"] == str(job1 / "checkpoints" / "last.ckpt")
    # the same numbers as the job run straight through, as a single run
    straight = train([*CNN, "optimizer.lr=0.001"], tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    expected = json.loads((run / "metrics.json").read_text())
    for key in ("epochs", "iterations", "global_step", "validations", "best_score"):
        assert resumed[key] == pytest.approx(expected[key], abs=1e-6), key
    for stage in ("val", "test"):
        assert resumed[stage] == pytest.approx(expected[stage], abs=1e-6), stage
    # its best checkpoint is its own folder's, and each point of its curves is there once
    assert Path(resumed["best_model_path"]).parent == job1 / "checkpoints"
    assert Path(resumed["best_model_path"]).is_file()
    scalars = read_scalars(job1)
    assert [x for x, _ in scalars["epoch/val_acc"]] == [1, 2, 3]
    assert [x for x, _ in scalars["val/loss"]] == [3, 6, 9]


@pytest.mark.slow
def test_ctrl_c_after_a_job_and_sigterm_in_the_report_stop_the_sweep(tmp_path):
    out = train([*REGRESSION, *GRID], tmp_path / "int", POINT="metrics", SIG="SIGINT")
    assert out.returncode == 130, (out.stdout + out.stderr)[-3000:]
    assert "interrupted: the run had finished and written" in out.stderr
    (sweep,) = (tmp_path / "int" / "logs" / "train" / "multiruns").iterdir()
    assert statuses(sweep) == {"0_batch_size=16,lr=0.05": "ok"}
    assert "4 job(s), 1 ok, 3 not started." in (sweep / "report.md").read_text()

    out = train([*REGRESSION, "optimizer.lr=0.05,0.1"], tmp_path / "rep", POINT="report")
    assert out.returncode == 143, (out.stdout + out.stderr)[-3000:]
    (sweep,) = (tmp_path / "rep" / "logs" / "train" / "multiruns").iterdir()
    assert list(statuses(sweep).values()) == ["ok", "ok"]


@pytest.mark.slow
def test_an_optuna_sweep_resumes_in_its_folder_with_the_same_trials(tmp_path):
    from trainkit.training import optimized_value

    args = ["-m", "hparams_search=regression_optuna", "hydra.sweeper.n_trials=3"]
    args += ["trainer.max_epochs=1", "data.n_samples=230", *QUIET]
    out = train(args, tmp_path / "stopped", POINT="metrics")
    assert out.returncode == 143, (out.stdout + out.stderr)[-3000:]
    (sweep,) = (tmp_path / "stopped" / "logs" / "regression_optuna" / "multiruns").iterdir()
    (job0,) = sweep.glob("0_*")
    before = files_of(job0)

    out = train([*args, f"hydra.sweep.dir={sweep}"], tmp_path / "stopped")
    output = out.stdout + out.stderr
    assert out.returncode == 0, output[-3000:]
    assert f"job 0 ({job0.name}): finished in an earlier run: skipped" in output
    assert files_of(job0) == before
    resumed = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert [t["state"] for t in resumed["trials"]] == ["COMPLETE"] * 3
    recorded = json.loads((job0 / "metrics.json").read_text())
    assert resumed["trials"][0]["value"] == pytest.approx(optimized_value(recorded, "val/mse"))

    # the trials of a sweep that was never stopped: the same ones
    out = train(args, tmp_path / "straight")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    (straight,) = (tmp_path / "straight" / "logs" / "regression_optuna" / "multiruns").iterdir()
    expected = yaml.safe_load((straight / "optimization_results.yaml").read_text())
    assert [t["params"] for t in resumed["trials"]] == [t["params"] for t in expected["trials"]]
