"""UCI Sentiment Labelled Sentences (Kotzias et al., KDD 2015): 3,000 review sentences from
Amazon, IMDB and Yelp, labelled negative (0) / positive (1). CC BY 4.0.

Where the sentences come from, first match wins:

1. `<data_dir>/sentiment labelled sentences/{amazon_cells,imdb,yelp}_labelled.txt` (the folder
   the UCI zip unpacks to): each file must be a known copy, checked by its SHA-256 (`KNOWN`);
2. `<data_dir>/sentiment+labelled+sentences.zip` (the UCI download): checked by its SHA-256,
   then its three files are extracted into that folder and checked as in 1;
3. with `download: true`, the zip is downloaded from the UCI repository, then as 2.

A file is read as it comes: one sentence and its label per line (`sentence<TAB>label`), CRLF or
LF, UTF-8 or (failing that) ISO-8859-1, a sentence wrapped in CSV quotes unwrapped. Validation
and test are carved from the sentences (stratified by label, seeded), as `data=text_csv` carves
them from the same three files read as one.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import shutil
import zipfile
from pathlib import Path

from trainkit.data.base import download_error
from trainkit.data.text import TextDataModule
from trainkit.errors import DataError

log = logging.getLogger(__name__)

URL = "https://archive.ics.uci.edu/static/public/331/sentiment+labelled+sentences.zip"
ARCHIVE = "sentiment+labelled+sentences.zip"
# the archive as the UCI repository serves it (84,188 bytes), as pinned by public projects that
# download it
ARCHIVE_SHA256 = "afc26626d710899948693e1a61405dce197f57ffa719fa1130d346b4cc095343"
FOLDER = "sentiment labelled sentences"  # the folder in the zip
FILES = ("amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt")
# SHA-256 of every copy of each file known to be the data set: the UCI archive's members (as
# pinned by a public project that checks them after the archive), and a public copy that was
# rewritten with CRLF endings and CSV quotes (imdb: 990 lines, ISO-8859-1)
KNOWN = {
    "amazon_cells_labelled.txt": {
        "47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3": "UCI archive",
        "16b1872aba98fb5f40e21ac76fc57615058010bba6c9388d101ec415995b638d": "CRLF, CSV quotes",
    },
    "imdb_labelled.txt": {
        "aef2e49e3da25714d61175e3a6e68eeef74a20a2f914318dc3be9947ea86512d": "UCI archive",
        "a42450a6f0b2af9bd3738ca2a9af355678e90e5a0f8b83f849d60b59235faaa7": "CRLF, CSV quotes",
    },
    "yelp_labelled.txt": {
        "c76468b7b5c6e56a0804d728345c5f84aa2142ddb214420f61cc9cfd4c00d2ea": "UCI archive",
        "b1428e7e7452834f99401a1be3cc6abc778f92c1c8a12cad9adac2add9e714b3": "CRLF, CSV quotes",
    },
}
COMMAND = "`python train.py model=text data=sentiment_sentences data.download=true`"
OFFLINE = "or train offline now with data=synthetic_text"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_sentences(path: Path) -> tuple[list[str], list[int]]:
    """The sentences and labels of one file: `sentence<TAB>label` per physical line (a sentence
    may hold Unicode line separators: only CR and LF end a line)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    texts, labels = [], []
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
        if not line.strip():
            continue
        sentence, tab, label = line.rpartition("\t")
        if not tab or label.strip() not in ("0", "1"):
            raise DataError(
                f"{path}, line {number}: expected `sentence<TAB>0 or 1`, got {line[:60]!r}; "
                "replace the file with the original."
            )
        if sentence.startswith('"') and sentence.endswith('"') and len(sentence) > 1:
            sentence = next(csv.reader([sentence]))[0]  # a CSV-quoted copy: unquote
        texts.append(sentence)
        labels.append(int(label))
    return texts, labels


def fetch(url: str, target: Path) -> None:
    """Download `url` to `target` through a temporary sibling (no half file under its name)."""
    import urllib.request

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    request = urllib.request.Request(url, headers={"User-Agent": "trainkit"})
    with urllib.request.urlopen(request, timeout=60) as response, partial.open("wb") as out:
        shutil.copyfileobj(response, out)
    partial.replace(target)


class SentimentSentencesDataModule(TextDataModule):
    """The 3,000 UCI sentences as a bag of unigrams + hashed bigrams (see text.py)."""

    def __init__(
        self,
        data_dir: str = "data",
        download: bool = False,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        **kwargs,
    ) -> None:
        super().__init__(val_fraction=val_fraction, test_fraction=test_fraction, **kwargs)
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.download = download

    @property
    def folder(self) -> Path:
        return self.data_dir / FOLDER

    def prepare_data(self) -> None:
        """Find the files; extract or download them when needed (one process only)."""
        self.locate()

    def locate(self) -> Path:
        """The folder of the three checked files, extracted from the zip (downloaded if allowed)
        when it is not there."""
        if not self.folder.exists():
            self.extract(self.archive())
        for name in FILES:
            path = self.folder / name
            if not path.is_file():
                raise DataError(
                    f"{self.folder} has no {name}; delete the folder and put the UCI zip "
                    f"{ARCHIVE} in {self.data_dir} (or run {COMMAND})."
                )
            digest = sha256(path)
            if digest not in KNOWN[name]:
                raise DataError(
                    f"{path} is not a known copy of the UCI file (its SHA-256 is {digest[:12]}...: "
                    f"changed, truncated or another file); delete {self.folder} and put the UCI "
                    f"zip {ARCHIVE} in {self.data_dir}, or run {COMMAND}."
                )
        return self.folder

    def archive(self) -> Path:
        """The UCI zip in data_dir, checked; downloaded first when allowed and missing."""
        archive = self.data_dir / ARCHIVE
        where = f"put the UCI zip ({URL}) or its unpacked folder '{FOLDER}' in {self.data_dir}"
        if archive.is_file() and sha256(archive) == ARCHIVE_SHA256:
            return archive
        if self.download:  # also replaces a damaged zip
            try:
                fetch(URL, archive)
                if sha256(archive) != ARCHIVE_SHA256:
                    raise ValueError(f"{ARCHIVE} fails its SHA-256 check")
            except Exception as err:  # urllib, http and checksum errors
                raise download_error(
                    "The sentiment sentences", self.data_dir, err, COMMAND, where, OFFLINE
                ) from err
            return archive
        if archive.is_file():
            raise DataError(
                f"{archive} fails its SHA-256 check (expected {ARCHIVE_SHA256[:12]}...: corrupt, "
                f"incomplete or another file); delete it and run {COMMAND}."
            )
        raise DataError(
            f"the sentiment sentences are missing: neither '{FOLDER}/' nor {ARCHIVE} is in "
            f"{self.data_dir}; run {COMMAND} on a machine with internet, or {where}, {OFFLINE}."
        )

    def extract(self, archive: Path) -> None:
        """The three files of the zip into the folder, through a temporary sibling renamed at
        the end (an interrupted extraction leaves no half folder); other members are skipped."""
        partial = self.folder.with_name(FOLDER + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            with zipfile.ZipFile(archive) as zf:
                members = {Path(n).name: n for n in zf.namelist() if "__MACOSX" not in n}
                for name in FILES:
                    (partial / name).write_bytes(zf.read(members[name]))
        except (KeyError, zipfile.BadZipFile, OSError) as err:
            shutil.rmtree(partial, ignore_errors=True)
            raise DataError(
                f"{archive} could not be extracted ({type(err).__name__}: {err}); delete it and "
                f"run {COMMAND}."
            ) from err
        partial.rename(self.folder)
        log.info("extracted the sentiment sentences of %s into %s", archive, self.folder)

    def load_corpus(self) -> tuple[dict[str, tuple[list[str], list[int]]], list[str]]:
        folder = self.locate()
        texts: list[str] = []
        labels: list[int] = []
        for name in FILES:
            t, y = read_sentences(folder / name)
            texts += t
            labels += y
        self.report.update(sentences=len(texts), files=[str(folder / n) for n in FILES])
        return {"train": (texts, labels)}, ["negative", "positive"]
