"""Your own images in torchvision's ImageFolder layout: `data=image_folder data.path=<root>`,
<root>/<class>/*.png|jpg|jpeg|bmp|webp (val and test carved: stratified, seeded), or <root>/train/,
val/ and test/ holding such class folders (each split folder used when present, else carved).

Class names are the folder names, sorted (a checkpoint's class map wins when one was restored).
Images are resized to `image_size`, made grey or RGB (`channels`; by default RGB when any file is
in colour), then normalised and augmented as whole uint8 batches like MNIST and CIFAR-10 (see
trainkit.data.images). By their decoded size, N x C x H x W bytes, against `max_memory_gb` they
are cached (decoded once into one uint8 tensor) or streamed: each batch of files is decoded by
the DataLoader workers when the sampler asks for it; order, mid-epoch resume, DDP shards and the
batches themselves are the same.

Either way every file is decoded once at set-up (by the workers, in parallel): a bad file stops
the run before training, in one sentence naming it, or with `skip_bad_files` is left out and
listed in the log and metrics.json. That pass also gives the normalisation statistics: exact,
from every image of the training split and nothing else; the sha256 of every file (for the split
record: see trainkit.data.split_record); and how files of other modes were converted (16-bit grey
scaled, alpha composited on white, EXIF rotation applied: see image_files.py), said in one line.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from trainkit.config import is_int
from trainkit.data.image_files import (
    CHECK_CHUNK,
    SPLITS,
    FileBatches,
    bad_file,
    detect_channels,
    read_layout,
)
from trainkit.data.images import ImageDataModule, channel_histograms
from trainkit.data.split_record import keys_of
from trainkit.errors import ConfigError, DataError

log = logging.getLogger(__name__)


class ImageFolderDataModule(ImageDataModule):
    """Images in class folders (see the module docstring); `dims` = input shape, num_classes."""

    config, unit = "image_folder", "images"
    keep_sample_hashes = True  # a checkpoint counts the images added and removed since

    def __init__(
        self,
        path: str | None = None,
        image_size: int | list[int] = 64,
        channels: int | None = None,
        max_memory_gb: float = 4.0,
        skip_bad_files: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.path, self.image_size, self.channels = path, image_size, channels
        self.max_memory_gb, self.skip_bad_files = max_memory_gb, skip_bad_files
        self.streaming = False  # True: decoded batch by batch by the loader, not cached
        self.files = np.array([], dtype=bytes)  # every file, in split order: train, val, test
        self.shape: list[int] = []  # C, H, W
        self.folder: dict = {}  # the folder as the split record's source: path, sha256, images

    @property
    def size(self) -> tuple[int, int]:
        """H, W of every image."""
        return self.shape[1], self.shape[2]

    @property
    def dims(self) -> dict:
        self.setup()
        return {"input_shape": list(self.shape), "num_classes": len(self.class_names)}

    def check_settings(self) -> tuple[int, int]:
        """ConfigError for an impossible setting; returns the image size (H, W)."""
        super().check_settings()
        if self.path in (None, "", "???"):
            raise ConfigError(
                "data.path is required: the folder of class folders, e.g. `python train.py "
                "model=cnn data=image_folder data.path=my_images`."
            )
        size = [self.image_size] * 2 if is_int(self.image_size) else list(self.image_size)
        if len(size) != 2 or not all(is_int(s) and s > 0 for s in size):
            raise ConfigError(f"data.image_size must be an int > 0 or [height, width], got {size}.")
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"data.channels must be 1, 3 or null, got {self.channels}.")
        memory = self.max_memory_gb
        if isinstance(memory, bool) or not isinstance(memory, (int, float)) or memory < 0:
            raise ConfigError(f"data.max_memory_gb must be a number >= 0, got {memory!r}.")
        return size[0], size[1]

    # -- loading -----------------------------------------------------------------------------
    def load_splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        size = self.check_settings()
        root = Path(self.path).expanduser().resolve()
        names, items = self.carve(root, read_layout(root))
        self.files = np.array([os.fsencode(f) for _, f, _ in items], dtype=bytes)
        labels = torch.tensor([y for _, _, y in items], dtype=torch.long)
        split_of = np.array([s for s, _, _ in items], dtype=object)
        self.shape = [self.pick_channels(), *size]
        self.choose_storage(root)
        images, hist, sha256 = self.decode_all(labels, torch.from_numpy(split_of == "train"))
        if not self.streaming:  # the workers' part is done: slicing from memory needs none
            self.num_workers = 0
        ok = torch.tensor([bool(s) for s in sha256], dtype=torch.bool)
        if not ok.all():  # only with skip_bad_files (else decode_all raised)
            keep = ok.numpy()
            self.files, labels, split_of = self.files[keep], labels[ok], split_of[keep]
            images = None if images is None else images.index_select(0, ok.nonzero()[:, 0])
            sha256 = [s for s in sha256 if s]
        self.record_folder(root, names, labels, split_of, sha256)
        self.fit_images(None, names, str(root), hist=hist)

        order = list(dict.fromkeys(split_of))  # train, val, test: consecutive rows
        sizes = [int((split_of == s).sum()) for s in order]
        xs = (torch.arange(len(labels)) if images is None else images).split(sizes)
        splits = dict(zip(order, zip(xs, labels.split(sizes), strict=True), strict=True))
        self.report.update(storage="streaming" if self.streaming else "cached", class_names=names)
        self.report["class_counts"] = {
            s: dict(zip(names, y.bincount(minlength=len(names)).tolist(), strict=True))
            for s, (_, y) in splits.items()
        }
        return splits

    def record_folder(
        self, root: Path, names: list[str], labels: torch.Tensor, split_of: np.ndarray, sha256: list
    ) -> None:
        """The split record: each image hashed by its bytes and class; the folder by its files'
        paths (relative to it) and sha256."""
        keys = keys_of(
            f"{s}\x1f{names[y]}".encode() for s, y in zip(sha256, labels.tolist(), strict=True)
        )
        listing = sorted(
            f"{os.path.relpath(os.fsdecode(f), root)}\t{s}\n"
            for f, s in zip(self.files, sha256, strict=True)
        )
        self.folder = {
            "key": "path",
            "path": str(root),
            "sha256": hashlib.sha256("".join(listing).encode("utf-8", "surrogatepass")).hexdigest(),
            "rows": len(listing),
        }
        self.record_splits(
            {s: keys[torch.from_numpy(split_of == s)] for s in dict.fromkeys(split_of)}
        )

    def source(self) -> dict:
        return {"files": [self.folder]}

    def carve(self, root: Path, layout: dict) -> tuple[list[str], list[tuple[str, str, int]]]:
        """Class names, and (split, file, label) of every image, train first: the split folders,
        else val / test carved from the training images (stratified by class, seeded); a split
        without a folder and with a fraction of 0 is left out."""
        names = self.class_names or sorted(next(iter(layout.values())))
        for split, classes in layout.items():
            for c in sorted(set(classes) - set(names)):
                raise DataError(
                    f"class folder {root / c if split == 'all' else root / split / c} is not one "
                    f"of the {len(names)} classes the checkpoint was trained on "
                    f"({', '.join(names)}); remove it, or train a new model for a new class."
                )
        label = {c: i for i, c in enumerate(names)}
        items = {
            s: [(f, label[c]) for c, files in classes.items() for f in files]
            for s, classes in layout.items()
        }
        pool = items.pop("all" if "all" in layout else "train")
        fractions = (("val", self.val_fraction), ("test", self.test_fraction))
        carved = {s: f for s, f in fractions if s not in layout and f > 0}
        try:
            val, test = carved.get("val", 0.0), carved.get("test", 0.0)
            idx = self.carve_indices(len(pool), val, test, stratify=[y for _, y in pool])
        except ValueError as err:  # scikit-learn: too few images of a class to stratify
            raise DataError(
                f"the {len(pool)} images of {root} cannot be split into stratified "
                f"{' and '.join(carved)} sets ({err}); add images, lower data.val_fraction / "
                "data.test_fraction, or give val and test folders."
            ) from err
        for s in ("train", *carved):
            items[s] = [pool[i] for i in idx[s]]
        return names, [(s, f, y) for s in SPLITS for f, y in items.get(s, [])]

    def pick_channels(self) -> int:
        """data.channels, else the checkpoint's (or configured mean's), else from the files."""
        trained = len(self.fitted.get("mean") or [])
        if self.channels and trained and self.channels != trained:
            raise ConfigError(
                f"data.channels={self.channels} but the checkpoint's model was trained on "
                f"{trained}-channel images; drop data.channels or set it to {trained}."
            )
        return self.channels or trained or len(self.mean or []) or detect_channels(self.files)

    def choose_storage(self, root: Path) -> None:
        """Cached or streaming, by the decoded size against max_memory_gb (said in one line)."""
        gb = len(self.files) * math.prod(self.shape) / 1e9
        self.streaming = gb > self.max_memory_gb
        n, limit = self.num_workers, f"data.max_memory_gb={self.max_memory_gb:g}"
        workers = f"{n} DataLoader workers" if n else "the main process (data.num_workers=0)"
        how = (
            f"> {limit}: not cached but decoded batch by batch by {workers} (every file is "
            "decoded once now, to check it and for the training split's statistics)"
            if self.streaming
            else f"<= {limit}: decoded once now by {workers} and cached (batches are then "
            "sliced in the main process, faster than through workers)"
        )
        shape, n = "x".join(map(str, self.shape)), len(self.files)
        log.info("%s: %d images of %s uint8 = %.3g GB %s", root, n, shape, gb, how)

    def decode_all(self, labels: torch.Tensor, train: torch.Tensor) -> tuple:
        """Every file once, by the workers: (the images when cached else None, the channel
        histograms of the `train` rows, each file's sha256, "" for an unreadable one); a bad
        file raises unless skip_bad_files, which lists them in the log and the report. The
        conversions of files of other modes are said in one line (and in the report)."""
        c, size = self.shape[0], self.size
        dataset = FileBatches(self.files, labels, size, c, check=True)
        chunks = torch.arange(len(dataset)).split(CHECK_CHUNK)
        loader = DataLoader(dataset, sampler=chunks, batch_size=None, num_workers=self.num_workers)
        images = None if self.streaming else torch.empty(len(dataset), c, *size, dtype=torch.uint8)
        hist = torch.zeros(c, 256, dtype=torch.long)
        ok = torch.ones(len(dataset), dtype=torch.bool)
        sha256, conversions = [], Counter()
        for rows, (x, _, files) in zip(chunks, loader, strict=True):
            for row, (digest, notes, why) in enumerate(files):
                conversions.update(notes)
                sha256.append("" if why else digest)
                if why and not self.skip_bad_files:
                    raise bad_file(os.fsdecode(self.files[rows[row]]), why)
                ok[rows[row]] = not why
            if images is not None:  # (slices and index_select copy rows, not single bytes)
                images[rows[0] : rows[-1] + 1] = x
            hist += channel_histograms(x.index_select(0, (ok[rows] & train[rows]).nonzero()[:, 0]))
        self.say_conversions(conversions)
        skipped = sorted(os.fsdecode(f) for f in self.files[~ok.numpy()])
        if self.skip_bad_files:
            self.report["skipped_files"] = skipped
        if skipped:
            more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
            listed = ", ".join(skipped[:10]) + more
            log.warning("left out %d unreadable image files: %s", len(skipped), listed)
        return images, hist, sha256

    def say_conversions(self, conversions: Counter) -> None:
        """One line for the files that were not already in the mode the model gets."""
        if not conversions:
            return
        self.report["converted"] = dict(conversions)
        target = "grey (1 channel)" if self.shape[0] == 1 else "RGB"
        done = ", ".join(f"{n} {what}" for what, n in sorted(conversions.items()))
        log.info("%s: converted to %s: %s", self.path, target, done)

    def make_dataset(self, split: str) -> Dataset:
        if not self.streaming:
            return super().make_dataset(split)
        rows, labels = self.splits[split]
        return FileBatches(self.files[rows.numpy()], labels, self.size, self.shape[0])
