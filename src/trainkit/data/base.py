"""What every in-memory DataModule shares: deterministic splits and whole-batch loading.

A dataset that fits in memory is held as a few tensors (inputs, targets). Instead of indexing one
sample at a time and collating, the loader draws a batch of indices and slices every tensor once:
`x[idx], y[idx]`. The shuffling order of epoch `e` is a function of (seed, e) alone, so a resumed
run sees the same batches as an uninterrupted one.

To add a dataset: subclass `InMemoryDataModule`, implement `load_splits()` (return a dict of
split name -> tuple of tensors, preprocessed with statistics of the training split only) and
`dims` (what the model needs to know: input shape, number of classes, ...).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from trainkit.budget import limited, num_batches
from trainkit.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


def download_error(
    name: str, data_dir: object, err: Exception, command: str, manual: str, offline: str
) -> DataError:
    """One sentence for a failed download: why (urllib, http, checksum and archive errors,
    squeezed to one line), and the ways on: retry with internet, place the files, or offline."""
    reason = " ".join(f"{type(err).__name__}: {err}".split())[:200]
    return DataError(
        f"{name} could not be downloaded into {data_dir} ({reason}); run {command} on a "
        f"machine with internet, or {manual}, {offline}."
    )


class TensorBatches(Dataset):
    """Tensors indexed a whole batch at a time: `ds[idx]` returns `(t[idx] for t in tensors)`."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        sizes = {len(t) for t in tensors}
        if len(sizes) != 1:
            raise ValueError(f"tensors of different lengths: {sorted(sizes)}")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(t[idx] for t in self.tensors)


class BatchIndexSampler(DistributedSampler[torch.Tensor]):
    """Yields one index tensor per batch; the order of epoch `e` depends only on (seed, e).

    Under a distributed strategy it behaves like DistributedSampler + BatchSampler: each of the
    `world_size` processes takes every `world_size`-th index of the same permutation, then cuts
    its share into batches. Training shares are padded by wrapping around to ceil(n / world_size)
    each (DDP needs the same number of iterations on every process); evaluation shares are not
    (`pad=False`): every sample is evaluated exactly once, as on one device.

    It is a DistributedSampler (one that shards itself) so that Lightning, whose
    `use_distributed_sampler=True` wraps any other sampler, leaves it alone: wrapped, it was
    sharded twice and each of 2 processes saw a quarter of the data.
    """

    def __init__(
        self, n: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int = 0
    ) -> None:
        super().__init__(range(n), num_replicas=1, rank=0, shuffle=shuffle, seed=seed)
        self.n, self.batch_size, self.drop_last = n, batch_size, drop_last
        self.pad = True
        self.skip = 0  # batches to leave out of the next epoch (a resume mid-epoch)

    def set_distributed(self, rank: int, world_size: int, pad: bool = True) -> None:
        """This process's share: rank `rank` of `world_size`; `pad=False` for evaluation (a
        share too small to be non-empty everywhere is still padded: every process must log)."""
        self.rank, self.num_replicas = rank, world_size
        self.pad = pad or self.n < world_size

    @property
    def world_size(self) -> int:
        return self.num_replicas

    @property
    def samples_per_rank(self) -> int:
        if self.pad:
            return math.ceil(self.n / self.world_size)
        return len(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return num_batches(self.samples_per_rank, self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        if self.world_size > 1:
            padded = self.samples_per_rank * self.world_size if self.pad else self.n
            order = order.repeat(math.ceil(padded / self.n))[:padded][self.rank :: self.world_size]
        batches = order[: len(self) * self.batch_size].split(self.batch_size)
        skip, self.skip = self.skip, 0
        yield from batches[skip:]


class InMemoryDataModule(L.LightningDataModule):
    """Base class: splits held as tensors, batches sliced from them. Subclasses load the data."""

    def __init__(
        self,
        batch_size: int = 32,
        num_workers: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        pin_memory: bool = False,
        seed: int | None = 0,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
    ) -> None:
        super().__init__()
        if batch_size <= 0:
            raise ConfigError(f"data.batch_size must be a positive integer, got {batch_size}.")
        if num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {num_workers}.")
        for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= frac < 1.0:
                raise ConfigError(f"data.{name} must be in [0, 1), got {frac}.")
        if val_fraction + test_fraction >= 1.0:
            raise ConfigError(
                f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} "
                "leaves no training data; keep their sum below 1."
            )
        self.batch_size, self.num_workers = batch_size, num_workers
        self.shuffle, self.drop_last, self.pin_memory = shuffle, drop_last, pin_memory
        self.seed = 0 if seed is None else int(seed)
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.splits: dict[str, tuple[torch.Tensor, ...]] | None = None
        self._resume_after = 0

    # -- to implement ------------------------------------------------------------------------
    def load_splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """Return {"train": (x, y), "val": (x, y), "test": (x, y)}, preprocessed."""
        raise NotImplementedError

    @property
    def dims(self) -> dict:
        """Keyword arguments the model is built with (input shape, number of classes, ...)."""
        raise NotImplementedError

    # -- Lightning hooks ---------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            splits = self.load_splits()
            for name in ("train", "val", "test"):
                if name in splits and len(splits[name][0]) == 0:
                    raise DataError(
                        f"the {name} split of {type(self).__name__} is empty; "
                        "use more data or change data.val_fraction / data.test_fraction."
                    )
            self.splits = splits

    def train_dataloader(self) -> DataLoader:
        loader = self._loader("train", shuffle=self.shuffle, drop_last=self.drop_last)
        limit = self.trainer.limit_train_batches if self.trainer is not None else None
        if self._resume_after < limited(len(loader), limit):  # an epoch's end starts a new one
            loader.sampler.skip = self._resume_after
        self._resume_after = 0
        return loader

    def resume_train_after(self, batches: int) -> None:
        """A resume mid-epoch: the next training epoch starts after its first `batches` batches
        (the order of an epoch depends only on seed and epoch, so they are the ones done)."""
        self._resume_after = batches

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")

    def loader(self, split: str) -> DataLoader:
        """A split in its order, every sample once (evaluation, prediction)."""
        return self._loader(split, shuffle=False, drop_last=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    # -- helpers -----------------------------------------------------------------------------
    @property
    def num_train_samples(self) -> int:
        self.setup("fit")
        return len(self.splits["train"][0])

    def split_sizes(self) -> dict[str, int]:
        self.setup("fit")
        return {name: len(tensors[0]) for name, tensors in self.splits.items()}

    def make_dataset(self, split: str) -> Dataset:
        return TensorBatches(*self.splits[split])

    def _loader(self, split: str, shuffle: bool, drop_last: bool) -> DataLoader:
        self.setup()
        if split not in self.splits:
            raise DataError(f"{type(self).__name__} has no {split} split.")
        dataset = self.make_dataset(split)
        sampler = BatchIndexSampler(len(dataset), self.batch_size, shuffle, drop_last, self.seed)
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            sampler.set_distributed(trainer.global_rank, trainer.world_size, pad=split == "train")
        # batch_size=None: the sampler yields whole batches of indices and the dataset slices them.
        # A generator of its own: creating an iterator then draws no number from the global RNG
        # (which dropout uses), so a resumed run draws the same dropout masks as an unbroken one.
        return DataLoader(
            dataset,
            sampler=sampler,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )


def split_indices(
    n: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: Sequence | None = None,
) -> dict[str, list[int]]:
    """Deterministic train/val/test indices for a seed (stratified by label when given)."""
    from sklearn.model_selection import train_test_split

    idx = list(range(n))
    n_test = round(n * test_fraction)
    n_val = round(n * val_fraction)
    if n - n_test - n_val <= 0:
        raise DataError(f"{n} samples cannot be split into non-empty train/val/test sets.")
    labels = list(stratify) if stratify is not None else None
    rest, test = (
        (idx, [])
        if n_test == 0
        else train_test_split(idx, test_size=n_test, random_state=seed, stratify=labels)
    )
    rest_labels = [labels[i] for i in rest] if labels is not None else None
    train, val = (
        (rest, [])
        if n_val == 0
        else train_test_split(rest, test_size=n_val, random_state=seed, stratify=rest_labels)
    )
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}
