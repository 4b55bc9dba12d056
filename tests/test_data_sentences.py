"""data=sentiment_sentences: the UCI sentences through the real paths a user takes, with no
network: a placed folder or zip checked by SHA-256, the download (from a file:// URL), and one
sentence for each way it goes wrong. The real files are used where this workspace has them."""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from helpers import ROOT, make_cfg
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from trainkit.data import sentences
from trainkit.errors import DataError

# the real files, outside the repository (a copy in the workspace; CI has one beside its clone)
LOCAL_COPY = Path(
    os.environ.get("TRAINKIT_SENTENCES_COPY", ROOT.parent / "shared/data/sentiment_sentences")
)
needs_copy = pytest.mark.skipif(
    not all((LOCAL_COPY / f).is_file() for f in sentences.FILES),
    reason=f"the real sentences are not in {LOCAL_COPY} (set TRAINKIT_SENTENCES_COPY)",
)


def datamodule(data_dir: Path, *overrides: str):
    cfg = make_cfg(
        ["model=text", "data=sentiment_sentences", f"paths.data_dir={data_dir}", *overrides],
        data_dir / "run",
    )
    GlobalHydra.instance().clear()
    return instantiate(cfg.data)


@pytest.fixture
def fake_release(tmp_path: Path, monkeypatch) -> Path:
    """Three small files in the release's format and a zip of them (in the zip's folder, with a
    __MACOSX entry as the UCI zip has), made the known ones for this test."""
    files = {}
    for i, name in enumerate(sentences.FILES):
        lines = [f"good thing number {k} of {i}\t1" for k in range(10)]
        lines += [f'"bad thing, ""number"" {k} of {i}"\t0' for k in range(10)]
        files[name] = ("\r\n".join(lines) + "\r\n").encode()
    archive = tmp_path / "release" / sentences.ARCHIVE
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"{sentences.FOLDER}/{name}", data)
            zf.writestr(f"__MACOSX/{sentences.FOLDER}/._{name}", b"junk")
    known = {n: {hashlib.sha256(d).hexdigest(): "test"} for n, d in files.items()}
    monkeypatch.setattr(sentences, "KNOWN", known)
    monkeypatch.setattr(sentences, "ARCHIVE_SHA256", sentences.sha256(archive))
    return archive


def test_download_extracts_checks_and_reads_the_release(tmp_path: Path, fake_release, monkeypatch):
    monkeypatch.setattr(sentences, "URL", fake_release.as_uri())  # file://: no network
    data = tmp_path / "data"
    dm = datamodule(data, "data.download=true", "data.min_freq=1")
    corpus = dm.split_texts()
    assert {p.name for p in data.iterdir()} == {sentences.ARCHIVE, sentences.FOLDER, "run"}
    assert sum(len(y) for _, y in corpus.values()) == 60 and dm.class_names == [
        "negative",
        "positive",
    ]
    texts = [t for ts, _ in corpus.values() for t in ts]
    assert 'bad thing, "number" 3 of 1' in texts  # CSV quotes read away
    dm.setup()
    assert dm.dims["num_classes"] == 2 and sum(dm.split_sizes().values()) == 60
    # the next run finds the checked folder and downloads nothing
    monkeypatch.setattr(sentences, "URL", "file:///nonexistent/zip")
    assert len(datamodule(data).split_texts()["train"][0]) == 42


def test_a_placed_zip_is_checked_then_extracted(tmp_path: Path, fake_release):
    data = tmp_path / "data"
    data.mkdir()
    (data / sentences.ARCHIVE).write_bytes(fake_release.read_bytes())
    assert datamodule(data).locate() == data / sentences.FOLDER
    (data / sentences.ARCHIVE).write_bytes(fake_release.read_bytes()[:-10])
    (data / sentences.FOLDER / sentences.FILES[1]).unlink()
    with pytest.raises(DataError, match=r"has no imdb_labelled.txt; delete the folder and put"):
        datamodule(data).locate()
    import shutil

    shutil.rmtree(data / sentences.FOLDER)
    with pytest.raises(DataError, match=r"fails its SHA-256 check \(expected afc2|fails its SHA"):
        datamodule(data).locate()


def test_missing_changed_and_undownloadable_files_are_one_sentence(
    tmp_path: Path, fake_release, monkeypatch
):
    data = tmp_path / "data"
    with pytest.raises(DataError) as missing:
        datamodule(data).locate()
    said = str(missing.value)
    assert said.startswith("the sentiment sentences are missing: neither 'sentiment labelled ")
    assert "data.download=true` on a machine with internet, or put the UCI zip (https://" in said
    assert said.endswith("or train offline now with data=synthetic_text.")
    monkeypatch.setattr(sentences, "URL", (tmp_path / "nowhere.zip").as_uri())
    with pytest.raises(DataError, match=r"^The sentiment sentences could not be downloaded into "):
        datamodule(data, "data.download=true").locate()
    folder = data / sentences.FOLDER
    with zipfile.ZipFile(fake_release) as zf:
        zf.extractall(data)
    (folder / "yelp_labelled.txt").write_bytes(b"changed\t1\r\n")
    with pytest.raises(DataError, match=r"yelp_labelled.txt is not a known copy of the UCI file"):
        datamodule(data).locate()


@needs_copy
def test_the_real_sentences_as_a_user_places_them(tmp_path: Path, monkeypatch):
    """The copy placed as the UCI zip unpacks (each file's SHA-256 known): 2,990 sentences, the
    same split as data=text_csv gives on the three files, and TF-IDF + LR's accuracy on it."""
    folder = tmp_path / "data" / sentences.FOLDER
    folder.mkdir(parents=True)
    for name in sentences.FILES:
        (folder / name).symlink_to(LOCAL_COPY / name)
    corpus = datamodule(tmp_path / "data").split_texts()
    labels = [y for _, ys in corpus.values() for y in ys]
    assert len(labels) == 2990 and Counter(labels) == {0: 1496, 1: 1494}
    assert {k: len(v[1]) for k, v in corpus.items()} == {"train": 2094, "val": 448, "test": 448}
    texts = [t for ts, _ in corpus.values() for t in ts]
    assert any("clichés" in t for t in texts)  # ISO-8859-1 read as such
    assert not any("\t" in t or "\r" in t or t.startswith('"') for t in texts)
    csv_args = ["data=text_csv", f"data.path={LOCAL_COPY}/*_labelled.txt", "data.header=false"]
    csv_args += ["data.text_column=0", "data.label_column=1", "data.delimiter=tab"]
    as_csv = make_cfg(["model=text", *csv_args, "data.encoding=latin-1"], tmp_path / "csv")
    assert instantiate(as_csv.data).split_texts() == corpus
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import text_baseline

    args = ["model=text", "data=sentiment_sentences", f"paths.data_dir={tmp_path / 'data'}"]
    (row,) = text_baseline.main([*args, "--seeds", "42"])
    assert row["LR words"] == pytest.approx(0.8304, abs=1e-4)  # as measured outside trainkit
    GlobalHydra.instance().clear()
