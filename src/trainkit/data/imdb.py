"""IMDB Large Movie Review Dataset v1 (Maas et al. 2011): 50,000 polar movie reviews.

Where the reviews come from, first match wins:

1. `<data_dir>/aclImdb/{train,test}/{pos,neg}/*.txt` (the extracted release);
2. `<data_dir>/aclImdb_v1.tar.gz`: md5-checked, then the labelled reviews are extracted into
   `<data_dir>/aclImdb/` (train/unsup, 50,000 unlabelled reviews, is skipped);
3. with `download: true`, the tarball is downloaded from Stanford (md5-checked), then as 2.

Labels: 0 = negative (`neg/`), 1 = positive (`pos/`). The official test split is the test set;
validation is carved from the training reviews (seeded, stratified). Text cleaning (`<br />`
tags, punctuation, case) is the tokenizer's of text.py.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tarfile
from pathlib import Path

from trainkit.data.base import download_error
from trainkit.data.text import TextDataModule
from trainkit.errors import DataError

log = logging.getLogger(__name__)

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
ARCHIVE = "aclImdb_v1.tar.gz"
MD5 = "7c2ac02c03563afcf9b574c7e56c153a"  # as published with torchtext's IMDB dataset
FOLDERS = ("train/neg", "train/pos", "test/neg", "test/pos")  # label = index of neg/pos
REVIEWS_PER_FOLDER = 12_500
_MEMBER = re.compile(r"aclImdb/(train|test)/(pos|neg)/[^/]+\.txt")
OFFLINE = "or train offline now with data=synthetic_text"


def extract_reviews(archive: Path, target: Path) -> None:
    """Extract the labelled reviews of `archive` into `target` (= <data_dir>/aclImdb).

    Writes into a temporary sibling and renames it at the end, so an interrupted extraction never
    leaves a half-filled folder that a later run would take for the whole dataset. Members are
    read and written by hand: only names matching `_MEMBER` are written, so no path in the
    archive can point outside `target`.
    """
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if not (member.isfile() and _MEMBER.fullmatch(member.name)):
                    continue
                out = partial / member.name.removeprefix("aclImdb/")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(tar.extractfile(member).read())
    except (tarfile.TarError, EOFError, OSError) as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise DataError(
            f"{archive} could not be extracted ({err}); delete it and download it "
            "again with data.download=true."
        ) from err
    missing = [f for f in FOLDERS if not (partial / f).is_dir()]
    if missing:
        shutil.rmtree(partial, ignore_errors=True)
        raise DataError(
            f"{archive} has no reviews in aclImdb/{missing[0]}; it is not the aclImdb "
            f"v1 release: delete it and download it again with data.download=true."
        )
    partial.rename(target)


def read_folder(folder: Path, label: int) -> tuple[list[str], list[int]]:
    """All reviews of one folder, in file-name order (deterministic), and their label.

    A plain loop: 12,500 files take ~0.6 s with a warm cache here (threads were slower).
    """
    names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".txt"))
    texts = [(folder / n).read_text(encoding="utf-8", errors="replace") for n in names]
    return texts, [label] * len(texts)


class IMDBDataModule(TextDataModule):
    """aclImdb v1 as a bag of unigrams + hashed bigrams (see text.py and conf/data/imdb.yaml)."""

    config, unit = "imdb", "reviews"

    def __init__(
        self, data_dir: str = "data", download: bool = False, val_fraction: float = 0.1, **kwargs
    ) -> None:
        super().__init__(val_fraction=val_fraction, test_fraction=0.0, **kwargs)
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.download = download

    @property
    def folder(self) -> Path:
        return self.data_dir / "aclImdb"

    def source(self) -> dict:
        """The release (its tarball's md5); the reviews themselves are hashed one by one."""
        return {"dataset": "IMDB (aclImdb v1)", "release_md5": MD5}

    def prepare_data(self) -> None:
        """Find the reviews; extract or download them when needed (one process only)."""
        self.locate()

    def locate(self) -> Path:
        """The aclImdb folder, extracted from the tarball (downloaded if allowed) when missing."""
        if self.folder.exists():
            missing = [f for f in FOLDERS if not (self.folder / f).is_dir()]
            if missing:
                raise DataError(
                    f"{self.folder} is incomplete: it has no {missing[0]}/ folder; "
                    f"delete it and put the whole aclImdb folder or {ARCHIVE} in "
                    f"{self.data_dir}."
                )
            return self.folder
        archive = self.data_dir / ARCHIVE
        command = "`python train.py model=text data=imdb data.download=true`"
        where = f"put the aclImdb folder or {ARCHIVE} ({URL}) in {self.data_dir}"
        from torchvision.datasets.utils import check_integrity, download_url

        if check_integrity(archive, MD5):  # False when the file is missing
            pass
        elif self.download:  # also replaces a damaged tarball
            try:
                self.data_dir.mkdir(parents=True, exist_ok=True)
                download_url(URL, str(self.data_dir), ARCHIVE, md5=MD5)  # raises on a bad md5
            except Exception as err:  # urllib, http and checksum errors
                raise download_error("IMDB", self.data_dir, err, command, where, OFFLINE) from err
        elif archive.is_file():
            raise DataError(
                f"{archive} fails its md5 check (expected {MD5}: corrupt, incomplete "
                f"or not the aclImdb v1 release); delete it and run {command}."
            )
        else:
            raise DataError(
                f"IMDB is missing: neither aclImdb/ nor {ARCHIVE} is in "
                f"{self.data_dir}; run {command} on a machine with internet, or "
                f"{where}, {OFFLINE}."
            )
        log.info("extracting the labelled reviews of %s into %s", archive, self.folder)
        extract_reviews(archive, self.folder)
        return self.folder

    def load_corpus(self) -> tuple[dict[str, tuple[list[str], list[int]]], list[str]]:
        folder = self.locate()
        corpus: dict[str, tuple[list[str], list[int]]] = {}
        for split in ("train", "test"):
            texts, labels = [], []
            for label, polarity in enumerate(("neg", "pos")):
                t, y = read_folder(folder / split / polarity, label)
                if not t:
                    raise DataError(
                        f"{folder / split / polarity} holds no .txt reviews; delete "
                        f"{folder} and extract or download aclImdb again."
                    )
                if len(t) != REVIEWS_PER_FOLDER:
                    log.warning(
                        "%s holds %d reviews; the aclImdb v1 release has %d",
                        folder / split / polarity,
                        len(t),
                        REVIEWS_PER_FOLDER,
                    )
                texts += t
                labels += y
            corpus[split] = (texts, labels)
        return corpus, ["negative", "positive"]
