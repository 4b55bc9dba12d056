"""train.py as a user runs it: in a subprocess, from the project root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CONF, run_script, tb_dir

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
    assert {".hydra", "checkpoints", "metrics.json", "train.log"} <= names
    # the curves: logs/tensorboard/<task>/<model>·<data> <run folder>
    assert (
        tb_dir(run_dir)
        == tmp_path / "logs" / "tensorboard" / "train" / f"cnn·digits {run_dir.name}"
    )
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


def test_eval_help_lists_its_own_settings(tmp_path):
    out = run_script(["--help"], tmp_path, script="eval.py")
    assert out.returncode == 0
    assert "trainkit eval:" in out.stdout and "Config groups" not in out.stdout
    for setting in ("ckpt_path=", "split=", "predict=", "batch_size=", "seed="):
        assert f"\n  {setting}" in out.stdout, setting


@pytest.mark.parametrize(
    "arg, hint",
    [
        ("max_epochs=5", "did you mean trainer.max_epochs=5?"),
        ("+max_epochs=5", "did you mean trainer.max_epochs=5?"),
        ("+trainer.epochs=5", "did you mean trainer.min_epochs=5 or trainer.max_epochs=5?"),
        ("data.batchsize=64", "did you mean data.batch_size=64 or tune.batch_size=64?"),
    ],
)
def test_a_mistyped_key_gets_did_you_mean_and_no_run(tmp_path, arg, hint):
    out = run([arg], tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip() == f"error: {arg.partition('=')[0]} is not a setting; {hint}"
    assert not (tmp_path / "logs").exists()  # nothing ran


def test_a_failed_run_writes_its_error_into_train_log(tmp_path):
    out = run(["model=text", "data=digits"], tmp_path)
    assert out.returncode == 1
    error = out.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and "Traceback" not in out.stderr
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert error.removeprefix("error: ") in (run_dir / "train.log").read_text()


def test_sweep_job_folders_are_named_by_their_swept_values(tmp_path, monkeypatch):
    from helpers import make_cfg

    from trainkit.cli import job_label

    job = ["model=cnn", "data.batch_size=64", "trainer.max_epochs=4", "seed=1"]
    make_cfg(job, tmp_path)  # job 3 of the sweep below, as Hydra composes it
    argv = ["train.py", "-m", "model=cnn", "data.batch_size=16,64", "trainer.max_epochs=2,4"]
    monkeypatch.setattr(sys, "argv", [*argv, "seed=1"])
    assert job_label() == "batch_size=64,max_epochs=4"  # the swept keys only, short names
    # an Optuna-style float gets 4 significant digits; nothing swept: every override
    make_cfg(["optimizer.lr=0.008468008575248327", "model.dropout=0.5"], tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "optimizer.lr=0.008468008575248327"])
    assert job_label() == "lr=0.008468,dropout=0.5"


def test_new_callbacks_and_loggers_are_added_with_hydras_plus():
    """`+` is Hydra's "a new key, on purpose": a new entry of a group of named objects is never
    refused; its arguments neither; a real typo still gets its hint."""
    from trainkit.command_line import mistyped_key

    def hint(*args: str) -> str | None:
        return mistyped_key(list(args), CONF, "train")

    assert hint("+callbacks.tp._target_=mypkg.MyCallback", "+callbacks.tp.out=x.json") is None
    assert hint("+logger.csv._target_=lightning.pytorch.loggers.CSVLogger") is None
    assert hint("callbacks.early_stopping=null", "logger.tensorboard=null") is None
    assert "did you mean trainer.min_epochs=5 or trainer.max_epochs=5" in hint("+trainer.epochs=5")
    typo = hint("+callbacks.early_stopping.patiance=3")
    assert typo.startswith("+callbacks.early_stopping.patiance is not a setting; did you mean "
                           "callbacks.early_stopping.patience=3")  # fmt: skip
    assert hint("callbacks.tp._target_=mypkg.MyCallback") == (
        "callbacks.tp is not in the config; to add it, write +callbacks.tp._target_=mypkg."
        "MyCallback (Hydra's + adds a new key), and +callbacks.tp.<argument>=... for its arguments."
    )
