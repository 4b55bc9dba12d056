"""The recipes of docs/extending.md, run as the guide writes them (code and configs read from the
page): a plain LightningDataModule from Lightning's docs, a callback and a logger of your own,
each added as the guide says, get what trainkit adds."""

from __future__ import annotations

import json
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import QUIET, ROOT, make_cfg

from trainkit.evaluation import evaluate
from trainkit.training import train

GUIDE = ROOT / "docs" / "extending.md"
FILES = {  # file of the project -> the first line of its block in the guide
    "my_project/models.py": "# my_project/models.py",
    "my_project/data.py": "# my_project/data.py",
    "my_project/callbacks.py": "# my_project/callbacks.py",
    "my_project/loggers.py": "# my_project/loggers.py",
    "my_conf/model/mlp.yaml": "# my_conf/model/mlp.yaml",
    "my_conf/data/mnist_plain.yaml": "# my_conf/data/mnist_plain.yaml",
}


def guide_block(first_line: str) -> str:
    blocks = re.findall(r"```\w*\n(.*?)```", GUIDE.read_text(), re.S)
    (block,) = [b for b in blocks if b.startswith(first_line)]
    return block


def guide_command(text: str) -> list[str]:
    """The overrides of the guide's bash command that contains `text`."""
    (line,) = [c for c in re.findall(r"^(?:\S+=\S+ )*python train\.py .*$", GUIDE.read_text(), re.M)
               if text in c]  # fmt: skip
    args = line.split("python train.py ", 1)[1].split()
    return [a.strip("'") for a in args if not a.startswith("hydra.searchpath=")]


def write_mnist(raw: Path, n_train: int = 200, n_test: int = 50) -> None:
    """MNIST in its real IDX format, with images a classifier can tell apart: class c is a
    bright band at rows 2c..2c+3 over noise."""
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(labels):
            images[i, 2 * c : 2 * c + 4] += 190
        for kind, magic, array in (("images-idx3", 2051, images), ("labels-idx1", 2049, labels)):
            header = struct.pack(f">{array.ndim + 1}I", magic, *array.shape)
            (raw / f"{prefix}-{kind}-ubyte").write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    for name, first_line in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(guide_block(first_line))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in [m for m in sys.modules if m == "my_project" or m.startswith("my_project.")]:
        sys.modules.pop(module)


def run(project: Path, overrides: list[str], name: str) -> tuple[dict, Path]:
    args = [f"hydra.searchpath=[file://{project}/my_conf]", *QUIET, *overrides]
    cfg = make_cfg(args, project / name)
    return train(cfg), Path(cfg.paths.output_dir)


def test_lightnings_mnist_datamodule_trains_resumes_and_evaluates(project: Path):
    write_mnist(project / "data" / "MNIST" / "raw")
    args = [*guide_command("data=mnist_plain"), f"paths.data_dir={project / 'data'}"]
    assert "+model.num_classes=10" in args  # the dimensions come from the command line
    first, run_dir = run(project, [*args, "trainer.max_epochs=2"], "first")
    # the budget, read from its loaders: 180 training images (90% of 200) in batches of 64
    assert first["plan"]["train_samples"] == 180 and first["plan"]["iterations_per_epoch"] == 3
    assert first["iterations"] == first["plan"]["iterations"] == 6
    assert first["validations"] == 2 and first["test"]["acc"] > 0.5
    assert Path(first["best_model_path"]).is_file() and Path(first["last_model_path"]).is_file()
    # eval.py from the checkpoint alone: its test split, and its val split
    cfg = make_cfg([f"ckpt_path={run_dir}"], project / "eval", "eval")
    assert evaluate(cfg)["metrics"]["test/acc"] == pytest.approx(first["test"]["acc"], abs=1e-6)
    cfg = make_cfg([f"ckpt_path={run_dir}", "split=val"], project / "eval_val", "eval")
    assert evaluate(cfg)["metrics"]["val/acc"] == pytest.approx(first["best_score"], abs=1e-6)
    # resumed from its last.ckpt, on to a third epoch
    resumed, _ = run(project, [*args, "trainer.max_epochs=3", f"ckpt_path={run_dir}"], "resumed")
    assert resumed["resumed_from"].endswith("last.ckpt")
    assert resumed["epochs"] == 3 and resumed["iterations"] == 9 and resumed["validations"] == 3


def test_the_callback_recipe_is_added_from_the_command_line(project: Path):
    args = [*guide_command("+callbacks.epoch_times"), "trainer.max_epochs=2"]
    summary, run_dir = run(project, [*args, "trainer.limit_train_batches=3"], "run")
    assert summary["status"] == "ok"
    seconds = json.loads((run_dir / "epoch_times.json").read_text())["seconds_per_epoch"]
    assert len(seconds) == 2 and all(s > 0 for s in seconds)


def test_the_logger_recipe_gets_trainkits_axes(project: Path):
    args = [*guide_command("+logger.jsonl"), "trainer.max_epochs=2"]
    summary, run_dir = run(project, [*args, "trainer.limit_train_batches=5"], "run")
    rows = [json.loads(line) for line in (run_dir / "jsonl" / "metrics.jsonl").open()]
    loss_steps = [r["step"] for r in rows if "train/loss" in r]
    epoch_steps = [r["step"] for r in rows if "epoch/val_acc" in r]
    assert loss_steps[0] == 1 and loss_steps[-1] == summary["iterations"] == 10  # iterations
    assert epoch_steps == [1, 2]  # epochs, from 1
    assert [r["step"] for r in rows if "val/acc" in r] == [5, 10]  # after each validation
    assert not any("epoch" in r or "train/loss_step" in r for r in rows)  # trainkit's names
    settings = json.loads((run_dir / "jsonl" / "settings.json").read_text())
    assert settings["model"] == "cnn" and settings["data"] == "digits"  # the run's settings
