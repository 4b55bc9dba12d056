"""The split is part of the run: a DataModule records what identifies its splits (its data's
fingerprint, seed, fractions, each split's membership) in its checkpoints and metrics.json, and a
resume or eval.py that would rebuild other splits stops with one sentence saying what changed."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

import pytest
import torch
from helpers import make_cfg

from trainkit.data.base import InMemoryDataModule
from trainkit.data.csv_data import RegressionCSVDataModule, TextCSVDataModule
from trainkit.data.digits import DigitsDataModule
from trainkit.errors import DataError

WORDS = ["apple", "river", "stone", "cloud", "lamp", "tiger", "paper", "glass", "ocean", "maple"]


def random_rows(n: int, seed: int) -> list[str]:
    """Rows of random words with random labels: nothing to learn, so a model memorises its
    training rows and scores near chance on any row it did not train on."""
    rng = random.Random(seed)
    return [f"{' '.join(rng.choices(WORDS, k=6))},{rng.choice('ab')}" for _ in range(n)]


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


def one_sentence(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg.endswith("."), msg
    return msg


def text_module(path: Path, **kwargs) -> TextCSVDataModule:
    return TextCSVDataModule(path=str(path), min_freq=1, **kwargs)


def restored(make, state: dict):
    """A new DataModule given a checkpoint's state before setup, as resume and eval.py do."""
    dm = make()
    dm.load_state_dict(state)
    dm.setup()
    return dm


# -- the case, end to end ---------------------------------------------------------------
def test_eval_and_resume_rebuild_the_runs_split_or_say_what_changed(tmp_path, run_train):
    from trainkit.evaluation import evaluate

    rows = random_rows(300, seed=1)
    data = write_csv(tmp_path / "words.csv", rows)
    args = ["model=text", "data=text_csv", f"data.path={data}", "data.min_freq=1", "seed=0"]
    summary, run = run_train([*args, "trainer.max_epochs=2"])
    record = summary["data_report"]["splits"]
    assert record["source"]["files"] == [
        {
            "key": "path",
            "path": str(data),
            "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
            "rows": 300,
        }
    ]
    assert (record["seed"], record["val_fraction"], record["test_fraction"]) == (0, 0.15, 0.15)
    assert {k: v["size"] for k, v in record["splits"].items()} == {
        "train": 210,
        "val": 45,
        "test": 45,
    }
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["TextCSVDataModule"]["split_record"] == record

    def evaluate_run(name: str) -> dict:
        return evaluate(make_cfg([f"ckpt_path={run}"], tmp_path / name, "eval"))

    # unchanged: the same test split, the same score
    assert evaluate_run("e0")["metrics"]["test/acc"] == pytest.approx(summary["test"]["acc"])
    # the same rows shuffled: refused, never a silent re-carve
    write_csv(data, random.Random(2).sample(rows, len(rows)))
    with pytest.raises(DataError, match=r"same 300 rows .* another order \(rows reordered\)") as e:
        evaluate_run("e1")
    assert str(data) in one_sentence(e) and "data=text_csv" in str(e.value)
    # 30 rows appended: refused, with the counts
    write_csv(data, rows + random_rows(30, seed=3))
    with pytest.raises(DataError, match=r"30 rows added, 0 removed: 330 rows now, 300 then") as e:
        evaluate_run("e2")
    one_sentence(e)
    # a resume with another seed: refused, naming both
    write_csv(data, rows)
    with pytest.raises(DataError, match=r"with seed 7 but the run was trained with seed 0") as e:
        run_train([*args, "seed=7", "trainer.max_epochs=3", f"ckpt_path={run}"], "resumed")
    assert "seed=0" in one_sentence(e)
    # the file back as it was: eval works again and matches
    assert evaluate_run("e3")["metrics"]["test/acc"] == pytest.approx(summary["test"]["acc"])


def test_digits_record_their_dataset_and_refuse_a_resume_with_another_seed(run_train):
    import sklearn

    args = ["model=cnn", "trainer.limit_train_batches=2", "callbacks.early_stopping=null"]
    summary, run = run_train([*args, "trainer.max_epochs=1", "seed=3", "test=false"])
    record = summary["data_report"]["splits"]
    assert record["source"] == {
        "dataset": "scikit-learn's digits",
        "version": f"scikit-learn {sklearn.__version__}",
    }
    assert record["samples"] == 1797 and record["seed"] == 3
    # every process (DDP) and every run builds the same record from the same data and seed
    assert DigitsDataModule(seed=3).state_dict() == {"fitted": {}}  # nothing before setup
    again = DigitsDataModule(seed=3)
    again.setup()
    assert again.split_record == record
    with pytest.raises(DataError, match=r"seed 4 but the run was trained with seed 3") as e:
        run_train([*args, "trainer.max_epochs=2", "seed=4", f"ckpt_path={run}"], "resumed")
    one_sentence(e)
    resumed, _ = run_train([*args, "trainer.max_epochs=2", "seed=3", f"ckpt_path={run}"], "ok")
    assert resumed["epochs"] == 2


# -- what is recorded and compared ---------------------------------------------------------------
def test_a_checkpoint_without_a_record_still_loads_unchecked(caplog) -> None:
    trained = DigitsDataModule()
    trained.setup()
    with caplog.at_level(logging.INFO, logger="trainkit.data.base"):
        dm = restored(lambda: DigitsDataModule(seed=5), {"fitted": dict(trained.fitted)})
    assert dm.split_record["seed"] == 5
    said = [r.message for r in caplog.records if "no split record" in r.message]
    assert len(said) == 1


def test_csv_changes_are_named_with_their_counts(tmp_path) -> None:
    rows = random_rows(100, seed=1)
    data = write_csv(tmp_path / "d.csv", rows)
    state = restored(lambda: text_module(data), {}).state_dict()
    assert len(state["sample_hashes"]) == 100  # a user's file: its rows' hashes are kept
    cases = [
        (rows[:90], r"0 rows added, 10 removed: 90 rows now, 100 then"),
        (rows[:95] + random_rows(3, seed=9), r"3 rows added, 5 removed: 98 rows now, 100 then"),
        ([rows[0].replace(",", " apple,", 1), *rows[1:]], r"1 rows added, 1 removed: 100 rows now"),
        (rows[1:] + rows[:1], r"same 100 rows .* another order \(rows reordered\)"),
    ]
    for content, expected in cases:
        write_csv(data, content)
        with pytest.raises(DataError, match=expected) as err:
            restored(lambda: text_module(data), state)
        assert f"{data} (data.path) " in one_sentence(err)
    # other bytes, the same rows in the same order (CRLF line ends): the same splits, accepted
    data.write_bytes(("text,label\r\n" + "\r\n".join(rows) + "\r\n").encode())
    assert (
        restored(lambda: text_module(data), state).split_record["order"]
        == (state["split_record"]["order"])
    )


def test_other_fractions_and_a_changed_test_file_are_refused(tmp_path) -> None:
    data = write_csv(tmp_path / "train.csv", random_rows(80, seed=1))
    test = write_csv(tmp_path / "test.csv", random_rows(20, seed=2))
    state = restored(lambda: text_module(data), {}).state_dict()
    with pytest.raises(DataError, match=r"data.val_fraction=0.2 \(the run's: 0.15\)") as err:
        restored(lambda: text_module(data, val_fraction=0.2), state)
    assert "data.val_fraction=0.15 data.test_fraction=0.15" in one_sentence(err)
    state = restored(lambda: text_module(data, test_path=str(test)), {}).state_dict()
    assert state["split_record"]["splits"]["test"]["size"] == 20
    write_csv(test, random_rows(21, seed=2))
    with pytest.raises(
        DataError, match=r"test.csv \(data.test_path\) changed .*1 rows added, 0 rem"
    ):
        restored(lambda: text_module(data, test_path=str(test)), state)


def test_lightnings_own_restore_after_setup_is_checked_too(tmp_path) -> None:
    """trainer.fit(ckpt_path=...) of a DataModule already set up hands the state over after
    setup: the record is compared then."""
    data = write_csv(tmp_path / "d.csv", random_rows(60, seed=1))
    state = restored(lambda: text_module(data), {}).state_dict()
    write_csv(data, random_rows(60, seed=4))
    dm = text_module(data)
    dm.setup()
    with pytest.raises(
        DataError, match=r"changed since the run was trained \(60 rows added, 60 rem"
    ):
        dm.load_state_dict(state)


def test_regression_csv_rows_reordered(tmp_path) -> None:
    rng = random.Random(0)
    rows = [f"{rng.random():.6f},{rng.random():.6f}" for _ in range(50)]
    path = tmp_path / "h.csv"
    path.write_text("x,y\n" + "\n".join(rows) + "\n")

    def make():
        return RegressionCSVDataModule(path=str(path), target_column="y")

    state = restored(make, {}).state_dict()
    path.write_text("x,y\n" + "\n".join(reversed(rows)) + "\n")
    with pytest.raises(DataError, match=r"same 50 rows .* \(rows reordered\)"):
        restored(make, state)


class Plain(InMemoryDataModule):
    """A DataModule of a user's that does not record its own splits."""

    values = torch.arange(40.0)

    def load_splits(self):
        idx = torch.randperm(40, generator=torch.Generator().manual_seed(self.seed))
        x = self.values[idx].unsqueeze(1)
        return {"train": (x[:30], x[:30, 0]), "val": (x[30:], x[30:, 0])}


def test_a_subclass_that_records_nothing_gets_its_tensors_hashed() -> None:
    state = restored(Plain, {}).state_dict()
    record = state["split_record"]
    assert record["samples"] == 40 and "sample_hashes" not in state  # not a user's files
    assert json.loads(json.dumps(record)) == record  # metrics.json can hold it
    Plain.values = torch.arange(1.0, 41.0)
    try:
        changed = r"Plain changed since the run was trained \(40 samples now, 40 then, of other"
        with pytest.raises(DataError, match=changed):
            restored(Plain, state)
    finally:
        Plain.values = torch.arange(40.0)


def test_a_deliberate_new_test_set_keeps_the_models_class_map_and_vocabulary(tmp_path) -> None:
    """eval.py with data=...: the model's class map and vocabulary, a split carved afresh."""
    rows = random_rows(100, seed=1)
    data = write_csv(tmp_path / "d.csv", rows)
    state = restored(lambda: text_module(data), {}).state_dict()
    other = write_csv(tmp_path / "other.csv", [r.replace(",a", ",c") for r in rows[::-1]][:80])
    dm = text_module(other)
    dm.load_fitted(state)
    with pytest.raises(DataError, match=r"the label\(s\) \['c'\], which the checkpoint's model"):
        dm.setup()
    write_csv(other, [*rows[::-1], "apple pear pear,b"])  # reordered, a row and a word more
    dm = text_module(other)
    dm.load_fitted(state)
    dm.setup()
    assert dm.fitted == state["fitted"]  # class names, vocabulary ("pear" not in it)
    assert dm.split_record["content"] != state["split_record"]["content"]
