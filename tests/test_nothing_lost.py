"""Nothing lost, nothing silently wrong: the best checkpoint survives a resume, the class map and
the vocabulary come from the checkpoint, files are written atomically, and every bad input or
fault ends with one sentence (issue: interrupts, resume, label maps, bad input)."""

from __future__ import annotations

import csv
import errno
import json
import os
from pathlib import Path

import pytest
import torch
from helpers import make_cfg, tb_dir

from trainkit.errors import ConfigError, DataError, TrainkitError

# the CNN, 20 iterations an epoch at the default learning rate, then 100 times higher every
# epoch: validation accuracy peaks in the first epoch (0.84, then 0.10 three times with torch
# 2.14; 0.87, 0.14, 0.10, 0.10 with torch 2.3): the best epoch is not the last one
BUMPY = [
    "model=cnn",
    "trainer.limit_train_batches=20",
    "callbacks.early_stopping=null",
    "scheduler=exponential",
    "scheduler.gamma=100",
    "seed=1",
    "trainer.deterministic=true",
]


def test_a_resumed_run_keeps_its_best_checkpoint(run_train):
    first, first_dir = run_train([*BUMPY, "trainer.max_epochs=2"], run_dir="first")
    scores = [s for _, s in val_points(first_dir, "epoch/val_acc")]
    assert scores[0] > scores[1], f"the best epoch should not be the last: {scores}"
    resumed, resumed_dir = run_train(
        [*BUMPY, "trainer.max_epochs=4", f"ckpt_path={first_dir}"], run_dir="resumed"
    )
    # one TensorBoard run: the resumed run's curve goes on after the first's two epochs
    later = [s for _, s in val_points(resumed_dir, "epoch/val_acc")][2:]
    assert len(later) == 2 and max(later) < first["best_score"]  # worse than the old best
    # the old best stays best: its score, and its file, carried into the new run directory
    assert resumed["best_score"] == pytest.approx(first["best_score"])
    best = Path(resumed["best_model_path"])
    assert best.parent == resumed_dir / "checkpoints" and best.is_file()
    assert best.name == Path(first["best_model_path"]).name
    assert torch.load(best, weights_only=False)["epoch"] == 0
    # the test ran on that checkpoint, and the sweeper gets its score
    from trainkit.training import optimized_value

    assert optimized_value(resumed, "val/acc") == resumed["best_score"]
    assert resumed["test"]["acc"] == pytest.approx(first["test"]["acc"], abs=1e-6)


def val_points(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tb_dir(run_dir)))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def write_reviews(path: Path, flip: bool = False, extra_label: str | None = None) -> None:
    """Two classes ('bad', 'good') whose sorted order flips when renamed to 'zbad' / 'agood'."""
    good, bad = ("agood", "zbad") if flip else ("good", "bad")
    rows = [("text", "label")]
    for i in range(120):
        rows.append((f"a wonderful great film number {i}", good))
        rows.append((f"an awful boring film number {i}", bad))
    if extra_label:  # enough rows to reach every split of a stratified split
        rows += [(f"something else entirely {i}", extra_label) for i in range(10)]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_eval_reads_changed_data_with_the_checkpoints_class_map(run_train, tmp_path):
    from trainkit.evaluation import evaluate

    data = tmp_path / "reviews.csv"
    write_reviews(data)
    args = ["model=text", "data=text_csv", f"data.path={data}", "data.min_freq=1"]
    summary, run_dir = run_train([*args, "trainer.max_epochs=3"], run_dir="run")
    assert summary["test"]["acc"] > 0.9
    # evaluated as a deliberate new test set (data=...): read with the checkpoint's class map
    new_set = [f"ckpt_path={run_dir}", *args[1:]]
    # the same rows, labels renamed so that their sorted order flips: the class ids would swap
    write_reviews(data, flip=True)
    with pytest.raises(DataError, match=r"the label\(s\) \['agood', 'zbad'\], which the"):
        evaluate(make_cfg(new_set, tmp_path / "e1", "eval"))
    # the same labels in another order in the file: read with the checkpoint's map, same score
    write_reviews(data)
    rows = list(csv.reader(data.open()))
    rows = [rows[0], *reversed(rows[1:])]
    with data.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    # without data=..., the reordered file is refused: it would not rebuild the run's split
    with pytest.raises(DataError, match=r"rows reordered"):
        evaluate(make_cfg([f"ckpt_path={run_dir}"], tmp_path / "e3", "eval"))
    cfg = make_cfg([*new_set, "predict=true"], tmp_path / "e2", "eval")
    result = evaluate(cfg)
    assert result["test_set"].startswith("a new test set")
    with open(result["predictions"]) as f:
        predictions = list(csv.DictReader(f))
    assert set(predictions[0]) >= {"p_bad", "p_good"}
    right = sum(p["target"] == p["prediction"] for p in predictions) / len(predictions)
    assert right > 0.9
    for p in predictions:  # the probability columns belong to the names in their headers
        assert (float(p["p_good"]) > 0.5) == (p["prediction"] == "good")


def test_eval_with_a_label_the_model_never_saw_is_one_sentence(run_train, tmp_path):
    from trainkit.evaluation import evaluate

    data = tmp_path / "reviews.csv"
    write_reviews(data)
    args = ["model=text", "data=text_csv", f"data.path={data}", "trainer.max_epochs=1"]
    _, run_dir = run_train(args)
    write_reviews(data, extra_label="meh")
    new_set = [f"ckpt_path={run_dir}", *args[1:3]]  # a deliberate new test set
    with pytest.raises(DataError, match=r"the label\(s\) \['meh'\], which the checkpoint's model"):
        evaluate(make_cfg(new_set, tmp_path / "e", "eval"))


def test_the_vocabulary_comes_from_the_checkpoint(run_train, tmp_path):
    from trainkit.evaluation import evaluate

    data = tmp_path / "reviews.csv"
    write_reviews(data)
    args = ["model=text", "data=text_csv", f"data.path={data}", "trainer.max_epochs=2"]
    summary, run_dir = run_train(args)
    # new words everywhere: a vocabulary rebuilt from the file would give other ids (and sizes)
    text = data.read_text().replace("film", "movie").replace("number", "take")
    data.write_text(text)
    new_set = [f"ckpt_path={run_dir}", *args[1:3]]  # a deliberate new test set
    result = evaluate(make_cfg(new_set, tmp_path / "e", "eval"))
    assert result["metrics"]["test/acc"] > 0.9  # "wonderful" and "awful" keep their ids


def test_resume_asks_for_more_than_the_checkpoint_did(run_train):
    _, run_dir = run_train(["model=regression", "trainer.max_epochs=2", "test=false"])
    with pytest.raises(ConfigError, match=r"has already trained 2 epoch\(s\); to continue, set"):
        run_train(["model=regression", "trainer.max_epochs=2", f"ckpt_path={run_dir}"], "again")


def test_a_stale_temp_file_of_a_killed_write_is_removed_on_resume(run_train):
    _, run_dir = run_train(["model=regression", "trainer.max_epochs=1", "test=false"])
    stale = run_dir / "checkpoints" / "last.ckpt.tmp-999999"  # no such process
    stale.write_bytes(b"half a checkpoint")
    mine = run_dir / "checkpoints" / f"last.ckpt.tmp-{os.getpid()}"  # a live process's
    mine.write_bytes(b"being written")
    run_train(["model=regression", "trainer.max_epochs=2", f"ckpt_path={run_dir}"], "resumed")
    assert not stale.exists() and mine.exists()


def test_metrics_json_is_written_atomically_and_a_broken_one_is_survived(run_train, tmp_path):
    from trainkit.checkpoints import resolve_checkpoint
    from trainkit.run_files import write_json

    path = tmp_path / "m.json"
    write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1} and not list(tmp_path.glob("*.tmp-*"))
    summary, run_dir = run_train(["model=regression", "trainer.max_epochs=1"])
    (run_dir / "metrics.json").write_text('{"status": "ok", "best_model_pa')  # truncated
    assert resolve_checkpoint(str(run_dir), prefer="best") == summary["best_model_path"]


@pytest.mark.parametrize(
    ("error", "why", "what"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "the disk is full", "free space"),
        (PermissionError(errno.EACCES, "Permission denied"), "no permission", "permissions"),
        (
            RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64"),
            "enforce fail",
            "fix the cause",
        ),
    ],
)
def test_a_checkpoint_that_cannot_be_written_is_one_sentence(
    tmp_path, monkeypatch, error, why, what
):
    from trainkit.checkpoints import CheckpointWriteError, atomic_save

    target = tmp_path / "run" / "checkpoints" / "last.ckpt"
    atomic_save({"w": torch.zeros(3)}, target)

    def failing_save(obj, f):
        f.write(b"partial")
        raise error

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(CheckpointWriteError, match=why) as info:
        atomic_save({"w": torch.ones(3)}, target)
    assert what in str(info.value) and f"ckpt_path={tmp_path / 'run'}" in str(info.value)
    monkeypatch.undo()
    assert torch.load(target)["w"].sum() == 0  # the previous checkpoint is intact
    assert not list(target.parent.glob("*.tmp-*"))


def test_a_checkpoint_folder_that_is_a_file_is_one_sentence(tmp_path):
    from trainkit.checkpoints import CheckpointWriteError, atomic_save

    (tmp_path / "checkpoints").write_text("not a folder")
    with pytest.raises(CheckpointWriteError, match="checkpoints is a file, not a folder"):
        atomic_save({"w": torch.zeros(1)}, tmp_path / "checkpoints" / "last.ckpt")


def test_a_run_dir_with_only_a_best_checkpoint_says_which_file_to_resume(tmp_path):
    from trainkit.checkpoints import resolve_checkpoint

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best-epoch001-step000080.ckpt").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"has no last.ckpt .* give that file as ckpt_path"):
        resolve_checkpoint(str(tmp_path), prefer="last")


def test_foreign_checkpoints_are_one_sentence(run_train, tmp_path):
    import lightning as L

    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(ConfigError, match=r"is not a Lightning checkpoint \(a plain torch.save"):
        run_train(["model=regression", f"ckpt_path={plain}"], "plain")
    foreign = tmp_path / "foreign.ckpt"
    model = L.LightningModule()
    model.layer = torch.nn.Linear(2, 1)
    torch.save({"state_dict": model.state_dict(), "pytorch-lightning_version": "2.6.6"}, foreign)
    with pytest.raises(ConfigError, match="a Lightning checkpoint that trainkit did not write"):
        run_train(["model=regression", f"ckpt_path={foreign}"], "foreign")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.hidden=[-3]"], r"could not build the model from its config \(RuntimeError"),
        (["model.dropout=1.5"], r"could not build the model .*dropout probability"),
        (["trainer.accelerator=gpu"], r"could not build the trainer from its config"),
        (["trainer.gradient_clip_algorithm=sideways"], r"could not build the trainer"),
    ],
)
def test_objects_that_cannot_be_built_name_their_setting(run_train, overrides, message):
    args = ["model=regression" if "hidden" in overrides[0] else "model=cnn", *overrides]
    with pytest.raises(TrainkitError, match=message) as info:
        try:
            run_train([*args, "trainer.max_epochs=1"])
        except Exception as err:  # as run_job reports it
            from trainkit.cli import user_error

            raise user_error(err) from err
    assert overrides[0] in str(info.value)  # "the command line set model.hidden=[-3]"
