"""data=text_csv and data=regression_csv on small CSV files written by the tests."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from helpers import ADAM, fit_one_batch
from hydra.utils import instantiate

from trainkit.data.csv_data import RegressionCSVDataModule, TextCSVDataModule
from trainkit.errors import ConfigError, DataError


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def text_rows(labels: list[str], per_class: int, prefix: str = "") -> list[list[str]]:
    """Rows whose text holds a word unique to the row, with commas, quotes and a newline."""
    return [
        [f'{prefix}doc{lab}{i} says "{lab}", twice:\n{lab} {lab}', lab, i]
        for lab in labels
        for i in range(per_class)
    ]


def text_dm(path: Path, **kwargs) -> TextCSVDataModule:
    kwargs = {"min_freq": 1, "ngrams": 1, "val_fraction": 0.2, "test_fraction": 0.2, **kwargs}
    return TextCSVDataModule(path=str(path), text_column="body", label_column="tag", **kwargs)


@pytest.fixture
def reviews(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "reviews.csv",
        ["id", "body", "tag", "n"],
        [[k, *row] for k, row in enumerate(text_rows(["spam", "ham", "eggs"], 10))],
    )


def test_string_labels_any_number_of_classes(reviews: Path) -> None:
    dm = text_dm(reviews)
    dm.setup()
    assert dm.class_names == ["eggs", "ham", "spam"]  # sorted; ids are positions
    assert dm.dims["num_classes"] == 3
    assert dm.split_sizes() == {"train": 18, "val": 6, "test": 6}
    for split in ("val", "test"):
        assert torch.bincount(dm.splits[split][2]).tolist() == [2, 2, 2]  # stratified
    ids, _, labels = dm.splits["train"]
    for row, label in zip(ids, labels, strict=True):  # each text kept its own label
        words = {dm.vocab.itos[i] for i in row.tolist() if i > 1}
        assert dm.class_names[int(label)] in words


def test_numeric_labels_sort_as_numbers(tmp_path: Path) -> None:
    rows = [r[:2] for r in text_rows(["10", "2", "1"], 5)]
    path = write_csv(tmp_path / "n.csv", ["body", "tag"], rows)
    dm = text_dm(path)
    dm.setup()
    assert dm.class_names == ["1", "2", "10"]


def test_separate_test_file_and_vocabulary_from_training_only(tmp_path: Path) -> None:
    rows = [r[:2] for r in text_rows(["a", "b"], 10)]
    train = write_csv(tmp_path / "train.csv", ["body", "tag"], rows)
    test = write_csv(
        tmp_path / "test.csv",
        ["body", "tag"],
        [r[:2] for r in text_rows(["b", "a"], 3, prefix="zz")],
    )
    dm = text_dm(train, test_path=str(test))
    dm.setup()
    assert dm.split_sizes() == {"train": 16, "val": 4, "test": 6}  # nothing carved for test
    assert dm.splits["test"][2].tolist() == [1, 1, 1, 0, 0, 0]
    words = set(dm.vocab.itos)
    assert not any(w.startswith("zz") for w in words)  # test-only words are unknown
    assert len([w for w in words if w.startswith("doc")]) == 16  # val rows' words too


def test_split_is_deterministic_for_a_seed(reviews: Path) -> None:
    def train_docs(seed: int) -> set[str]:  # each row's unique word is in the vocabulary
        dm = text_dm(reviews, seed=seed)
        dm.setup()
        return {w for w in dm.vocab.itos if w.startswith("doc")}

    assert len(train_docs(5)) == 18
    assert train_docs(5) == train_docs(5) and train_docs(5) != train_docs(6)


def test_unknown_label_in_test_file_is_named(tmp_path: Path) -> None:
    rows = [r[:2] for r in text_rows(["a", "b"], 5)]
    train = write_csv(tmp_path / "train.csv", ["body", "tag"], rows)
    test = write_csv(tmp_path / "test.csv", ["body", "tag"], [["fine", "a"], ["odd", "c"]])
    with pytest.raises(
        DataError,
        match=r"line 3 of .*test.csv has the label 'c', which is not "
        r"among the classes of .*train.csv \(a, b\)",
    ):
        text_dm(train, test_path=str(test)).setup()


@pytest.mark.parametrize(
    ("content", "kwargs", "expected"),
    [
        (None, {}, r"CSV file .*absent.csv \(data.path\) does not exist"),
        ("", {}, "is empty; it needs a header row"),
        ("body,tag\n", {}, "has a header but no data rows"),
        ("text,label\nx,a\n", {}, r"has no column 'body'; its columns are 'text', 'label'"),
        ("body,tag\nx,a\ny\n", {}, "line 3 of .* has 1 fields but the header has 2"),
        ("body,tag\nx,a\ny, \n", {}, "line 3 of .* has an empty label"),
        ("body,tag\nx,a\ny,a\n", {}, "every row of .* has the label 'a'"),
        ("body,tag\n" + "x,a\n" * 9 + "y,b\n", {}, "'b' has 1 row"),
        (b"body,tag\ncaf\xe9,a\n", {}, "is not valid utf-8 text"),
        (b"body,tag\n" + b"caf\xe9,a\nx,b\n" * 5, {"encoding": "latin-1"}, None),
    ],
)
def test_text_csv_errors(tmp_path: Path, content, kwargs: dict, expected: str | None) -> None:
    path = tmp_path / "absent.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    dm = text_dm(path, **kwargs)
    if expected is None:
        dm.setup()
        assert dm.class_names == ["a", "b"]
        return
    with pytest.raises(DataError, match=expected) as err:
        dm.setup()
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_path_is_a_one_line_config_error(compose_cfg) -> None:
    from trainkit.config import check_config

    for overrides in (["model=text", "data=text_csv"], ["model=regression", "data=regression_csv"]):
        cfg = compose_cfg(overrides)
        with pytest.raises(ConfigError, match=r"^data.path has no value and is required: .*"):
            check_config(cfg)
    # built directly (not from the config), the module says the same in its own words
    with pytest.raises(ConfigError, match=r"data.path is required: .*data.path=my_data.csv"):
        TextCSVDataModule(path=None).setup()


# -- regression ---------------------------------------------------------------------------------
@pytest.fixture
def houses(tmp_path: Path) -> Path:
    rows = [[i, 2 * i % 7, (i * i) % 11, 3.0 * i + 1] for i in range(40)]
    return write_csv(tmp_path / "houses.csv", ["rooms", "age", "noise", "price"], rows)


def test_regression_features_target_and_standardisation(houses: Path) -> None:
    dm = RegressionCSVDataModule(
        path=str(houses), target_column="price", val_fraction=0.2, test_fraction=0.2
    )
    dm.setup()
    assert dm.feature_names == ["rooms", "age", "noise"] and dm.dims["in_features"] == 3
    assert dm.split_sizes() == {"train": 24, "val": 8, "test": 8}
    x, y = dm.splits["train"]
    assert x.dtype == torch.float32 and y.dtype == torch.float32
    assert torch.allclose(x.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(0), torch.ones(3), atol=1e-5)
    assert abs(float(dm.splits["val"][0].mean())) > 1e-3  # val is not standardised by itself
    raw_train = dm.to_target_units(y)  # back in prices: training rows only
    assert dm.fitted["target_mean"] == pytest.approx(float(raw_train.mean()), rel=1e-5)
    assert dm.fitted["target_mean"] != pytest.approx(3.0 * 19.5 + 1)  # not all 40 rows' mean
    assert all(abs((p - 1) / 3 - round((p - 1) / 3)) < 1e-3 for p in raw_train.tolist())
    sub = RegressionCSVDataModule(
        path=str(houses),
        target_column="price",
        feature_columns=["noise", "rooms"],
        standardize=False,
    )
    sub.setup()
    assert sub.dims["in_features"] == 2
    assert torch.equal(sub.splits["train"][0][:, 0], sub.splits["train"][0][:, 0].round())


@pytest.mark.parametrize(
    ("rows", "kwargs", "error", "expected"),
    [
        ([[1, 2, 3]] * 10, {"target_column": None}, ConfigError, "data.target_column is required"),
        ([[1, 2, 3]] * 10, {"feature_columns": ["a", "y"]}, ConfigError, "contains the target 'y'"),
        ([[1, 2, 3]] * 10, {"target_column": "z"}, DataError, "no column 'z'; its columns are"),
        ([[1, 2, 3]] * 5 + [[1, "abc", 3]], {}, DataError, r"line 7 of .*, column 'b': 'abc' is"),
        ([[1, 2, 3]] * 5 + [[1, 2, ""]], {}, DataError, r"line 7 of .*, column 'y': '' is not"),
        ([[1, 2, 3]] * 5 + [["nan", 2, 3]], {}, DataError, "column 'a': 'nan' is not a finite"),
        ([[1, 2, 3]] * 3, {}, DataError, "the val split of RegressionCSVDataModule is empty"),
        (
            [[1, 2, 3]] * 2,
            {"val_fraction": 0.4, "test_fraction": 0.4},
            DataError,
            "2 samples cannot be split",
        ),
    ],
)
def test_regression_csv_errors(tmp_path: Path, rows, kwargs, error, expected) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "b", "y"], rows)
    dm = RegressionCSVDataModule(path=str(path), **{"target_column": "y", **kwargs})
    with pytest.raises(error, match=expected) as err:
        dm.setup()
    assert "\n" not in str(err.value)


# -- end to end ---------------------------------------------------------------------------------
def test_fit_text_csv_with_the_text_model(reviews: Path, compose_cfg) -> None:
    from trainkit.models.text import TextClassifier

    cfg = compose_cfg(
        [
            "model=text",
            "data=text_csv",
            f"data.path={reviews}",
            "data.text_column=body",
            "data.label_column=tag",
            "data.min_freq=1",
        ]
    )
    dm = instantiate(cfg.data)
    model = TextClassifier(**dm.dims, embed_dim=8, optimizer=ADAM)
    assert fit_one_batch(model, dm).global_step == 1


def test_fit_regression_csv_with_the_regressor(houses: Path, compose_cfg) -> None:
    from trainkit.models.regression import Regressor

    cfg = compose_cfg(
        [
            "model=regression",
            "data=regression_csv",
            f"data.path={houses}",
            "data.target_column=price",
            "data.feature_columns=[rooms,age]",
        ]
    )
    dm = instantiate(cfg.data)
    model = Regressor(**dm.dims, optimizer={"_target_": "torch.optim.SGD", "lr": 1e-2})
    assert dm.dims["in_features"] == 2
    assert fit_one_batch(model, dm).global_step == 1
