"""Bad input ends within seconds with one specific sentence and a non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from helpers import run_script


def train_cli(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    out = run_script(args, tmp_path, timeout=120)
    return out, time.perf_counter() - start


SLOW = pytest.mark.slow  # also checked in-process, fast, by tests/test_config.py


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data.batch_size=0"], "error: data.batch_size must be a positive integer, got 0."),
        pytest.param(
            ["data.batch_size=-8"],
            "error: data.batch_size must be a positive integer, got -8.",
            marks=SLOW,
        ),
        pytest.param(
            ["trainer.accumulate_grad_batches=0"],
            "error: trainer.accumulate_grad_batches must be an integer >= 1, got 0.",
            marks=SLOW,
        ),
        pytest.param(
            ["optimizer.lr=0"],
            "error: optimizer.lr must be a positive, finite number, got 0.",
            marks=SLOW,
        ),
        pytest.param(
            ["trainer.max_epochs=-5"],
            "error: trainer.max_epochs must be an integer >= -1 (-1 = no limit), got -5.",
            marks=SLOW,
        ),
        (["paths.log_dir=/dev/null/logs"], "error: cannot write the run directory /dev/null/logs"),
        (
            ["model=text", "data=text_csv"],
            "error: data.path has no value and is required: set it on the command line",
        ),
    ],
)
def test_impossible_values(tmp_path, args, message):
    out, seconds = train_cli(args, tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith(message), out.stderr[-500:]
    assert "Traceback" not in out.stderr
    assert seconds < 15  # refused before torch is even imported


@pytest.mark.parametrize(
    ("args", "listed"),
    [
        (["model=resnet"], "cnn"),
        pytest.param(["data=imagenet"], "digits", marks=SLOW),
        pytest.param(["optimizer=lamb"], "adamw", marks=SLOW),
    ],
)
def test_unknown_names_list_the_choices(tmp_path, args, listed):
    out, _ = train_cli(args, tmp_path)
    group = args[0].split("=")[0]
    assert out.returncode != 0
    assert f"Could not find '{group}/" in out.stderr
    assert f"Available options in '{group}':" in out.stderr and listed in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_errors_after_the_imports_are_one_line_too(tmp_path):
    """Needs torch: a dataset that is missing, and a validation interval longer than an epoch."""
    out, _ = train_cli(["data=mnist"], tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "MNIST" in last and "data=digits" in last
    out, _ = train_cli(["trainer.val_check_interval=100"], tmp_path)
    assert out.returncode == 1
    assert "more than one epoch (40 iterations)" in out.stderr.strip().splitlines()[-1]


def test_corrupt_data_file_is_named(run_train, tmp_path):
    from trainkit.errors import DataError

    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (raw / name).write_bytes(b"\x00\x00\x08\x03 this is not an IDX file")
    with pytest.raises(DataError, match="idx"):
        run_train(["data=mnist", f"data.data_dir={tmp_path / 'mnist'}"])


def test_checkpoint_of_another_model_or_a_corrupt_one(run_train, tmp_path):
    from trainkit.errors import ConfigError

    summary, run_dir = run_train(
        ["model=regression", "trainer.max_epochs=1", "test=false"], run_dir="reg"
    )
    with pytest.raises(
        ConfigError, match="is a checkpoint of Regressor, but this run builds ImageClassifier"
    ):
        run_train(["model=cnn", f"ckpt_path={run_dir}"], run_dir="cnn")
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ConfigError, match="broken.ckpt is not a readable checkpoint"):
        run_train(["model=regression", f"ckpt_path={broken}"], run_dir="again")
    with pytest.raises(ConfigError, match="does not exist"):
        run_train(["model=regression", f"ckpt_path={tmp_path / 'nope.ckpt'}"], run_dir="nope")
