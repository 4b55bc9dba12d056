"""Every config composes, and the objects it describes can be built."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from trainkit.building import build_model, build_trainer
from trainkit.config import check_config
from trainkit.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def build(cfg):
    """Data (set up), model with the data's dimensions, Trainer with callbacks and loggers."""
    dm = instantiate(cfg.data)
    dm.setup("fit")
    model = build_model(cfg, dm)
    trainer, _, _ = build_trainer(cfg)
    return dm, model, trainer


def test_no_arguments_trains_the_cnn_on_digits(compose_cfg):
    cfg = compose_cfg([])
    assert cfg.model._target_.endswith("ImageClassifier")
    assert cfg.data._target_.endswith("DigitsDataModule")
    assert cfg.trainer.accelerator == "auto"


@pytest.mark.parametrize(
    ("model", "data"),
    [
        ("cnn", "DigitsDataModule"),
        ("regression", "LinearDataModule"),
        ("text", "SyntheticTextDataModule"),
    ],
)
def test_each_model_picks_its_data_and_the_command_line_wins(compose_cfg, model, data):
    cfg = compose_cfg([f"model={model}"])
    assert cfg.data._target_.endswith(data)
    if model == "regression":
        assert compose_cfg([f"model={model}", "data=diabetes"]).data._target_.endswith(
            "DiabetesDataModule"
        )
        assert compose_cfg(["data=diabetes", f"model={model}"]).data._target_.endswith(
            "DiabetesDataModule"
        )


@pytest.mark.parametrize("model", options("model"))
def test_every_model_builds_with_its_default_data(compose_cfg, model):
    from trainkit.summary import is_best_checkpoint

    cfg = compose_cfg([f"model={model}"])
    dm, net, trainer = build(cfg)
    best = next(c for c in trainer.callbacks if is_best_checkpoint(c))
    assert best.monitor == cfg.model.get("monitor", "val/loss")  # val/loss when not set
    assert (best.monitor, best.mode) == ("val/loss", "min") or cfg.model.monitor_mode == best.mode


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_builds(compose_cfg, experiment):
    build(compose_cfg([f"experiment={experiment}"]))


@pytest.mark.parametrize("debug", options("debug"))
def test_every_debug_config_builds(compose_cfg, debug):
    cfg = compose_cfg([f"debug={debug}"])
    assert cfg.task_name == "debug"
    build(cfg)


@pytest.mark.parametrize("data", ["digits", "linear", "diabetes", "synthetic_text"])
def test_every_embedded_dataset_builds(compose_cfg, data):
    model = {"digits": "cnn", "synthetic_text": "text"}.get(data, "regression")
    build(compose_cfg([f"model={model}", f"data={data}"]))


@pytest.mark.parametrize("optimizer", options("optimizer"))
def test_every_optimizer_composes(compose_cfg, optimizer):
    assert compose_cfg([f"optimizer={optimizer}"]).optimizer.lr > 0


@pytest.mark.parametrize("scheduler", options("scheduler"))
def test_every_scheduler_composes_and_resolves(compose_cfg, scheduler):
    cfg = compose_cfg([f"scheduler={scheduler}"])
    OmegaConf.to_container(cfg.scheduler, resolve=True)


def test_trainer_knobs_need_no_plus_prefix(compose_cfg):
    knobs = [
        "max_epochs=3",
        "max_steps=100",
        "accumulate_grad_batches=4",
        "val_check_interval=25",
        "check_val_every_n_epoch=null",
        "gradient_clip_val=1.0",
        "precision=bf16-mixed",
        "accelerator=cpu",
        "devices=1",
        "strategy=auto",
        "log_every_n_steps=5",
        "deterministic=true",
        "limit_train_batches=10",
        "limit_val_batches=0.5",
        "limit_test_batches=3",
        "num_nodes=1",
    ]
    cfg = compose_cfg([f"trainer.{k}" for k in knobs])
    assert cfg.trainer.accumulate_grad_batches == 4 and cfg.trainer.check_val_every_n_epoch is None


def test_callbacks_none_builds_a_trainer_without_our_callbacks(compose_cfg):
    from trainkit.callbacks.budget_table import BudgetTable

    _, _, trainer = build(compose_cfg(["callbacks=none"]))
    assert not any(isinstance(c, BudgetTable) for c in trainer.callbacks)


def test_impossible_values_are_refused_before_anything_runs(compose_cfg):
    from omegaconf import open_dict

    cases = [
        ("data.batch_size", 0, "data.batch_size must be a positive integer"),
        ("data.batch_size", -8, "data.batch_size must be a positive integer"),
        ("trainer.accumulate_grad_batches", 0, "accumulate_grad_batches must be an integer >= 1"),
        ("optimizer.lr", -0.1, "optimizer.lr must be a positive, finite number"),
        ("optimizer.lr", 0, "optimizer.lr must be a positive, finite number"),
        ("trainer.max_epochs", -2, "max_epochs must be an integer >= -1"),
        ("trainer.max_steps", -3, "max_steps must be an integer >= -1"),
        ("trainer.val_check_interval", 2.5, "a float is a fraction of an epoch"),
        ("trainer.check_val_every_n_epoch", None, "give trainer.val_check_interval as an integer"),
        ("trainer.check_val_every_n_epoch", 0, "check_val_every_n_epoch must be an integer >= 1"),
        ("seed", -5, "seed must be an integer from 0"),
        ("seed", "x", "seed must be an integer from 0"),
        ("trainer.max_steps", -1, "would train forever"),  # with max_epochs=-1 below
        ("trainer.precision", "bogus", "not a precision Lightning knows"),
        ("trainer.devices", 0, "trainer.devices must be >= 1"),
        ("trainer.max_time", "abc", "trainer.max_time must be"),
    ]
    base = compose_cfg([])
    check_config(base)  # the defaults pass
    for key, value, message in cases:
        cfg = base.copy()
        with open_dict(cfg):
            OmegaConf.update(cfg, key, value)
            if message == "would train forever":
                cfg.trainer.max_epochs = -1
        with pytest.raises(ConfigError, match=message):
            check_config(cfg)


def test_a_model_and_data_that_do_not_fit_together(compose_cfg):
    cfg = compose_cfg(["model=text", "data=digits"])
    dm = instantiate(cfg.data)
    with pytest.raises(ConfigError, match=r"TextClassifier needs \['vocab_size'\], which neither"):
        build_model(cfg, dm)
