"""Your own CSV file: text classification (`data=text_csv`) or regression (`data=regression_csv`).

Read with the standard library's csv module (a header row, then one row per example). Problems
in the file end with one sentence naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

import torch

from trainkit.data.tabular import TabularRegressionDataModule
from trainkit.data.text import TextDataModule
from trainkit.errors import ConfigError, DataError


def resolve(path: str | None, key: str, example: str) -> Path:
    """The file a config value points at; relative paths are relative to the launch directory.

    Checked when the data is loaded, not in __init__: Hydra wraps errors raised while it
    instantiates the DataModule into a multi-line InstantiationException.
    """
    if path in (None, "", "???"):
        raise ConfigError(
            f"data.{key} is required: give the CSV file, e.g. `python train.py "
            f"{example} data.{key}=my_data.csv`."
        )
    return Path(path).expanduser().resolve()


def read_csv(
    path: Path, key: str, delimiter: str = ",", encoding: str = "utf-8"
) -> tuple[list[str], list[list[str]], list[int]]:
    """(header, rows, line number of each row) of a CSV file; `key` is the path's config key.

    Blank lines are skipped; a row with fewer or more fields than the header is an error, since it
    usually means a wrong delimiter or broken quoting.
    """
    if not path.is_file():
        raise DataError(
            f"CSV file {path} (data.{key}) does not exist; check the path (a relative "
            f"path is relative to the directory you launch from, {Path.cwd()})."
        )
    rows, lines = [], []
    try:
        with path.open(newline="", encoding=encoding) as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise DataError(f"CSV file {path} is empty; it needs a header row and data rows.")
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"line {reader.line_num} of {path} has {len(row)} fields but "
                        f"the header has {len(header)}; check data.delimiter="
                        f"{delimiter!r} and the quoting of that line."
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise DataError(
            f"CSV file {path} is not valid {encoding} text ({err.reason} at byte "
            f"{err.start}); set data.encoding (e.g. latin-1) or convert it."
        ) from err
    except csv.Error as err:
        raise DataError(f"CSV file {path} could not be parsed ({err}); check its quoting.") from err
    if not rows:
        raise DataError(
            f"CSV file {path} has a header but no data rows; add rows or point "
            f"data.{key} at another file."
        )
    return [h.strip() for h in header], rows, lines


def columns_of(
    path: Path, header: list[str], rows: list[list[str]], names: list[str], delimiter: str
) -> list[list[str]]:
    """The values of the named columns, or one sentence listing the columns the file has."""
    absent = [c for c in names if c not in header]
    if absent:
        raise DataError(
            f"CSV file {path} has no column {absent[0]!r}; its columns are "
            f"{', '.join(map(repr, header))} (check data.delimiter={delimiter!r} too)."
        )
    return [[row[i] for row in rows] for i in map(header.index, names)]


def to_floats(path: Path, column: str, raw: list[str], lines: list[int]) -> list[float]:
    """Parse a numeric column; the first bad cell is reported with its line and column."""
    out = []
    for text, line in zip(raw, lines, strict=True):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataError(
                f"line {line} of {path}, column {column!r}: {text!r} is not a finite "
                "number; fix or remove that row (or leave the column out with "
                "data.feature_columns)."
            )
        out.append(value)
    return out


def sort_labels(labels: set[str]) -> list[str]:
    """Class names in id order: numerically when every label is an integer ("2" < "10")."""
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


class TextCSVDataModule(TextDataModule):
    """Texts and labels from a CSV file; labels may be any strings, any number of classes.

    Class ids follow the sorted labels of the training file (`path`); `class_names` keeps the
    labels. With `test_path` the test set is that file, else it is carved from `path` like the
    validation set (stratified by label, seeded).
    """

    def __init__(
        self,
        path: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        test_path: str | None = None,
        delimiter: str = ",",
        encoding: str = "utf-8",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.path, self.test_path = path, test_path
        self.text_column, self.label_column = text_column, label_column
        self.delimiter, self.encoding = delimiter, encoding
        self._label_counts: Counter[str] = Counter()

    def _read(self, path: Path, key: str) -> tuple[list[str], list[str], list[int]]:
        header, rows, lines = read_csv(path, key, self.delimiter, self.encoding)
        names = [self.text_column, self.label_column]
        texts, labels = columns_of(path, header, rows, names, self.delimiter)
        labels = [v.strip() for v in labels]
        if "" in labels:
            line = lines[labels.index("")]
            raise DataError(
                f"line {line} of {path} has an empty label (column "
                f"{self.label_column!r}); fill it in or remove the row."
            )
        return texts, labels, lines

    def load_corpus(self) -> tuple[dict[str, tuple[list[str], list[int]]], list[str]]:
        path = resolve(self.path, "path", "model=text data=text_csv")
        texts, labels, _ = self._read(path, "path")
        classes = sort_labels(set(labels))
        if len(classes) < 2:
            raise DataError(
                f"every row of {path} has the label {classes[0]!r}; a classifier "
                "needs at least two classes."
            )
        ids = {name: i for i, name in enumerate(classes)}
        corpus = {"train": (texts, [ids[lab] for lab in labels])}
        if self.test_path:
            test_path = resolve(self.test_path, "test_path", "model=text data=text_csv")
            test_texts, test_labels, lines = self._read(test_path, "test_path")
            unknown = [
                (lab, line) for lab, line in zip(test_labels, lines, strict=True) if lab not in ids
            ]
            if unknown:
                lab, line = unknown[0]
                raise DataError(
                    f"line {line} of {test_path} has the label {lab!r}, which is "
                    f"not among the classes of {path} ({', '.join(classes)}); "
                    "the model cannot learn a class it never sees in training."
                )
            corpus["test"] = (test_texts, [ids[lab] for lab in test_labels])
        self._label_counts = Counter(labels)
        return corpus, classes

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


class RegressionCSVDataModule(TabularRegressionDataModule):
    """Numeric features and a numeric target from a CSV file.

    `feature_columns: null` uses every column except the target. Features and target are
    standardised with statistics of the training split only (see tabular.py).
    """

    def __init__(
        self,
        path: str | None = None,
        target_column: str | None = None,
        feature_columns: list[str] | None = None,
        delimiter: str = ",",
        encoding: str = "utf-8",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.path, self.target_column = path, target_column
        self.feature_columns = None if feature_columns is None else list(feature_columns)
        self.delimiter, self.encoding = delimiter, encoding
        self.feature_names: list[str] = []

    def load_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        path = resolve(self.path, "path", "model=regression data=regression_csv")
        target = self.target_column
        if target in (None, "", "???"):
            raise ConfigError(
                "data.target_column is required: name the column to predict, e.g. "
                "data.target_column=price."
            )
        if self.feature_columns is not None and target in self.feature_columns:
            raise ConfigError(
                f"data.feature_columns contains the target {target!r}; remove it "
                "(the model must not see what it predicts)."
            )
        if self.feature_columns == []:
            raise ConfigError("data.feature_columns is empty; list columns or use null for all.")
        header, rows, lines = read_csv(path, "path", self.delimiter, self.encoding)
        features = self.feature_columns or [c for c in header if c != target]
        columns = [*features, target]
        values = columns_of(path, header, rows, columns, self.delimiter)
        if not features:
            raise DataError(
                f"CSV file {path} has no column besides the target "
                f"{self.target_column!r}; a regression needs at least one feature."
            )
        numbers = [to_floats(path, c, v, lines) for c, v in zip(columns, values, strict=True)]
        self.feature_names = features
        x = torch.tensor(numbers[:-1], dtype=torch.float32).T.contiguous()
        return x, torch.tensor(numbers[-1], dtype=torch.float32)
