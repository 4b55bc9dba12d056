"""MNIST, Fashion-MNIST and CIFAR-10: the real files, read by torchvision's dataset classes.

The files are decoded once into uint8 tensors and served, normalised and augmented as whole
batches (see trainkit.data.images). Validation is carved from the official training set (seeded,
stratified by class); the test split is the official test set.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import torch

from trainkit.data.base import download_error
from trainkit.data.images import ImageDataModule
from trainkit.data.split_record import tensor_keys
from trainkit.errors import DataError

OFFLINE = "or train offline now with data=digits"


def check_idx(path: Path, magic: int, item_shape: tuple[int, ...]) -> int:
    """Items in an uncompressed IDX file, after checking its header and size (torchvision would
    fail on a bad file with a bare AssertionError or reshape error)."""
    header_len = 4 * (2 + len(item_shape))
    size = path.stat().st_size
    with path.open("rb") as f:
        header = f.read(header_len)
    if len(header) < header_len:
        raise DataError(
            f"{path} is truncated ({size} bytes, shorter than its IDX header); "
            "delete it and download it again with data.download=true."
        )
    got, n, *shape = struct.unpack(f">{2 + len(item_shape)}I", header)
    if got != magic:
        hint = " (a gzip file: decompress it with gunzip)" if header[:2] == b"\x1f\x8b" else ""
        raise DataError(
            f"{path} is not an IDX file of this kind{hint}: its magic number is "
            f"{got}, expected {magic}; replace it with the original file."
        )
    if tuple(shape) != item_shape:
        raise DataError(
            f"{path} holds items of shape {tuple(shape)}, expected {item_shape}; "
            "replace it with the original file."
        )
    expected = header_len + n * math.prod(item_shape)
    if size != expected:
        raise DataError(
            f"{path} is truncated or corrupt: its header announces {n} items "
            f"({expected} bytes) but the file has {size} bytes; delete it and download "
            "it again with data.download=true."
        )
    return n


class TorchvisionImageDataModule(ImageDataModule):
    """Base of the torchvision-backed image DataModules (see the module docstring)."""

    name: str  # shown in messages, e.g. "MNIST"
    config: str  # the data config, e.g. "mnist"
    how_to_place: str  # the manual alternative to data.download=true
    unit = "images"

    def __init__(
        self, data_dir: str = "data", download: bool = False, val_fraction: float = 0.1, **kwargs
    ) -> None:
        super().__init__(val_fraction=val_fraction, test_fraction=0.0, **kwargs)
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.download = download

    # -- per dataset: where the files are, how to check and read them ------------------------
    @property
    def dataset_cls(self) -> type:
        """The torchvision dataset class (imported lazily: torchvision is slow to import)."""
        raise NotImplementedError

    folder: Path  # the directory the files must be in
    required: list[str]  # the file names there

    def check_files(self) -> None:
        """Raise DataError when a file is there but unusable (truncated, corrupt): checks that
        torchvision's reader does not make itself."""

    def explain_read_error(self) -> None:
        """After torchvision failed to read the files: raise a DataError naming the bad file,
        when one can be named (the generic error follows otherwise)."""

    def read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """uint8 images (N, C, H, W), long labels (N,) and class names of one official split."""
        raise NotImplementedError

    def source(self) -> dict:
        """The dataset and the torchvision that read it (the images are hashed one by one)."""
        import torchvision

        return {"dataset": self.name, "reader": f"torchvision {torchvision.__version__}"}

    def missing_files(self) -> list[str]:
        return [f for f in self.required if not (self.folder / f).is_file()]

    def download_files(self) -> None:
        """torchvision's download code: mirrors, checksums, extraction into data_dir."""
        self.dataset_cls(str(self.data_dir), train=True, download=True)

    # -- files -------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Download when files are missing and data.download is true (Lightning runs this on
        one process only); otherwise say exactly what is missing and how to get it."""
        missing = self.missing_files()
        if not missing:
            return
        command = f"`python train.py data={self.config} data.download=true`"
        manual = self.how_to_place.format(data_dir=self.data_dir)
        if not self.download:
            raise DataError(
                f"{self.name} is missing: {', '.join(missing)} not found in {self.folder}; run "
                f"{command} on a machine with internet (it downloads into {self.data_dir}), or "
                f"{manual}, {OFFLINE}."
            )
        try:
            self.download_files()
        except Exception as err:  # urllib, http, checksum and archive errors all end up here
            raise download_error(self.name, self.data_dir, err, command, manual, OFFLINE) from err
        missing = self.missing_files()
        if missing:
            raise DataError(
                f"{self.name} download finished but {', '.join(missing)} is still "
                f"missing in {self.folder}; delete that folder and download again."
            )

    def load_splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        self.check_settings()
        self.prepare_data()
        self.check_files()
        try:
            x, y, class_names = self.read(train=True)
            x_test, y_test, _ = self.read(train=False)
        except Exception as err:  # torchvision's assertion, unpickling and reshape errors
            self.explain_read_error()
            raise DataError(
                f"{self.name} files in {self.folder} could not be read ({err}); "
                "delete them and download again with data.download=true."
            ) from err
        labels = torch.cat([y, y_test])
        bad = labels[(labels < 0) | (labels >= len(class_names))]
        if len(bad):
            raise DataError(
                f"{self.name} labels in {self.folder} contain {int(bad[0])}, outside "
                f"0-{len(class_names) - 1}; replace the files with the originals."
            )
        idx = self.carve_indices(len(y), self.val_fraction, 0.0, stratify=y.tolist())
        train, val = torch.tensor(idx["train"]), torch.tensor(idx["val"], dtype=torch.long)
        keys = tensor_keys(x, y)
        self.record_splits(
            {"train": keys[train], "val": keys[val], "test": tensor_keys(x_test, y_test)}
        )
        self.fit_images(x[train], class_names, self.name)
        return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x_test, y_test)}


class MNISTDataModule(TorchvisionImageDataModule):
    """MNIST (LeCun et al. 1998): 60,000 train + 10,000 test grey 28x28 digits, 10 classes."""

    name, config = "MNIST", "mnist"
    required = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    how_to_place = "put the four uncompressed IDX files (gunzip the .gz downloads) there"

    @property
    def dataset_cls(self) -> type:
        from torchvision.datasets import MNIST

        return MNIST

    @property
    def folder(self) -> Path:
        return self.data_dir / self.dataset_cls.__name__ / "raw"

    def check_files(self) -> None:
        for prefix in ("train", "t10k"):
            n_images = check_idx(self.folder / f"{prefix}-images-idx3-ubyte", 2051, (28, 28))
            n_labels = check_idx(self.folder / f"{prefix}-labels-idx1-ubyte", 2049, ())
            if n_images != n_labels:
                raise DataError(
                    f"{self.folder} holds {n_images} {prefix} images but {n_labels} "
                    "labels; replace the files with a matching pair."
                )

    def read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        ds = self.dataset_cls(str(self.data_dir), train=train, download=False)
        return ds.data.unsqueeze(1).contiguous(), ds.targets.long(), list(ds.classes)


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST (Xiao et al. 2017, Zalando): MNIST's format and sizes, 10 clothing classes."""

    name, config = "Fashion-MNIST", "fashion_mnist"

    @property
    def dataset_cls(self) -> type:
        from torchvision.datasets import FashionMNIST

        return FashionMNIST


class CIFAR10DataModule(TorchvisionImageDataModule):
    """CIFAR-10 (Krizhevsky 2009): 50,000 train + 10,000 test colour 32x32 images, 10 classes.

    torchvision checks the md5 of every batch file; a file that fails is named in the error.
    """

    name, config = "CIFAR-10", "cifar10"
    how_to_place = "extract the python version (cifar-10-python.tar.gz) into {data_dir}"

    @property
    def dataset_cls(self) -> type:
        from torchvision.datasets import CIFAR10

        return CIFAR10

    @property
    def folder(self) -> Path:
        return self.data_dir / self.dataset_cls.base_folder

    @property
    def checksums(self) -> list[tuple[str, str]]:
        cls = self.dataset_cls
        meta = [(cls.meta["filename"], cls.meta["md5"])]
        return [(f, md5) for f, md5 in cls.train_list + cls.test_list] + meta

    @property
    def required(self) -> list[str]:
        return [f for f, _ in self.checksums]

    def source(self) -> dict:
        """The dataset and its files' md5, which torchvision checks as it reads them."""
        return {"dataset": self.name, "md5": dict(self.checksums)}

    def explain_read_error(self) -> None:
        # torchvision md5-checks every file itself when it reads them: only name the culprit
        from torchvision.datasets.utils import check_integrity

        for f, md5 in self.checksums:
            if not check_integrity(self.folder / f, md5):
                raise DataError(
                    f"{self.folder / f} fails its md5 check (corrupt or incomplete); "
                    f"delete {self.folder} and download again with data.download=true."
                )

    def read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        ds = self.dataset_cls(str(self.data_dir), train=train, download=False)
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        return x, torch.tensor(ds.targets, dtype=torch.long), list(ds.classes)
