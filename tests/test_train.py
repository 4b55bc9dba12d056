"""End-to-end runs in-process: what a user gets in the run directory and in TensorBoard."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from helpers import tb_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

FAST = [
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=5",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
]


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(tb_dir(run_dir)), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.parametrize("model", ["cnn", "regression", "text"])
def test_fast_dev_run_of_each_model(run_train, model):
    summary, _ = run_train([f"model={model}", "debug=fast_dev_run"])
    assert summary["status"] == "ok"
    assert summary["global_step"] == 1 and summary["iterations"] == 1
    assert summary["test"], "fast_dev_run still tests one batch"


def test_metrics_json_is_complete(run_train):
    summary, run_dir = run_train(["model=cnn", *FAST])
    for stage in ("train", "val", "test"):
        assert set(summary[stage]) == {"loss", "acc"}, stage
        assert all(math.isfinite(v) for v in summary[stage].values())
    assert (summary["global_step"], summary["epochs"], summary["iterations"]) == (10, 2, 10)
    assert summary["validations"] == 2
    assert Path(summary["best_model_path"]).is_file()
    assert Path(summary["last_model_path"]).name == "last.ckpt"
    assert summary["monitor"] == "val/acc" and 0 <= summary["best_score"] <= 1
    assert summary["fit_seconds"] > 0 and summary["train_samples_per_second"] > 0
    assert summary["train_samples_seen"] == 10 * 32
    assert summary["plan"]["iterations_per_epoch"] == 5
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir())[-1] == "last.ckpt"


def test_tensorboard_has_step_wise_and_epoch_wise_curves(run_train):
    _, run_dir = run_train(["model=cnn", *FAST])
    tags = scalars(run_dir)
    # step-wise: x is the iteration, one point per logged iteration
    assert [s for s, _ in tags["train/loss"]] == list(range(1, 11))
    assert [s for s, _ in tags["val/acc"]] == [5, 10]  # validation after iterations 5 and 10
    # epoch-wise: x is the number of completed epochs
    for tag in ("epoch/train_loss", "epoch/train_acc", "epoch/val_loss", "epoch/val_acc"):
        assert [s for s, _ in tags[tag]] == [1, 2], tag
    assert [s for s, _ in tags["train/lr"]] == list(range(1, 11))
    # no duplicates of one quantity, no `epoch` counter, no hp_metric = -1 placeholder
    assert not {"epoch", "hp_metric", "train/loss_step", "train/loss_epoch"} & set(tags)


def test_step_curves_are_indexed_by_iteration_under_accumulation(run_train):
    _, run_dir = run_train(
        [
            "model=cnn",
            *FAST,
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=6",
            "trainer.accumulate_grad_batches=2",
        ]
    )
    # 6 iterations = 3 optimizer steps, logged once per step, at the iteration that completes it;
    # the first iteration is always logged (the untrained model's loss)
    tags = scalars(run_dir)
    assert [s for s, _ in tags["train/loss"]] == [1, 2, 4, 6]
    assert [s for s, _ in tags["train/lr"]] == [1, 2, 4, 6]  # the same points


def test_linear_regression_recovers_slope_and_intercept(run_train):
    summary, _ = run_train(["experiment=regression_linear"])
    report = summary["model_report"]
    assert report["weights"][0] == pytest.approx(2.0, abs=0.05)
    assert report["bias"] == pytest.approx(1.0, abs=0.05)
    assert summary["test"]["r2"] > 0.98


@pytest.mark.slow
def test_diabetes_mlp_learns(run_train):
    summary, _ = run_train(
        [
            "model=regression",
            "data=diabetes",
            "model.hidden=[32]",
            "optimizer=adam",
            "optimizer.lr=1e-2",
            "trainer.max_epochs=30",
        ]
    )
    assert summary["test"]["r2"] > 0.3  # disease progression: linear models get ~0.45
    assert summary["test"]["rmse"] > 10  # reported in the target's units, not standardised


def test_text_model_beats_a_single_keyword(run_train):
    summary, _ = run_train(["model=text", "trainer.max_epochs=5"])
    assert summary["test"]["acc"] > 0.75


def test_cnn_five_epochs_reaches_97_percent(run_train):
    """The README's main command: `python train.py model=cnn trainer.max_epochs=5`."""
    summary, _ = run_train(["model=cnn", "trainer.max_epochs=5"])
    assert summary["test"]["acc"] >= 0.97
    assert summary["epochs"] == 5


def test_validation_interval_longer_than_an_epoch_is_one_sentence(run_train):
    from trainkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"val_check_interval=100 .* more than one epoch \(40"):
        run_train(["model=cnn", "trainer.val_check_interval=100"])


def test_validation_every_n_iterations_across_epochs(run_train):
    summary, run_dir = run_train(
        [
            "model=regression",  # 25 iterations per epoch
            "trainer.max_epochs=5",
            "trainer.val_check_interval=40",
            "trainer.check_val_every_n_epoch=null",
            "trainer.limit_val_batches=1",
            "test=false",
        ]
    )
    # 125 iterations: after 40, 80 and 120, each in the middle of an epoch (2nd, 4th, 5th)
    assert summary["validations"] == 3
    assert [s for s, _ in scalars(run_dir)["val/mse"]] == [40, 80, 120]


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        (["trainer.limit_val_batches=0"], "there is no validation data"),
        (["trainer.max_epochs=-1", "trainer.max_steps=2"], "the run ends after 2 iteration(s)"),
    ],
)
def test_a_run_without_validation_trains_its_budget_and_says_so(run_train, caplog, overrides, why):
    args = ["model=cnn", "trainer.max_epochs=2", "trainer.limit_train_batches=3", *overrides]
    summary, _ = run_train(args)
    assert summary["status"] == "ok" and summary["validations"] == 0
    assert summary["iterations"] == summary["plan"]["iterations"] and summary["val"] == {}
    assert summary["best_model_path"] == "" and summary["test"]  # the last weights are tested
    assert f"no validation in this run: {why}" in caplog.text
    assert "early stopping and the best checkpoint are off" in caplog.text


def test_bf16_mixed_precision_runs_on_cpu(run_train):
    summary, _ = run_train(
        ["model=cnn", *FAST, "trainer.max_epochs=1", "trainer.precision=bf16-mixed"]
    )
    assert summary["status"] == "ok" and summary["test"]["acc"] > 0.3


@pytest.mark.slow
def test_torch_compile_trains_and_checkpoints_load_without_it(run_train):
    import torch

    from trainkit.models.regression import Regressor

    summary, _ = run_train(["model=regression", "compile=true", "trainer.max_epochs=2"])
    assert summary["test"]["r2"] > 0.9
    # the checkpoint holds the plain module's weights (no `_orig_mod.` of the compiled wrapper):
    # it loads into a plain model
    ckpt = torch.load(summary["best_model_path"], weights_only=False)
    assert not [k for k in ckpt["state_dict"] if "_orig_mod" in k]
    model = Regressor.load_from_checkpoint(summary["best_model_path"])
    assert type(model) is Regressor
