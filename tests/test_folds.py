"""k-fold cross-validation on the in-memory DataModules (data.folds=k data.fold=i): the folds'
validation splits partition what the test split leaves, the test split is the same for every
fold, a checkpoint knows its fold, and a sweep over data.fold is averaged like one over seeds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_reports import make_job
from test_seed_reports import rows_of

from trainkit.data.carving import split_indices
from trainkit.data.digits import DigitsDataModule
from trainkit.errors import ConfigError, DataError
from trainkit.reports import sweep_report


def test_the_folds_validate_on_every_sample_outside_the_test_split_once():
    labels = [i % 3 for i in range(100)]
    folds = [split_indices(100, 0.15, 0.2, 7, labels, folds=4, fold=i) for i in range(4)]
    (test,) = {tuple(f["test"]) for f in folds}  # one test split for every fold
    assert len(test) == 20
    rest = sorted(set(range(100)) - set(test))
    vals = [f["val"] for f in folds]
    assert sorted(i for v in vals for i in v) == rest  # each once
    for f in folds:
        assert sorted(f["train"] + f["val"]) == rest and len(f["val"]) == 20
        assert sorted(labels[i] for i in f["val"]).count(0) in (6, 7, 8)  # stratified by label
    assert split_indices(100, 0.15, 0.2, 8, labels, folds=4, fold=0)["val"] != vals[0]  # seeded


@pytest.mark.parametrize(
    ("folds", "fold", "says"),
    [
        (5, None, "data.folds needs data.fold too"),
        (None, 2, "data.fold needs data.folds too"),
        (1, 0, "data.folds must be a whole number of at least 2, got 1."),
        (5, 5, "data.fold must be 0 to 4 (data.folds=5), got 5."),
    ],
)
def test_folds_that_cannot_work_are_one_sentence(folds, fold, says):
    with pytest.raises(ConfigError, match="^" + re.escape(says)):
        DigitsDataModule(folds=folds, fold=fold)


def test_a_checkpoint_of_one_fold_does_not_resume_another():
    fold0 = DigitsDataModule(folds=3, fold=0)
    fold0.setup("fit")
    record = fold0.split_record
    assert record["folds"] == {"fold": 0, "of": 3} and record["val_fraction"] is None
    sizes = fold0.split_sizes()
    assert sizes["test"] == 270 and sizes["val"] == 509 and sizes["train"] == 1018
    again = DigitsDataModule(folds=3, fold=0)
    again.load_state_dict(fold0.state_dict())
    again.setup("fit")  # the same fold: its splits rebuilt exactly
    fold1 = DigitsDataModule(folds=3, fold=1)
    fold1.load_state_dict(fold0.state_dict())
    says = r"fold 1 of 3 validates on other images than the run \(fold 0 of 3\)"
    with pytest.raises(
        DataError, match=says + ".*resume or evaluate with data.folds=3 data.fold=0"
    ):
        fold1.setup("fit")
    plain = DigitsDataModule()
    plain.load_state_dict(fold0.state_dict())
    with pytest.raises(DataError, match=r"no folds \(val_fraction=0.15\) validates on other"):
        plain.setup("fit")


def test_folds_need_a_validation_split_carved_from_the_training_data():
    with pytest.raises(ConfigError, match="data.folds=3 takes the validation split from the"):
        DigitsDataModule(folds=3, fold=0, val_fraction=0.0).setup("fit")


def test_a_sweep_over_the_folds_is_averaged_per_configuration(tmp_path: Path):
    for num, (bs, fold, acc) in enumerate([(32, 0, 0.9), (32, 1, 0.8), (64, 0, 0.7), (64, 1, 0.6)]):
        make_job(tmp_path, num, [f"data.batch_size={bs}", f"data.fold={fold}"], acc)
    report = sweep_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Configurations, ranked by their mean over folds" in md
    table = rows_of(md, "| rank |")
    assert table[0][-2:] == ["n", "data.fold"]
    assert table[1][:2] == ["1", "32"] and table[1][2].startswith("0.85 ± 0.07")
    assert table[1][-1] == "0, 1"
    assert report["picture"] == str(tmp_path / "line.png")
    assert "mean ± std over the folds" in md
