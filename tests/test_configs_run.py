"""Every debug/ and experiment/ config runs end to end with every model it applies to, as the
README lists them (`python train.py debug=overfit model=text`, `python train.py experiment=...`)."""

from __future__ import annotations

import pytest
from helpers import CONF, tb_dir

MODELS = ["cnn", "regression", "text"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_the_lists_below_cover_every_config():
    assert options("debug") == ["fast_dev_run", "limit", "overfit"]
    assert options("experiment") == ["cnn_digits", "regression_linear", "text_synthetic"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("debug", ["fast_dev_run", "limit"])
def test_quick_debug_configs_run_with_every_model(run_train, debug, model):
    summary, _ = run_train([f"debug={debug}", f"model={model}"])
    assert summary["status"] == "ok" and summary["test"]
    expected = {"fast_dev_run": (1, 1), "limit": (2, 10)}[debug]  # (epochs, iterations)
    assert (summary["epochs"], summary["iterations"]) == expected


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_overfit_drives_the_training_loss_down_with_every_model(run_train, model):
    summary, run_dir = run_train(["debug=overfit", f"model={model}"])
    assert summary["status"] == "ok" and summary["epochs"] == 50 and summary["iterations"] == 150
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tb_dir(run_dir)))
    events.Reload()
    loss = "mse" if model == "regression" else "loss"  # the regression's loss is its MSE
    losses = [e.value for e in events.Scalars(f"epoch/train_{loss}")]
    assert losses[-1] < 0.2 * losses[0], losses  # the same 3 batches, memorised


@pytest.mark.slow
@pytest.mark.parametrize(
    ("experiment", "check"),
    [
        ("cnn_digits", lambda s: s["test"]["acc"] > 0.97),
        ("regression_linear", lambda s: abs(s["model_report"]["weights"][0] - 2) < 0.05),
        ("text_synthetic", lambda s: s["test"]["acc"] > 0.85),
    ],
)
def test_every_experiment_runs_and_reaches_its_point(run_train, experiment, check):
    summary, _ = run_train([f"experiment={experiment}"])
    assert summary["status"] == "ok" and check(summary), summary["test"]
    if experiment == "regression_linear":  # its comment: 8 iterations an epoch, 240 in all
        assert summary["plan"]["iterations_per_epoch"] == 8 and summary["iterations"] == 240


def test_lightnings_overfit_batches_with_a_trainkit_datamodule_is_one_sentence(run_train):
    from trainkit.errors import ConfigError

    with pytest.raises(ConfigError, match="use debug=overfit"):
        run_train(["model=regression", "trainer.overfit_batches=3"])
