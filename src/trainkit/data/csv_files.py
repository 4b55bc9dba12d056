"""Delimited text files as they come: with or without a header row, any one-character delimiter
(`tab` by name), any encoding Python knows, CRLF or LF line endings, quoted fields, one file or
several read as one.

Every problem ends with one sentence naming the setting or the file and line, and what to do:
the data modules (csv_data.py) call `read_table` and pick their columns from the `Table`.
"""

from __future__ import annotations

import codecs
import csv
import glob
import hashlib
import io
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from trainkit.errors import ConfigError, DataError

# data.delimiter by name: a tab typed on the command line does not survive Hydra's parser
# (it strips whitespace), and `;` must be quoted there.
DELIMITERS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
GLOB_CHARS = "*?"


def check_delimiter(value: object) -> str:
    """The delimiter character for a `data.delimiter` value (a character or a name)."""
    if value in (None, ""):
        raise ConfigError(
            "data.delimiter is empty (a tab typed on the command line is stripped): give one "
            "character, e.g. data.delimiter=',' , or a name: tab, comma, semicolon, pipe, space."
        )
    char = DELIMITERS.get(str(value).lower(), value)
    if not isinstance(char, str) or len(char) != 1 or char in '"\r\n':
        raise ConfigError(
            f"data.delimiter={value!r} is not one character: give the character that separates "
            "the fields, e.g. data.delimiter=',' , or a name: tab, comma, semicolon, pipe, space."
        )
    return char


def check_encoding(value: object) -> str:
    """The codec to decode with: `data.encoding` as given, except that UTF-8 also reads away a
    byte-order mark (Excel writes one), which would otherwise glue itself to the first name."""
    try:
        name = codecs.lookup(str(value)).name
    except LookupError:
        raise ConfigError(
            f"data.encoding={value!r} is not an encoding Python knows; use e.g. utf-8, latin-1, "
            "cp1252 or utf-16."
        ) from None
    return "utf-8-sig" if name == "utf-8" else str(value)


def resolve_paths(value: object, key: str, example: str) -> list[Path]:
    """The files a `data.<key>` value names: one path, a list of paths, or a pattern with `*` /
    `?` (its matches, sorted). Relative paths are relative to the launch directory."""
    items = [value] if value is None or isinstance(value, (str, Path)) else list(value)
    if not items or any(item in (None, "", "???") for item in items):
        raise ConfigError(
            f"data.{key} is required: give the CSV file, e.g. `python train.py {example} "
            f"data.{key}=my_data.csv`."
        )
    paths: list[Path] = []
    for item in items:
        text = str(Path(str(item)).expanduser())
        if any(c in text for c in GLOB_CHARS):
            matches = sorted(glob.glob(text))
            if not matches:
                raise DataError(
                    f"data.{key}={item!r} matches no file (looked in "
                    f"{Path(text).parent.resolve()}); check the pattern."
                )
            paths += [Path(m).resolve() for m in matches]
        else:
            paths.append(Path(text).resolve())
    for path in paths:
        if path.is_dir():
            inside = sorted(p.name for p in path.iterdir() if p.is_file())
            more = ", ..." if len(inside) > 4 else ""
            hint = f" (it holds {', '.join(inside[:4])}{more})" if inside else ""
            raise DataError(
                f"data.{key}={str(path)!r} is a folder, not a file{hint}; give one file, a list "
                f"[a.csv,b.csv] or a pattern such as '{path}/*.csv'."
            )
        if not path.exists():
            raise DataError(
                f"CSV file {path} (data.{key}) does not exist; check the path (a relative "
                f"path is relative to the directory you launch from, {Path.cwd()})."
            )
    return paths


@dataclass
class Table:
    """The rows of one or more files read as one, each row with the file and line it came from.
    `header` holds the column names, or is None when the files have no header row; `files` the
    path, sha256 of its bytes and number of rows of each file (what identifies the data)."""

    header: list[str] | None
    rows: list[list[str]]
    where: list[tuple[Path, int]]
    files: list[dict] = field(default_factory=list)

    @property
    def width(self) -> int:
        return len(self.header) if self.header is not None else len(self.rows[0])

    def place(self, row: int) -> str:
        path, line = self.where[row]
        return f"line {line} of {path}"

    def name(self, index: int) -> str:
        return repr(self.header[index]) if self.header is not None else f"{index} (position)"

    def index(self, spec: object, key: str) -> int:
        """The position of the column that `data.<key>` names: a header name, or a position
        (0 = the first column), which is the only way without a header."""
        files = str(self.where[0][0])
        if isinstance(spec, str) and self.header is None and spec.strip().isdigit():
            spec = int(spec)
        if isinstance(spec, bool) or not isinstance(spec, (int, str)):
            raise ConfigError(f"data.{key} must be a column name or position, got {spec!r}.")
        if isinstance(spec, int):
            if not 0 <= spec < self.width:
                raise DataError(
                    f"data.{key}={spec} but {files} has {self.width} column(s), positions 0 to "
                    f"{self.width - 1}; check data.{key} and data.delimiter."
                )
            return spec
        if self.header is None:
            raise ConfigError(
                f"data.{key}={spec!r} is a column name, but data.header=false: give the "
                f"column's position instead (0 = the first of the {self.width} columns)."
            )
        if spec not in self.header:
            seen = [n for n, c in DELIMITERS.items() if c in self.header[0] and c not in " ,"]
            hint = f"data.delimiter={seen[0]}?" if self.width == 1 and seen else "data.delimiter"
            raise DataError(
                f"CSV file {files} has no column {spec!r}; its columns are "
                f"{', '.join(map(repr, self.header))} (check {hint}, and data.header=false for a "
                "file without a header row)."
            )
        return self.header.index(spec)

    def column(self, index: int) -> list[str]:
        return [row[index] for row in self.rows]


@contextmanager
def field_size_limit(limit: int):
    """csv's limit on one field (a process-wide setting), raised for the duration."""
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def read_table(
    paths: list[Path],
    key: str,
    delimiter: str = ",",
    encoding: str = "utf-8",
    header: bool = True,
    max_field_size: int = 10_000_000,
) -> Table:
    """Read `paths` (already resolved) as one table; blank lines are skipped.

    Every row must have as many fields as the header (or, without one, as the first row), and
    files read together must agree on the header: a mismatch usually means a wrong delimiter or
    broken quoting. Duplicate column names are refused (which one would be meant?).
    """
    table = Table(header=None, rows=[], where=[])
    for path in paths:
        names, rows, lines, sha256 = read_file(
            path, key, delimiter, encoding, header, max_field_size
        )
        table.files.append({"path": str(path), "sha256": sha256, "rows": len(rows)})
        if header:
            if names is None:
                raise DataError(f"CSV file {path} is empty; it needs a header row and data rows.")
            if table.header is not None and names != table.header:
                raise DataError(
                    f"the columns of {path} ({', '.join(map(repr, names))}) differ from those "
                    f"of {paths[0]} ({', '.join(map(repr, table.header))}); files read "
                    "together must have the same header."
                )
            table.header = names
        if not header and rows and not table.rows:  # without a header, the first row rules
            first = f"line {lines[0]} of {path} has"
            width = len(rows[0])
        elif header:
            first, width = "the header has", len(names)
        for row, line in zip(rows, lines, strict=True):
            if len(row) != width:
                raise DataError(
                    f"line {line} of {path} has {len(row)} field(s) but {first} {width}; "
                    f"check data.delimiter={delimiter!r}, data.header and the quoting of "
                    "that line."
                )
            table.rows.append(row)
            table.where.append((path, line))
    if not table.rows:
        files = ", ".join(map(str, paths))
        what = "a header but no data rows" if header else "no rows"
        raise DataError(
            f"CSV file {files} has {what}; add rows or point data.{key} at another file."
        )
    return table


def read_file(
    path: Path, key: str, delimiter: str, encoding: str, header: bool, max_field_size: int
) -> tuple[list[str] | None, list[list[str]], list[int], str]:
    """(header names or None, rows, the line where each row starts, sha256) of one file."""
    text, sha256 = decode(path, key, encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    names, rows, lines = None, [], []
    with field_size_limit(max_field_size):
        try:
            start = 1
            for row in reader:
                if row and header and names is None:
                    names = [h.strip() for h in row]
                elif row:
                    rows.append(row)
                    lines.append(start)
                start = reader.line_num + 1
        except csv.Error as err:
            if "field larger than field limit" in str(err):
                raise DataError(
                    f"line {start} of {path} has a field longer than data.max_field_size="
                    f"{max_field_size} characters: an unclosed quote makes one field of the "
                    "lines after it (check its quoting), or, for documents that long, raise "
                    "data.max_field_size."
                ) from err
            raise DataError(
                f"line {start} of {path} could not be parsed ({err}); check its quoting."
            ) from err
    if names is not None:
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in seen:
                raise DataError(
                    f"CSV file {path} has two columns named {name!r} (positions {seen[name]} "
                    f"and {i}); rename one so that a setting names one column."
                )
            seen[name] = i
    return names, rows, lines, sha256


def decode(path: Path, key: str, encoding: str) -> tuple[str, str]:
    """The file's text and the sha256 of its bytes (read once); an unreadable file or an
    undecodable byte is one sentence."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(
            f"CSV file {path} (data.{key}) could not be read ({err.strerror or err}); check "
            "that it is a file you may read."
        ) from err
    if raw.startswith(codecs.BOM_UTF8) and encoding != "utf-8-sig":
        raise DataError(
            f"CSV file {path} starts with a UTF-8 byte-order mark but data.encoding="
            f"{encoding}; it is UTF-8 text: set data.encoding=utf-8."
        )
    try:
        return raw.decode(encoding), hashlib.sha256(raw).hexdigest()
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        hint = "set data.encoding (e.g. latin-1 or cp1252) or convert the file to UTF-8"
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            hint = "it starts with a UTF-16 byte-order mark: set data.encoding=utf-16"
        shown = "utf-8" if encoding == "utf-8-sig" else encoding
        raise DataError(
            f"line {line} of CSV file {path} is not valid {shown} text (byte "
            f"0x{raw[err.start]:02x}); {hint}."
        ) from err
