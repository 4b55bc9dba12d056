"""Your own CSV (or TSV, ...) files: text classification (`data=text_csv`) or regression
(`data=regression_csv`).

Files are read as they come (csv_files.py): a header row or none (`data.header=false`, columns
then by position: `data.text_column=0`), any delimiter (`data.delimiter=tab`), any encoding
(`data.encoding=latin-1`), CRLF endings, quoted fields, and one file or several
(`data.path=[a.txt,b.txt]` or a pattern, `'data.path=reviews/*.txt'`). Problems in a file end
with one sentence naming the file, the line and the column.
"""

from __future__ import annotations

import logging
import math
from collections import Counter

import torch

from trainkit.config import check_positive_int
from trainkit.data.csv_files import (
    Table,
    check_delimiter,
    check_encoding,
    read_table,
    resolve_paths,
)
from trainkit.data.split_record import row_keys
from trainkit.data.tabular import TabularRegressionDataModule
from trainkit.data.text import TextDataModule
from trainkit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

FLOAT32_MAX = float(torch.finfo(torch.float32).max)


class CSVOptions:
    """How the files are read (the same settings for text and regression), and what identifies
    what was read: each file's sha256 and a hash of each row, for the split record."""

    unit = "rows"
    keep_sample_hashes = True  # a checkpoint counts the rows added and removed since
    files: list[dict]  # {"key": the data.<key> that named it, "path", "sha256", "rows"}
    row_hashes: dict[str, torch.Tensor]  # data.<key> -> hashes of its rows, in file order

    def _csv_options(
        self, header: bool, delimiter: str, encoding: str, max_field_size: int
    ) -> None:
        self.header = bool(header)
        self.delimiter = check_delimiter(delimiter)
        self.encoding = check_encoding(encoding)
        check_positive_int(max_field_size, "data.max_field_size")
        self.max_field_size = max_field_size

    def read_files(self, value: object, key: str, example: str) -> Table:
        paths = resolve_paths(value, key, example)
        table = read_table(
            paths, key, self.delimiter, self.encoding, self.header, self.max_field_size
        )
        self.files = [f for f in getattr(self, "files", []) if f["key"] != key]
        self.files += [{"key": key, **f} for f in table.files]
        self.row_hashes = {**getattr(self, "row_hashes", {}), key: row_keys(table.rows)}
        return table

    def source(self) -> dict:
        return {"files": list(self.files)}


def to_floats(table: Table, index: int) -> list[float]:
    """Parse a numeric column; the first bad cell is reported with its line and column. Values
    beyond float32's range (about 3.4e38) are refused too: they would become inf in training."""
    out = []
    for row, text in enumerate(table.column(index)):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataError(
                f"{table.place(row)}, column {table.name(index)}: {text!r} is not a finite "
                "number; fix or remove that row (or leave the column out with "
                "data.feature_columns)."
            )
        if abs(value) > FLOAT32_MAX:
            raise DataError(
                f"{table.place(row)}, column {table.name(index)}: {text!r} is beyond float32's "
                f"range (+-{FLOAT32_MAX:.3g}), which the model computes in; rescale the column "
                "(other units) or fix that row."
            )
        out.append(value)
    return out


def sort_labels(labels: set[str]) -> list[str]:
    """Class names in id order: numerically when every label is an integer ("2" < "10")."""
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


class TextCSVDataModule(CSVOptions, TextDataModule):
    """Texts and labels from a CSV file; labels may be any strings, any number of classes.

    Class ids follow the sorted labels of the training file(s) (`path`); `class_names` keeps the
    labels. With `test_path` the test set is that file, else it is carved from `path` like the
    validation set (stratified by label, seeded). Empty texts are kept (the model sees an empty
    bag and predicts what is most likely with no words) and counted in the data report; a text
    column that is empty throughout is an error.
    """

    config = "text_csv"

    def __init__(
        self,
        path: str | list[str] | None = None,
        text_column: str | int = "text",
        label_column: str | int = "label",
        test_path: str | list[str] | None = None,
        header: bool = True,
        delimiter: str = ",",
        encoding: str = "utf-8",
        max_field_size: int = 10_000_000,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self._csv_options(header, delimiter, encoding, max_field_size)
        if text_column == label_column:
            raise ConfigError(
                f"data.text_column and data.label_column are both {text_column!r}; the label "
                "must come from another column than the text."
            )
        self.path, self.test_path = path, test_path
        self.text_column, self.label_column = text_column, label_column
        self._label_counts: Counter[str] = Counter()

    def _read(self, value: object, key: str) -> tuple[Table, list[str], list[str]]:
        table = self.read_files(value, key, "model=text data=text_csv")
        text_at = table.index(self.text_column, "text_column")
        label_at = table.index(self.label_column, "label_column")
        if text_at == label_at:
            raise ConfigError(
                f"data.text_column={self.text_column!r} and data.label_column="
                f"{self.label_column!r} are the same column; the label must come from another."
            )
        texts = table.column(text_at)
        labels = [v.strip() for v in table.column(label_at)]
        if "" in labels:
            raise DataError(
                f"{table.place(labels.index(''))} has an empty label (column "
                f"{table.name(label_at)}); fill it in or remove the row."
            )
        empty = [i for i, t in enumerate(texts) if not t.strip()]
        if len(empty) == len(texts):
            raise DataError(
                f"every text in column {table.name(text_at)} of {table.where[0][0]} is empty; "
                "check data.text_column (and data.delimiter)."
            )
        if empty:
            log.warning(
                "%d of the %d texts of data.%s are empty (the first at %s); they are kept",
                len(empty),
                len(texts),
                key,
                table.place(empty[0]),
            )
        files = list(dict.fromkeys(str(path) for path, _ in table.where))
        self.report.update({f"{key}_files": files, f"{key}_rows": len(texts)})
        self.report[f"{key}_empty_texts"] = len(empty)
        return table, texts, labels

    def load_corpus(self) -> tuple[dict[str, tuple[list[str], list[int]]], list[str]]:
        table, texts, labels = self._read(self.path, "path")
        files = str(table.where[0][0]) + (" ..." if table.where[-1][0] != table.where[0][0] else "")
        classes = sort_labels(set(labels))
        if len(classes) < 2:
            raise DataError(
                f"every row of {files} has the label {classes[0]!r}; a classifier "
                "needs at least two classes."
            )
        if len(labels) >= 20 and len(classes) > len(labels) / 2:
            raise DataError(
                f"the label column of {files} has {len(classes)} different values in "
                f"{len(labels)} rows: it looks like text, not labels; check data.label_column "
                "and data.text_column."
            )
        ids = {name: i for i, name in enumerate(classes)}
        corpus = {"train": (texts, [ids[lab] for lab in labels])}
        if self.test_path:
            test, test_texts, test_labels = self._read(self.test_path, "test_path")
            unknown = [i for i, lab in enumerate(test_labels) if lab not in ids]
            if unknown:
                raise DataError(
                    f"{test.place(unknown[0])} has the label {test_labels[unknown[0]]!r}, which "
                    f"is not among the classes of {files} ({', '.join(classes)}); the model "
                    "cannot learn a class it never sees in training."
                )
            corpus["test"] = (test_texts, [ids[lab] for lab in test_labels])
        self._label_counts = Counter(labels)
        return corpus, classes

    def corpus_hashes(self, corpus: dict, class_names: list[str]) -> dict[str, torch.Tensor]:
        """Each row's hash (every field as read) for the split record."""
        hashes = {"train": self.row_hashes["path"]}
        if "test" in corpus:
            hashes["test"] = self.row_hashes["test_path"]
        return hashes

    def load_splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        try:
            return super().load_splits()
        except ValueError as err:  # scikit-learn: too few rows of a class for a stratified split
            if "class" not in str(err):
                raise
            rare, count = min(self._label_counts.items(), key=lambda kv: kv[1])
            raise DataError(
                f"{self.path} cannot be split into train/val/test stratified by label: each of the "
                f"{len(self._label_counts)} labels must reach every split and {rare!r} has "
                f"{count} row(s); add rows, change data.val_fraction / data.test_fraction or give "
                "data.test_path."
            ) from err


class RegressionCSVDataModule(CSVOptions, TabularRegressionDataModule):
    """Numeric features and a numeric target from a CSV file.

    `feature_columns: null` uses every column except the target. Columns are named by header
    name or by position (0 = the first). Features and target are standardised with statistics of
    the training split only (see tabular.py).
    """

    config = "regression_csv"

    def __init__(
        self,
        path: str | list[str] | None = None,
        target_column: str | int | None = None,
        feature_columns: list[str | int] | None = None,
        header: bool = True,
        delimiter: str = ",",
        encoding: str = "utf-8",
        max_field_size: int = 10_000_000,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self._csv_options(header, delimiter, encoding, max_field_size)
        self.path, self.target_column = path, target_column
        self.feature_columns = None if feature_columns is None else list(feature_columns)
        self.feature_names: list[str] = []

    def load_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        target = self.target_column
        if target is None or target in ("", "???"):
            raise ConfigError(
                "data.target_column is required: name the column to predict, e.g. "
                "data.target_column=price (or its position, data.target_column=3)."
            )
        if self.feature_columns == []:
            raise ConfigError("data.feature_columns is empty; list columns or use null for all.")
        table = self.read_files(self.path, "path", "model=regression data=regression_csv")
        target_at = table.index(target, "target_column")
        if self.feature_columns is None:
            features = [i for i in range(table.width) if i != target_at]
        else:
            features = [table.index(c, "feature_columns") for c in self.feature_columns]
        if target_at in features:
            raise ConfigError(
                f"data.feature_columns contains the target {target!r}; remove it "
                "(the model must not see what it predicts)."
            )
        if not features:
            raise DataError(
                f"CSV file {table.where[0][0]} has no column besides the target "
                f"{target!r}; a regression needs at least one feature."
            )
        numbers = [to_floats(table, i) for i in [*features, target_at]]
        self.feature_names = [
            table.header[i] if table.header is not None else str(i) for i in features
        ]
        # float64 until standardised (load_splits): the training statistics square the values,
        # which overflows float32 beyond about 1e19
        x = torch.tensor(numbers[:-1], dtype=torch.float64).T.contiguous()
        return x, torch.tensor(numbers[-1], dtype=torch.float64)

    def sample_keys(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each row's hash (every field as read), for the split record."""
        return self.row_hashes["path"]
