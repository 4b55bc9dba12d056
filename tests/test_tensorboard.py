"""What a user sees in TensorBoard, read back from the event files: one tag per quantity, step
curves by iteration, epoch curves by the stated rule, train and val on one chart (Custom
Scalars), a curated HParams row, images of the confusion matrix (docs/tensorboard.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import tb_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from trainkit.budget import MIN_CURVE_POINTS, log_interval, plan
from trainkit.tensorboard_views import SUMMARY

# the CNN, 10 iterations an epoch, everything logged at every optimizer step
CNN = ["model=cnn", "trainer.limit_train_batches=10", "trainer.limit_val_batches=2"]


SUMMARIES = {f"{SUMMARY}/{n}" for n in ("val_best", "val_last", "test", "train_loss",
                                         "samples_per_sec")}  # fmt: skip


def events(run_dir: Path) -> EventAccumulator:
    sizes = {"scalars": 0, "tensors": 0, "images": 0}
    acc = EventAccumulator(str(tb_dir(run_dir)), size_guidance=sizes)
    acc.Reload()
    return acc


def curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = events(run_dir)
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def steps(points: list[tuple[int, float]]) -> list[int]:
    return [s for s, _ in points]


@pytest.mark.parametrize(
    ("model", "tags"),
    [
        ("cnn", {"loss", "acc"}),
        ("regression", {"mse", "rmse", "mae", "r2"}),  # its loss is named: never beside a CE
    ],
)
def test_one_tag_per_quantity(run_train, model, tags):
    _, run_dir = run_train(
        [f"model={model}", "trainer.max_epochs=2", "trainer.limit_train_batches=5"]
    )
    found = set(curves(run_dir))
    loss = "loss" if model == "cnn" else "mse"
    train_epoch = {"loss", "acc"} if model == "cnn" else {"mse"}
    expected = (
        {f"train/{loss}", "train/lr", "train/samples_per_sec"}
        | {f"val/{t}" for t in tags}
        | {f"test/{t}" for t in tags}
        | {f"epoch/train_{t}" for t in train_epoch}
        | {f"epoch/val_{t}" for t in tags}
        | SUMMARIES  # the HParams row's five metrics, the same for every model
    )
    assert found == expected  # no `epoch` counter, no _step/_epoch twins


def check_epoch_rule(run_dir: Path, epoch_iterations: int, expected: dict[int, int]) -> None:
    """epoch/val_loss at epoch e is the last validation (by iteration) of epoch e."""
    c = curves(run_dir)
    by_iteration = dict(c["val/loss"])
    assert dict(c["epoch/val_loss"]) == {e: by_iteration[i] for e, i in expected.items()}
    for e, i in expected.items():  # the validation happened in that epoch, and was its last
        assert (e - 1) * epoch_iterations < i <= e * epoch_iterations
        assert not [j for j in by_iteration if i < j <= e * epoch_iterations]


@pytest.mark.parametrize(
    ("overrides", "validations", "expected"),
    [
        ([], [10, 20, 30, 40], {1: 10, 2: 20, 3: 30, 4: 40}),  # once an epoch, at its end
        (
            ["trainer.val_check_interval=4"],
            [4, 8, 14, 18, 24, 28, 34, 38],
            {1: 8, 2: 18, 3: 28, 4: 38},
        ),
        (
            ["trainer.val_check_interval=7", "trainer.check_val_every_n_epoch=null"],
            [7, 14, 21, 28, 35],  # across epoch boundaries: epoch 3 holds 21 and 28
            {1: 7, 2: 14, 3: 28, 4: 35},
        ),
        (["trainer.check_val_every_n_epoch=2"], [20, 40], {2: 20, 4: 40}),
    ],
)
def test_epoch_curves_follow_the_stated_rule(run_train, overrides, validations, expected):
    args = [*CNN, "trainer.max_epochs=4", "callbacks.early_stopping=null", *overrides]
    _, run_dir = run_train(args)
    assert steps(curves(run_dir)["val/loss"]) == validations  # every validation, by iteration
    check_epoch_rule(run_dir, 10, expected)


def test_epoch_curves_of_a_resumed_run(run_train):
    # validation every 4 iterations within 10-iteration epochs; stopped mid-epoch 2 (at step 15:
    # after its validations at 14), resumed to the end of epoch 3
    args = [*CNN, "trainer.val_check_interval=4", "callbacks.early_stopping=null", "seed=5"]
    _, first = run_train(
        [
            *args,
            "trainer.max_epochs=-1",
            "trainer.max_steps=15",
            "test=false",
            "callbacks.last_checkpoint.every_n_train_steps=15",
        ],  # fmt: skip
        run_dir="first",
    )
    _, resumed = run_train([*args, "trainer.max_epochs=3", f"ckpt_path={first}"], run_dir="resumed")
    _, straight = run_train([*args, "trainer.max_epochs=3"], run_dir="straight")
    # the resumed run writes into its run's TensorBoard folder: one run, its curves going on
    assert tb_dir(resumed) == tb_dir(first) != tb_dir(straight)
    c = curves(resumed)
    assert steps(c["val/loss"]) == [4, 8, 14, 18, 24, 28]  # before and after the resume
    check_epoch_rule(resumed, 10, {1: 8, 2: 18, 3: 28})
    assert dict(c["epoch/val_loss"]) == pytest.approx(dict(curves(straight)["epoch/val_loss"]))


def test_step_curves_share_the_iteration_axis_and_start_at_the_first(run_train):
    args = [*CNN, "trainer.max_epochs=2", "trainer.accumulate_grad_batches=4"]
    _, run_dir = run_train([*args, "trainer.log_every_n_steps=1"])
    c = curves(run_dir)
    # 10 iterations an epoch, an optimizer step every 4 and at each epoch's end
    assert steps(c["train/loss"]) == [1, 4, 8, 10, 14, 18, 20]
    assert steps(c["train/lr"]) == steps(c["train/loss"])  # the lr of the same steps
    assert steps(c["train/samples_per_sec"]) == steps(c["train/loss"])[1:]
    assert steps(c["val/loss"]) == [10, 20] and steps(c["test/loss"]) == [20]
    texts = events(run_dir).Tensors("budget/actual/text_summary")
    assert [t.step for t in texts] == [20]  # the table of what happened: at the last iteration


def test_every_default_run_gets_enough_points():
    # `python train.py model=cnn trainer.max_epochs=5 trainer.accumulate_grad_batches=4 ...`
    accumulating = plan(
        train_samples=1257,
        batch_size=32,
        max_epochs=5,
        accumulate_grad_batches=4,
        log_every_n_steps=10,
    )
    assert accumulating.optimizer_steps == 50 and log_interval(accumulating) == 1
    for p in (
        accumulating,
        plan(train_samples=1257, batch_size=32, max_epochs=5, log_every_n_steps=10),
        plan(train_samples=800, batch_size=32, max_epochs=10, log_every_n_steps=10),
        plan(train_samples=1257, batch_size=128, max_epochs=3, log_every_n_steps=10),
    ):
        assert p.optimizer_steps // log_interval(p) >= min(p.optimizer_steps, MIN_CURVE_POINTS)
    long = plan(train_samples=60_000, batch_size=64, max_epochs=10, log_every_n_steps=10)
    assert log_interval(long) == 10  # the configured interval: no per-iteration cost


def test_train_and_val_on_one_chart(run_train):
    _, run_dir = run_train([*CNN, "trainer.max_epochs=1"])
    (event,) = events(run_dir).Tensors("custom_scalars__config__")  # after the 1st validation
    layout = layout_pb2.Layout()
    layout.ParseFromString(event.tensor_proto.string_val[0])
    charts = {
        (c.title, ch.title): list(ch.multiline.tag) for c in layout.category for ch in c.chart
    }
    assert charts[("train and val: loss", "by iteration (val: every validation)")] == [
        "^train/loss$",
        "^val/loss$",
    ]
    by_epoch = "by epoch (train: the epoch's mean; val: the epoch's last validation)"
    assert charts[("train and val: acc", by_epoch)] == ["^epoch/train_acc$", "^epoch/val_acc$"]


def session(run_dir: Path) -> tuple[dict, dict[str, list[tuple[int, float]]]]:
    """The HParams session of a run (its settings) and the scalars of its event file of its
    own (`*.hparams`), in the run's TensorBoard folder."""
    (path,) = tb_dir(run_dir).glob("events.out.tfevents.*.hparams")  # one: an update replaces it
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    (event,) = acc.Tensors("_hparams_/session_start_info")
    data = plugin_data_pb2.HParamsPluginData.FromString(
        acc.summary_metadata["_hparams_/session_start_info"].plugin_data.content
    )
    assert event.step == 0 and data.session_start_info.group_name == tb_dir(run_dir).name
    settings = {
        k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
        for k, v in data.session_start_info.hparams.items()
    }
    scalars = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
    return settings, scalars


def test_hparams_are_curated_typed_and_carry_the_final_metrics(run_train, tmp_path):
    # a run whose best validation is not its last (see tests/test_nothing_lost.py, BUMPY)
    args = ["model=cnn", "trainer.limit_train_batches=3", "callbacks.early_stopping=null",
            "optimizer.lr=0.05", "seed=1", "trainer.deterministic=true", "trainer.max_epochs=3",
            "data.drop_last=true"]  # fmt: skip
    summary, run_dir = run_train(args)
    hp, metrics = session(run_dir)
    assert hp["model"] == "cnn" and hp["optimizer"] == "adam" and hp["scheduler"] == "none"
    assert hp["cnn.channels"] == "[32,64]" and hp["cnn.hidden"] == 128  # under the model's name
    assert hp["monitor"] == "val/acc"
    assert hp["lr"] == 0.05 and hp["batch_size"] == 32 and hp["seed"] == 1
    assert hp["max_epochs"] == 3 and hp["data.drop_last"] is True  # a bool, from the CLI
    assert hp["run.iterations"] == 9 and hp["run.epochs"] == 3
    assert not [k for k in hp if "_target_" in k or k.startswith(("data.num_workers", "model."))]
    assert "None" not in hp.values()
    # TensorBoard ticks the first five by name when no setting differs between runs: the short
    # names come first (only other command-line keys, here data.drop_last, may come between)
    assert [k for k in sorted(hp) if "." not in k][:5] == [
        "batch_size", "data", "lr", "max_epochs", "model"
    ]  # fmt: skip
    # the metrics: the same five for every model (sorted first, all ticked), at the last iteration
    main = curves(run_dir)
    assert set(metrics) == SUMMARIES and sorted(main)[:5] == sorted(SUMMARIES)
    value = {t.partition("/")[2]: points[-1][1] for t, points in metrics.items()}
    assert value["val_best"] == pytest.approx(summary["best_score"])
    assert value["val_best"] == pytest.approx(max(v for _, v in main["val/acc"]))
    assert value["val_last"] == pytest.approx(main["val/acc"][-1][1]) != value["val_best"]
    assert value["test"] == pytest.approx(summary["test"]["acc"])
    assert value["train_loss"] == pytest.approx(main["epoch/train_loss"][-1][1], rel=1e-5)
    assert value["samples_per_sec"] == pytest.approx(summary["train_samples_per_second"])
    # no experiment summary anywhere: TensorBoard builds the table from every run's own
    assert "_hparams_/experiment" not in events(run_dir).Tags()["tensors"]
    # and the same settings beside the event files
    saved = (tb_dir(run_dir) / "hparams.yaml").read_text()
    assert "cnn.hidden: 128" in saved and "lr: 0.05" in saved


def test_a_resumed_run_is_one_run_and_one_row(run_train):
    args = [*CNN, "callbacks.early_stopping=null"]
    _, first = run_train([*args, "trainer.max_epochs=1"], run_dir="first")
    summary, resumed = run_train([*args, "trainer.max_epochs=2", f"ckpt_path={first}"], "more")
    assert tb_dir(resumed) == tb_dir(first)
    assert [p.name for p in tb_dir(first).parent.iterdir()] == [tb_dir(first).name]
    hp, metrics = session(resumed)  # one session file: the resume replaced the first's
    assert hp["max_epochs"] == 2 and hp["run.iterations"] == 20
    assert [s for s, _ in metrics[f"{SUMMARY}/test"]] == [20]
    assert metrics[f"{SUMMARY}/test"][0][1] == pytest.approx(summary["test"]["acc"])


def test_confusion_matrix_and_misclassified_images_at_each_validation(run_train):
    _, run_dir = run_train([*CNN, "trainer.max_epochs=2"])
    acc = events(run_dir)  # a tag group of their own, after the scalars (epoch, test, train, val)
    assert set(acc.Tags()["images"]) == {"val_images/confusion_matrix", "val_images/misclassified"}
    for tag in acc.Tags()["images"]:
        assert [i.step for i in acc.Images(tag)] == [10, 20]
    # none for a model that has no classes; and an off switch
    _, reg = run_train(["model=regression", "trainer.max_epochs=1"], run_dir="reg")
    assert events(reg).Tags()["images"] == []
    _, off = run_train([*CNN, "trainer.max_epochs=1", "callbacks.confusion_matrix=null"], "off")
    assert events(off).Tags()["images"] == []


def test_metrics_json_and_the_hparams_agree(run_train):
    summary, run_dir = run_train(["model=regression", "trainer.max_epochs=2"])
    hp, metrics = session(run_dir)
    assert set(metrics) == SUMMARIES and hp["monitor"] == "val/mse"
    assert metrics[f"{SUMMARY}/test"][0][1] == pytest.approx(summary["test"]["mse"])
    assert metrics[f"{SUMMARY}/val_best"][0][1] == pytest.approx(summary["best_score"])
    assert hp["regression.hidden"] == "[]"  # never beside the classifiers' hidden widths
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"
