"""Nothing silently wrong, round 3 (issue 18): what a careless user does ends in one sentence and a
non-zero exit, or in the right behaviour; never in a traceback or a wrong number with exit 0."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from helpers import make_cfg, run_script
from hydra.core.override_parser.overrides_parser import OverridesParser

from trainkit.errors import ConfigError, TrainkitError

# a run whose best validation is not its last (a learning rate too high for the CNN)
BUMPY = ["model=cnn", "trainer.limit_train_batches=3", "callbacks.early_stopping=null",
         "optimizer.lr=0.05", "seed=1", "trainer.deterministic=true"]  # fmt: skip


def test_a_moved_run_folder_keeps_its_best_checkpoint(run_train, tmp_path: Path):
    first, first_dir = run_train([*BUMPY, "trainer.max_epochs=2"], run_dir="first")
    moved = tmp_path / "moved elsewhere"
    shutil.move(first_dir, moved)
    resumed, resumed_dir = run_train(
        [*BUMPY, "trainer.max_epochs=3", f"ckpt_path={moved}"], run_dir="resumed"
    )
    # the best checkpoint is found beside the moved last.ckpt and stays best
    assert resumed["best_score"] == pytest.approx(first["best_score"])
    assert Path(resumed["best_model_path"]).name == Path(first["best_model_path"]).name
    assert Path(resumed["best_model_path"]).parent == resumed_dir / "checkpoints"


def test_eval_of_a_copied_run_folder_uses_its_own_checkpoint(run_train, tmp_path: Path):
    from trainkit.evaluation import evaluate

    summary, run_dir = run_train(["model=regression", "trainer.max_epochs=2"])
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    result = evaluate(make_cfg([f"ckpt_path={copy}"], tmp_path / "e1", "eval"))
    assert Path(result["checkpoint"]).parent == copy / "checkpoints"  # not the original's
    # a copy without its checkpoints: one sentence naming the original's file, nothing evaluated
    shutil.rmtree(copy / "checkpoints")
    with pytest.raises(ConfigError, match=r"has no checkpoint in .*copy/checkpoints; its metrics"):
        evaluate(make_cfg([f"ckpt_path={copy}"], tmp_path / "e2", "eval"))


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        (["trainer.limit_train_batches=0"], r"trainer\.limit_train_batches=0 leaves no training"),
        (
            ["data.drop_last=true", "data.batch_size=2000"],
            r"data\.drop_last=true drops the only batch: 1257 training samples per device",
        ),
    ],  # fmt: skip
)
def test_a_run_that_trains_nothing_is_one_sentence(run_train, overrides, why):
    with pytest.raises(ConfigError, match=rf"this run trains nothing: {why}"):
        run_train(["model=cnn", "trainer.max_epochs=1", *overrides])


def test_resuming_with_another_network_or_optimizer_is_one_sentence(run_train):
    _, first = run_train(["model=cnn", "trainer.max_epochs=1", "trainer.limit_train_batches=2"])
    more = [
        "model=cnn",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=2",
        f"ckpt_path={first}",
    ]
    with pytest.raises(ConfigError, match=r"holds another network than this run builds \(net\."):
        run_train([*more, "model.hidden=64"], run_dir="wider")
    with pytest.raises(ConfigError, match=r"was trained with the optimizer torch\.optim\.Adam, "
                       r"this run asks for torch\.optim\.SGD"):  # fmt: skip
        run_train([*more, "optimizer=sgd"], run_dir="sgd")


def test_an_unknown_optimizer_and_a_plateau_without_validation_are_one_sentence(run_train):
    with pytest.raises(ConfigError, match=r"could not build the optimizer .*torch\.optim\.Adamm"):
        run_train(["model=cnn", "trainer.max_epochs=1", "optimizer._target_=torch.optim.Adamm"])
    with pytest.raises(ConfigError, match=r"scheduler=plateau steps on the validation metric, "
                       r"but there is no validation data"):  # fmt: skip
        run_train(["model=cnn", "trainer.max_epochs=1", "scheduler=plateau",
                   "trainer.limit_val_batches=0"])  # fmt: skip


def test_metrics_json_that_is_a_folder_is_one_sentence_and_leaves_nothing(tmp_path: Path):
    from trainkit.run_files import write_metrics

    (tmp_path / "metrics.json").mkdir()
    with pytest.raises(TrainkitError, match=r"metrics\.json is a folder, not a file"):
        write_metrics(tmp_path, {"status": "ok"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("optimizer.lr=nan", "optimizer.lr must be a positive, finite number, got nan"),
        ("optimizer.lr=inf", "optimizer.lr must be a positive, finite number, got inf"),
        ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val must be a positive number"),
        ("trainer.val_check_interval=1.5", "to validate every N iterations give an integer N"),
    ],
)
def test_values_that_cannot_be_meant_are_refused(compose_cfg, arg, message):
    from trainkit.config import check_config

    with pytest.raises(ConfigError, match=message):
        check_config(compose_cfg([arg]))


def test_a_value_split_at_a_space_gets_a_hint_to_quote_it(tmp_path: Path):
    out = run_script(["model=cnn", "ckpt_path=/my", "runs/x"], tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        "error: runs/x is not a setting (key=value): the shell split a value at a space; "
        "quote it whole: 'ckpt_path=/my runs/x'."
    )


def test_seed_null_draws_a_seed_and_records_it(run_train):
    import torch

    first, first_dir = run_train(["model=regression", "trainer.max_epochs=1", "seed=null"], "a")
    second, _ = run_train(["model=regression", "trainer.max_epochs=1", "seed=null"], "b")
    assert first["seed"] != second["seed"] and first["seed"] != 0  # drawn, not always 0
    last = torch.load(first_dir / "checkpoints" / "last.ckpt", weights_only=False)
    config = last["trainkit"]["config"]
    assert config["seed"] == config["data"]["seed"] == first["seed"]  # the split used it too
    assert json.loads((first_dir / "metrics.json").read_text())["seed"] == first["seed"]


def test_the_printed_resume_command_pastes_for_any_folder(tmp_path: Path):
    from trainkit.callbacks.checkpointing import resume_command

    folder = tmp_path / "my runs" / "café·run"
    args = shlex.split(resume_command(folder))  # as the shell reads the pasted line
    assert args[:2] == ["python", "train.py"]
    ckpt = OverridesParser.create().parse_override(args[-1])
    assert (ckpt.key_or_group, ckpt.value()) == ("ckpt_path", str(folder))


def test_a_full_disk_is_one_sentence(tmp_path: Path, monkeypatch):
    import errno
    import shutil as shutil_module
    from collections import namedtuple

    from trainkit import hydra_callbacks
    from trainkit.cli import user_error

    # before the run starts: the disk holding the log folder has no room left
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**9, 10**9, 2048))
    with pytest.raises(SystemExit, match=r"the disk holding .* is full \(2 KB free\): free some"):
        hydra_callbacks._make_dir(str(tmp_path / "run"))
    # while it runs: a write that fails for want of space
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.yaml"))
    assert str(user_error(full)).startswith(f"the disk is full: could not write {tmp_path}/x.yaml")
