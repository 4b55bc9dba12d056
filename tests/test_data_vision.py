"""MNIST / Fashion-MNIST / CIFAR-10 DataModules on tiny files written in the real formats.

IDX files go where torchvision 0.29 reads them (root/MNIST/raw/, uncompressed, no processed/).
CIFAR-10: torchvision checks each batch file against hard-coded md5 sums, which a tiny fixture
cannot match; the fixture patches those class attributes with the md5 sums of the files it wrote,
so the integrity check still runs (and a corrupted file still fails it, see the test below).
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path
from types import SimpleNamespace
from urllib.error import URLError

import lightning as L
import numpy as np
import pytest
import torch
from helpers import ADAM, fit_one_batch
from hydra.utils import instantiate
from lightning.pytorch.plugins.precision import Precision
from torchvision.datasets import CIFAR10

from trainkit.data.images import channel_stats, random_hflip, random_shift
from trainkit.data.torchvision_datasets import (
    CIFAR10DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
)
from trainkit.errors import DataError

N_TRAIN, N_TEST = 200, 50


def write_idx(path: Path, magic: int, array: np.ndarray) -> None:
    header = struct.pack(f">{array.ndim + 1}I", magic, *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str = "MNIST") -> Path:
    """Random images whose first two pixels encode the image's index (to track it)."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images = rng.integers(0, 256, (n, 28, 28))
        images[:, 0, 0], images[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
        write_idx(raw / f"{prefix}-images-idx3-ubyte", 2051, images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", 2049, (np.arange(n) * 7) % 10)
    return raw


@pytest.fixture
def mnist_root(tmp_path: Path) -> Path:
    write_mnist(tmp_path)
    return tmp_path


def image_ids(x: torch.Tensor) -> list[int]:
    return (x[:, 0, 0, 0].long() + 256 * x[:, 0, 0, 1].long()).tolist()


def test_mnist_shapes_dtypes_and_official_splits(mnist_root: Path) -> None:
    dm = MNISTDataModule(data_dir=str(mnist_root), val_fraction=0.1, batch_size=16)
    dm.setup()
    assert dm.split_sizes() == {"train": 180, "val": 20, "test": N_TEST}
    x, y = dm.splits["train"]
    assert x.dtype == torch.uint8 and x.shape == (180, 1, 28, 28) and y.dtype == torch.long
    assert dm.dims == {"input_shape": [1, 28, 28], "num_classes": 10}
    assert dm.class_names[3] == "3 - three"
    # test = the official test file, in order; val stratified: 2 of each class
    x_test, y_test = dm.splits["test"]
    assert image_ids(x_test) == list(range(N_TEST))
    assert y_test.tolist() == [(i * 7) % 10 for i in range(N_TEST)]
    assert torch.bincount(dm.splits["val"][1], minlength=10).tolist() == [2] * 10
    # train and val partition the official training set; labels travel with their image
    train_ids, val_ids = image_ids(x), image_ids(dm.splits["val"][0])
    assert sorted(train_ids + val_ids) == list(range(N_TRAIN))
    assert y.tolist() == [(i * 7) % 10 for i in train_ids]
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.dtype == torch.uint8 and xb.shape == (16, 1, 28, 28) and yb.shape == (16,)


def test_split_is_deterministic_for_a_seed(mnist_root: Path) -> None:
    def val_ids(seed: int) -> list[int]:
        dm = MNISTDataModule(data_dir=str(mnist_root), seed=seed)
        dm.setup()
        return image_ids(dm.splits["val"][0])

    assert val_ids(1) == val_ids(1)
    assert val_ids(1) != val_ids(2)


def test_fashion_mnist_reads_its_own_folder(tmp_path: Path) -> None:
    write_mnist(tmp_path, "FashionMNIST")
    dm = FashionMNISTDataModule(data_dir=str(tmp_path))
    dm.setup()
    assert dm.class_names[0] == "T-shirt/top" and dm.dims["num_classes"] == 10
    with pytest.raises(DataError, match="MNIST is missing"):  # plain MNIST is not there
        MNISTDataModule(data_dir=str(tmp_path)).setup()


def test_normalisation_uses_training_split_statistics(mnist_root: Path) -> None:
    dm = MNISTDataModule(data_dir=str(mnist_root))
    dm.setup()
    x_train = dm.splits["train"][0].double() / 255
    assert dm.fitted["mean"][0] == pytest.approx(x_train.mean().item(), abs=1e-9)
    assert dm.fitted["std"][0] == pytest.approx(x_train.std(unbiased=False).item(), abs=1e-9)
    z = dm.preprocess(dm.splits["train"][0])
    assert z.dtype == torch.float32
    assert z.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert z.std().item() == pytest.approx(1.0, abs=1e-3)
    fixed = MNISTDataModule(data_dir=str(mnist_root), mean=[0.5], std=[0.25])
    fixed.setup()
    x = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    assert fixed.preprocess(x).flatten().tolist() == pytest.approx([-2.0, 2.0])


def test_channel_stats_per_channel() -> None:
    x = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    x[:, 1] = 255
    x[:2, 2] = 255
    mean, std = channel_stats(x)
    assert mean == pytest.approx([0.0, 1.0, 0.5]) and std[2] == pytest.approx(0.5)


def test_random_shift_crops_the_zero_padded_image() -> None:
    torch.manual_seed(0)
    x = torch.randint(1, 256, (64, 3, 8, 8), dtype=torch.uint8)
    out = random_shift(x, 2)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    offsets = set()
    for i in range(len(x)):
        found = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(padded[i, :, dy : dy + 8, dx : dx + 8], out[i])
        ]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 10  # independent offsets per image
    assert torch.equal(random_shift(x, 0), x)
    flipped = random_hflip(x)
    same = [torch.equal(flipped[i], x[i]) for i in range(len(x))]
    mirrored = [torch.equal(flipped[i], x[i].flip(-1)) for i in range(len(x))]
    assert all(s or m for s, m in zip(same, mirrored, strict=True)) and 10 < sum(mirrored) < 54


def test_augmentation_only_on_training_batches(mnist_root: Path) -> None:
    dm = MNISTDataModule(data_dir=str(mnist_root), augment=True, shift_pixels=3, hflip=True)
    dm.setup()
    x, y = dm.splits["train"][0][:32], dm.splits["train"][1][:32]
    plain = dm.preprocess(x)
    assert torch.equal(dm.on_after_batch_transfer((x, y), 0)[0], plain)  # no Trainer
    dm.trainer = SimpleNamespace(training=False, precision_plugin=Precision())
    assert torch.equal(dm.on_after_batch_transfer((x, y), 0)[0], plain)
    dm.trainer.training = True
    aug, y_out = dm.on_after_batch_transfer((x, y), 0)
    assert aug.shape == plain.shape and not torch.equal(aug, plain) and torch.equal(y_out, y)
    dm.augment = False
    assert torch.equal(dm.on_after_batch_transfer((x, y), 0)[0], plain)


def test_missing_mnist_without_download_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        MNISTDataModule(data_dir=str(tmp_path / "nowhere")).setup()
    msg = str(err.value)
    assert "MNIST is missing" in msg and "train-images-idx3-ubyte" in msg
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in msg
    assert "python train.py data=mnist data.download=true" in msg and "data=digits" in msg
    assert msg.count(". ") == 0 and msg.endswith(".")  # one sentence


def test_failed_download_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def offline(url, **kwargs):
        calls.append(url)
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", offline)
    with pytest.raises(DataError) as err:
        MNISTDataModule(data_dir=str(tmp_path), download=True).setup()
    msg = str(err.value)
    assert calls, "the download was not attempted"
    assert "MNIST could not be downloaded into" in msg and str(tmp_path) in msg
    # torchvision before 0.19 keeps only its own summary of the error ("Error downloading ...")
    assert "Name or service not known" in msg or "Error downloading train-images" in msg
    assert "data=digits" in msg and "\n" not in msg


def test_download_fills_data_dir(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "mirror"
    write_mnist(source)

    def fake_download(url, download_root, filename, md5):  # what torchvision's call produces
        name = filename.removesuffix(".gz")
        (Path(download_root) / name).write_bytes((source / "MNIST" / "raw" / name).read_bytes())

    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", fake_download)
    dm = MNISTDataModule(data_dir=str(tmp_path / "data"), download=True)
    dm.prepare_data()
    dm.setup()
    assert dm.split_sizes()["test"] == N_TEST


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), "truncated or corrupt"),
        (lambda p: p.write_bytes(p.read_bytes()[:10]), "shorter than its IDX header"),
        (lambda p: p.write_bytes(struct.pack(">I", 2049) + p.read_bytes()[4:]), "magic number"),
        (lambda p: p.write_bytes(gzip.compress(p.read_bytes())), "gunzip"),
    ],
)
def test_corrupt_idx_file_is_named(mnist_root: Path, damage, expected: str) -> None:
    path = mnist_root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    damage(path)
    with pytest.raises(DataError, match=expected) as err:
        MNISTDataModule(data_dir=str(mnist_root)).setup()
    assert str(path) in str(err.value)


def test_label_count_mismatch_and_bad_labels(mnist_root: Path) -> None:
    labels = mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    write_idx(labels, 2049, np.zeros(N_TEST - 1))
    with pytest.raises(DataError, match=f"{N_TEST} t10k images but {N_TEST - 1} labels"):
        MNISTDataModule(data_dir=str(mnist_root)).setup()
    write_idx(labels, 2049, np.full(N_TEST, 12))
    with pytest.raises(DataError, match="contain 12, outside 0-9"):
        MNISTDataModule(data_dir=str(mnist_root)).setup()


# -- CIFAR-10 -----------------------------------------------------------------------------------
CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def write_cifar(root: Path, monkeypatch, per_batch: int = 20) -> Path:
    """Five training batches + test batch + meta, pickled as in cifar-10-python.tar.gz."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        data = np.zeros((per_batch, 3072), dtype=np.uint8)
        data[:, :1024], data[:, 1024:2048], data[:, 2048:] = 10, 20, 30  # R, G, B planes
        data[:, 1] = np.arange(per_batch) + b * per_batch  # R at row 0, column 1: an id
        labels = [int(i % 10) for i in range(per_batch)]
        with (folder / name).open("wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f)
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({"label_names": CIFAR_CLASSES, "num_vis": 3072}, f)

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(n)] for n in names[:5]])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5("test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5("batches.meta")})
    return folder


def test_cifar10_reads_pickled_batches(tmp_path: Path, monkeypatch) -> None:
    write_cifar(tmp_path, monkeypatch)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), val_fraction=0.2)
    dm.setup()
    assert dm.split_sizes() == {"train": 80, "val": 20, "test": 20}
    x, _ = dm.splits["test"]
    assert x.dtype == torch.uint8 and x.shape == (20, 3, 32, 32) and x.is_contiguous()
    assert x[:, :, 5, 5].tolist() == [[10, 20, 30]] * 20  # channels first, in RGB order
    assert x[:, 0, 0, 1].tolist() == list(range(100, 120))  # row-major within a plane
    assert dm.class_names == CIFAR_CLASSES and dm.dims["input_shape"] == [3, 32, 32]
    assert len(dm.fitted["mean"]) == 3 and dm.fitted["mean"][1] == pytest.approx(20 / 255, abs=1e-3)


def test_cifar10_corrupt_file_fails_its_checksum(tmp_path: Path, monkeypatch) -> None:
    folder = write_cifar(tmp_path, monkeypatch)
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="fails its md5 check") as err:
        CIFAR10DataModule(data_dir=str(tmp_path)).setup()
    assert str(path) in str(err.value)


def test_cifar10_missing_and_offline_download(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(DataError, match="CIFAR-10 is missing: data_batch_1") as err:
        CIFAR10DataModule(data_dir=str(tmp_path)).setup()
    assert "data=cifar10 data.download=true" in str(err.value)

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr("torchvision.datasets.cifar.download_and_extract_archive", offline)
    with pytest.raises(DataError, match="CIFAR-10 could not be downloaded .*no network"):
        CIFAR10DataModule(data_dir=str(tmp_path), download=True).setup()


# -- end to end ---------------------------------------------------------------------------------
class BatchProbe(L.Callback):
    """Records the dtype and value range of the batches the model receives."""

    def __init__(self) -> None:
        self.seen: dict[str, torch.dtype] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen["train"] = batch[0].dtype

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args) -> None:
        self.seen["val"] = batch[0].dtype


@pytest.mark.parametrize(
    ("kind", "precision"), [("mnist", "32-true"), ("cifar10", "32-true"), ("mnist", "64-true")]
)
def test_fit_with_the_cnn(
    kind: str, precision: str, tmp_path: Path, monkeypatch, compose_cfg
) -> None:
    from trainkit.models.cnn import ImageClassifier

    if kind == "mnist":
        write_mnist(tmp_path)
    else:
        write_cifar(tmp_path, monkeypatch)
    cfg = compose_cfg([f"data={kind}", f"data.data_dir={tmp_path}", "data.batch_size=8"])
    dm = instantiate(cfg.data)
    assert dm.download is False and dm.augment is (kind == "cifar10")
    model = ImageClassifier(**dm.dims, channels=[4], hidden=8, optimizer=ADAM)
    probe = BatchProbe()
    trainer = fit_one_batch(model, dm, callbacks=[probe], precision=precision)
    dtype = torch.float64 if precision == "64-true" else torch.float32
    assert probe.seen == {"train": dtype, "val": dtype}
    assert trainer.global_step == 1
