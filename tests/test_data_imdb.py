"""IMDB (aclImdb v1) on a tiny folder and tarball written in the release's layout.

The real tarball's md5 cannot be matched by a fixture: tests that go through the tarball patch
`trainkit.data.imdb.MD5` with the fixture's md5, so the check itself still runs (and a wrong md5
is still refused, see below). No test touches the network: downloads are replaced by fakes.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from helpers import ADAM, fit_one_batch
from hydra.utils import instantiate

from trainkit.data import imdb
from trainkit.data.imdb import IMDBDataModule
from trainkit.errors import DataError

N = 10  # reviews per folder


def review(split: str, polarity: str, i: int) -> str:
    word = "Great" if polarity == "pos" else "Awful"
    return f"{word} film!<br /><br />{split}tok{polarity}{i} {split}tok{polarity}{i}, truly {word}."


def write_aclimdb(root: Path) -> Path:
    """aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt plus the files the release also has."""
    folder = root / "aclImdb"
    for split in ("train", "test"):
        for polarity in ("pos", "neg"):
            d = folder / split / polarity
            d.mkdir(parents=True)
            rating = 8 if polarity == "pos" else 2
            for i in range(N):
                (d / f"{i}_{rating}.txt").write_text(review(split, polarity, i))
        (folder / split / "urls_pos.txt").write_text("http://www.imdb.com/title/tt0453418/\n")
    (folder / "train" / "unsup").mkdir()
    (folder / "train" / "unsup" / "0_0.txt").write_text("unsupword unlabelled review")
    (folder / "imdb.vocab").write_text("the\nand\n")
    return folder


def write_tarball(root: Path) -> Path:
    """aclImdb_v1.tar.gz made from a fixture folder, plus a member that tries to escape."""
    src = write_aclimdb(root / "src")
    archive = root / "data" / imdb.ARCHIVE
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="aclImdb")
        evil = tarfile.TarInfo("aclImdb/train/pos/../../../../evil.txt")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
    return archive


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_reads_the_folder_with_labels_and_official_test_split(tmp_path: Path) -> None:
    write_aclimdb(tmp_path)
    dm = IMDBDataModule(data_dir=str(tmp_path), val_fraction=0.2, min_freq=1, max_length=64)
    corpus, names = dm.load_corpus()
    assert names == ["negative", "positive"]
    texts, labels = corpus["train"]
    assert len(texts) == 2 * N and labels == [0] * N + [1] * N
    assert all(("Awful" in t) == (lab == 0) for t, lab in zip(texts, labels, strict=True))
    assert len(corpus["test"][0]) == 2 * N and "val" not in corpus
    dm.setup()
    assert dm.split_sizes() == {"train": 16, "val": 4, "test": 2 * N}
    assert torch.bincount(dm.splits["val"][2]).tolist() == [2, 2]  # stratified
    ids, lengths, y = dm.splits["test"]
    assert ids.dtype == torch.long and y.dtype == torch.long and ids.shape[0] == 2 * N
    assert dm.dims == {"vocab_size": len(dm.vocab) + dm.bigram_buckets, "num_classes": 2}


def test_vocabulary_from_training_split_only_and_text_cleaned(tmp_path: Path) -> None:
    write_aclimdb(tmp_path)
    dm = IMDBDataModule(data_dir=str(tmp_path), val_fraction=0.2, min_freq=1, ngrams=1)
    dm.setup()
    words = set(dm.vocab.itos)
    assert {"great", "awful", "film", "truly"} <= words
    assert not {"br", "Great", "film!", "unsupword"} & words  # tags, case, punctuation, unsup
    assert not any(w.startswith("testtok") for w in words)
    train_tokens = sorted(w for w in words if w.startswith("traintok"))
    assert len(train_tokens) == 16  # one per training review; the 4 val reviews' are unknown
    val_ids = dm.splits["val"][0]
    assert (val_ids == dm.vocab.lookup("<unk>")).sum(1).tolist() == [2] * 4


def test_split_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    write_aclimdb(tmp_path)

    def train_ids(seed: int) -> list:
        dm = IMDBDataModule(data_dir=str(tmp_path), seed=seed, val_fraction=0.4, min_freq=1)
        dm.setup()
        return dm.splits["train"][0].tolist()

    assert train_ids(3) == train_ids(3)
    assert train_ids(3) != train_ids(4)


def test_extracts_the_tarball_once(tmp_path: Path, monkeypatch) -> None:
    archive = write_tarball(tmp_path)
    monkeypatch.setattr(imdb, "MD5", md5(archive))
    data = archive.parent
    dm = IMDBDataModule(data_dir=str(data), val_fraction=0.2, min_freq=1)
    dm.prepare_data()
    dm.setup()
    assert dm.split_sizes() == {"train": 16, "val": 4, "test": 2 * N}
    assert sorted(p.name for p in (data / "aclImdb").iterdir()) == ["test", "train"]
    assert not (data / "aclImdb" / "train" / "unsup").exists()
    assert not list(tmp_path.rglob("evil.txt")) and not list(data.glob("*.partial"))
    archive.unlink()  # the next run reads the extracted folder
    assert IMDBDataModule(data_dir=str(data)).load_corpus()[0]["test"][1].count(1) == N


def test_tarball_with_wrong_md5_is_refused(tmp_path: Path) -> None:
    archive = write_tarball(tmp_path)
    with pytest.raises(DataError, match="fails its md5 check") as err:
        IMDBDataModule(data_dir=str(archive.parent)).setup()
    assert str(archive) in str(err.value) and imdb.MD5 in str(err.value)
    assert not (archive.parent / "aclImdb").exists()


def test_truncated_tarball_leaves_no_partial_folder(tmp_path: Path, monkeypatch) -> None:
    archive = write_tarball(tmp_path)
    archive.write_bytes(archive.read_bytes()[:-200])
    monkeypatch.setattr(imdb, "MD5", md5(archive))
    with pytest.raises(DataError, match="could not be extracted"):
        IMDBDataModule(data_dir=str(archive.parent)).setup()
    assert [p.name for p in archive.parent.iterdir()] == [imdb.ARCHIVE]


def test_missing_dataset_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        IMDBDataModule(data_dir=str(tmp_path)).setup()
    msg = str(err.value)
    assert msg.startswith("IMDB is missing") and str(tmp_path) in msg
    assert "data=imdb data.download=true" in msg and imdb.URL in msg
    assert "data=synthetic_text" in msg and "\n" not in msg


def test_download_failure_and_success(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def offline(url, root, filename, md5):
        calls.append((url, md5))
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr("torchvision.datasets.utils.download_url", offline)
    with pytest.raises(DataError, match="IMDB could not be downloaded .*Name or service"):
        IMDBDataModule(data_dir=str(tmp_path), download=True).setup()
    assert calls == [(imdb.URL, imdb.MD5)]  # the published checksum is handed to the download

    archive = write_tarball(tmp_path / "mirror")
    monkeypatch.setattr(imdb, "MD5", md5(archive))

    def fake_download(url, root, filename, md5):
        (Path(root) / filename).write_bytes(archive.read_bytes())

    monkeypatch.setattr("torchvision.datasets.utils.download_url", fake_download)
    damaged = tmp_path / "data" / imdb.ARCHIVE  # an interrupted earlier download
    damaged.parent.mkdir()
    damaged.write_bytes(archive.read_bytes()[:1000])
    dm = IMDBDataModule(data_dir=str(tmp_path / "data"), download=True, min_freq=1)
    dm.prepare_data()  # downloads again instead of refusing the damaged file
    assert (tmp_path / "data" / "aclImdb" / "test" / "pos" / "0_8.txt").is_file()


def test_incomplete_or_empty_folder(tmp_path: Path) -> None:
    folder = write_aclimdb(tmp_path)
    for f in (folder / "test" / "neg").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="test/neg holds no .txt reviews"):
        IMDBDataModule(data_dir=str(tmp_path)).setup()
    (folder / "test" / "neg").rmdir()
    with pytest.raises(DataError, match="incomplete: it has no test/neg/ folder"):
        IMDBDataModule(data_dir=str(tmp_path)).setup()


def test_fit_with_the_text_model(tmp_path: Path, compose_cfg) -> None:
    from trainkit.models.text import TextClassifier

    write_aclimdb(tmp_path)
    cfg = compose_cfg(["model=text", "data=imdb", f"data.data_dir={tmp_path}", "data.min_freq=1"])
    dm = instantiate(cfg.data)
    assert isinstance(dm, IMDBDataModule) and dm.ngrams == 2 and dm.bigram_buckets >= 200_000
    model = TextClassifier(**dm.dims, embed_dim=8, optimizer=ADAM)
    assert fit_one_batch(model, dm).global_step == 1
