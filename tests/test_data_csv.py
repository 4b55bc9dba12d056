"""data=text_csv and data=regression_csv on small files written by the tests in the formats real
files come in (no header, tabs, CRLF, Latin-1, quotes); the real sentiment sentences are read in
test_baselines.py."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from helpers import ADAM, fit_one_batch
from hydra.utils import instantiate

from trainkit.data.csv_data import RegressionCSVDataModule, TextCSVDataModule
from trainkit.errors import ConfigError, DataError

SMALL = {"min_freq": 1, "ngrams": 1, "val_fraction": 0.2, "test_fraction": 0.2}


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


def text_dm(path: Path | list[str], **kwargs) -> TextCSVDataModule:
    kwargs = {"text_column": "body", "label_column": "tag", **SMALL, **kwargs}
    return TextCSVDataModule(path=path if isinstance(path, list) else str(path), **kwargs)


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
    test_rows = [r[:2] for r in text_rows(["b", "a"], 3, prefix="zz")]
    test = write_csv(tmp_path / "test.csv", ["body", "tag"], test_rows)
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
        ("body,tag\nx,a\ny\n", {}, "line 3 of .* has 1 field.s. but the header has 2"),
        ("body,tag\nx,a\ny, \n", {}, "line 3 of .* has an empty label"),
        ("body,tag\nx,a\ny,a\n", {}, "every row of .* has the label 'a'"),
        ("body,tag\n" + "x,a\n" * 9 + "y,b\n", {}, "'b' has 1 row"),
        (b"body,tag\ncaf\xe9,a\n", {}, r"line 2 of .* is not valid utf-8 text \(byte 0xe9\)"),
        (b"body,tag\n" + b"caf\xe9,a\nx,b\n" * 5, {"encoding": "latin-1"}, None),
        (b"\xef\xbb\xbfbody,tag\n" + b"x,a\ny,b\n" * 5, {}, None),  # Excel's UTF-8 BOM
        (b"\xef\xbb\xbfbody,tag\nx,a\n", {"encoding": "latin-1"}, "set data.encoding=utf-8"),
        ("body,tag,body\nx,a,y\n", {}, r"two columns named 'body' \(positions 0 and 2\)"),
        ("body,tag\n" + " ,a\n ,b\n" * 5, {}, "every text in column 'body' of .* is empty"),
        ("body,tag\n" + "".join(f"t{i},l{i}\n" for i in range(20)), {}, "looks like text"),
        ('body,tag\nx,a\n"' + "y" * 300 + '",b\n', {"max_field_size": 100}, "line 3 .*longer"),
        ("body,tag\nx,a\n", {"header": False, "text_column": 0, "label_column": 5}, "0 to 1"),
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
        assert dm.class_names == ["a", "b"] and "body" not in dm.vocab.stoi
        return
    with pytest.raises(DataError, match=expected) as err:
        dm.setup()
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_impossible_settings_unreadable_files_and_folders(reviews: Path, monkeypatch) -> None:
    for kwargs, expected in [
        ({"encoding": "bogus-enc"}, "data.encoding='bogus-enc' is not an encoding Python knows"),
        ({"delimiter": "ab"}, "data.delimiter='ab' is not one character"),
        ({"delimiter": ""}, "data.delimiter is empty .a tab typed on the command line"),
        ({"label_column": "body"}, "data.text_column and data.label_column are both 'body'"),
        ({"max_field_size": 0}, "data.max_field_size must be a positive integer"),
    ]:
        with pytest.raises(ConfigError, match=expected):
            text_dm(reviews, **kwargs)
    with pytest.raises(DataError, match=r"data.path='.*' is a folder, not a file \(it holds rev"):
        text_dm(reviews.parent).setup()
    with pytest.raises(ConfigError, match="data.text_column='body' and data.label_column=1 are"):
        text_dm(reviews, label_column=1).setup()
    with pytest.raises(ConfigError, match="is a column name, but data.header=false: give"):
        text_dm(reviews, header=False).setup()

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)  # chmod 000 does not stop root
    with pytest.raises(DataError, match=r"reviews.csv \(data.path\) could not be read \(Perm"):
        text_dm(reviews).setup()


def write_tsv(path: Path, per_class: int, prefix: str = "") -> Path:
    """Headerless `text<TAB>label` lines as the sentiment files come: CRLF, Latin-1, quoted."""
    lines = [f'"{prefix}Clichés {y}{i}, said ""{y}"""\t{y}' for y in "01" for i in range(per_class)]
    path.write_bytes("\r\n".join(lines).encode("latin-1") + b"\r\n")
    return path


def all_texts(dm: TextCSVDataModule) -> list[str]:
    return [t for texts, _ in dm.split_texts().values() for t in texts]


@pytest.mark.parametrize("delimiter", ["tab", "\\t", "\t"])
def test_headerless_tab_separated_latin1_crlf_quoted(tmp_path: Path, delimiter: str) -> None:
    path = write_tsv(tmp_path / "a.txt", 10)
    kwargs = {"header": False, "text_column": 0, "label_column": 1, "encoding": "latin-1"}
    dm = text_dm(path, delimiter=delimiter, **kwargs)
    assert 'Clichés 00, said "0"' in all_texts(dm)
    dm.setup()
    assert dm.class_names == ["0", "1"] and dm.split_sizes() == {"train": 12, "val": 4, "test": 4}
    assert "clichés" in dm.vocab.stoi and not any("\r" in w for w in dm.vocab.itos)


def test_several_files_read_as_one_and_errors_name_the_file(tmp_path: Path) -> None:
    a = write_tsv(tmp_path / "a_labelled.txt", 5, "a")
    b = write_tsv(tmp_path / "b_labelled.txt", 5, "b")
    kwargs = {"header": False, "text_column": 0, "label_column": 1, "encoding": "latin-1"}
    by_list = text_dm([str(b), str(a)], delimiter="\t", **kwargs)
    by_glob = text_dm(str(tmp_path / "*_labelled.txt"), delimiter="tab", **kwargs)
    texts = [all_texts(dm) for dm in (by_list, by_glob)]
    assert len(texts[0]) == 20 and sorted(texts[0]) == sorted(texts[1])
    assert {t[:9] for t in texts[1]} == {"aClichés ", "bClichés "}
    b.write_bytes(b.read_bytes() + b"only one field\r\n")
    with pytest.raises(DataError, match=r"line 11 of .*b_labelled.txt has 1 field.s. but line 1"):
        by_glob.setup()
    with pytest.raises(DataError, match=r"'.*/\*.csv' matches no file"):
        text_dm(str(tmp_path / "*.csv")).setup()


def test_long_documents_and_some_empty_texts_are_kept(tmp_path: Path) -> None:
    long_doc = " ".join(["word"] * 30_000)  # ~150 KB, over csv's own 131,072-character limit
    rows = [[long_doc, "a"], ["", "b"]] + [[f"x{i}", "ab"[i % 2]] for i in range(18)]
    dm = text_dm(write_csv(tmp_path / "long.csv", ["body", "tag"], rows))
    dm.setup()
    assert max(map(len, all_texts(dm))) == len(long_doc) > 131_072
    assert dm.report["path_empty_texts"] == 1


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
    columns = {"target_column": "price", "feature_columns": ["noise", "rooms"]}
    sub = RegressionCSVDataModule(path=str(houses), standardize=False, **columns)
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
        ([[1, 2, 3]] * 5 + [[1, "1e39", 3]], {}, DataError, r"line 7 .*'b': '1e39' is beyond"),
        ([[1, 2, 3]] * 10, {"feature_columns": [0, 2]}, ConfigError, "contains the target 'y'"),
        ([[1, 2, 3]] * 10, {"target_column": 3}, DataError, "has 3 column.s., positions 0 to 2"),
        ([[1, 2, 3]] * 3, {}, DataError, "the val split of RegressionCSVDataModule is empty"),
        ([[1, 2, 3]] * 2, {"val_fraction": 0.4, "test_fraction": 0.45}, DataError, "2 samples"),
    ],
)
def test_regression_csv_errors(tmp_path: Path, rows, kwargs, error, expected) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "b", "y"], rows)
    dm = RegressionCSVDataModule(path=str(path), **{"target_column": "y", **kwargs})
    with pytest.raises(error, match=expected) as err:
        dm.setup()
    assert "\n" not in str(err.value)


def test_regression_headerless_by_position_and_huge_values(tmp_path: Path) -> None:
    rows = [f"{i}\t{i * 1e30:g}\t{2 * i + 1}" for i in range(40)]
    (tmp_path / "h.tsv").write_bytes("\r\n".join(rows).encode())
    dm = RegressionCSVDataModule(
        path=str(tmp_path / "h.tsv"), header=False, delimiter="tab", target_column=2
    )
    dm.setup()
    assert dm.feature_names == ["0", "1"] and dm.split_sizes()["train"] == 28
    x, y = dm.splits["train"]
    assert x.dtype == y.dtype == torch.float32 and torch.isfinite(x).all()
    assert torch.allclose(x[:, 0], x[:, 1], atol=1e-4)  # 1e30 x i, standardised like i


# -- end to end ---------------------------------------------------------------------------------
def test_fit_text_csv_with_the_text_model(reviews: Path, compose_cfg) -> None:
    from trainkit.models.text import TextClassifier

    columns = ["data.text_column=body", "data.label_column=tag"]
    dm = instantiate(
        compose_cfg(["model=text", "data=text_csv", f"data.path={reviews}", *columns]).data
    )
    model = TextClassifier(**dm.dims, embed_dim=8, optimizer=ADAM)
    assert fit_one_batch(model, dm).global_step == 1


def test_fit_regression_csv_with_the_regressor(houses: Path, compose_cfg) -> None:
    from trainkit.models.regression import Regressor

    data = [f"data.path={houses}", "data.target_column=price", "data.feature_columns=[rooms,age]"]
    dm = instantiate(compose_cfg(["model=regression", "data=regression_csv", *data]).data)
    model = Regressor(**dm.dims, optimizer={"_target_": "torch.optim.SGD", "lr": 1e-2})
    assert dm.dims["in_features"] == 2
    assert fit_one_batch(model, dm).global_step == 1
