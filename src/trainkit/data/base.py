"""What every in-memory DataModule shares: deterministic splits, whole-batch loading, and the
state a checkpoint keeps.

A dataset that fits in memory is held as a few tensors (inputs, targets). Instead of indexing one
sample at a time and collating, the loader draws a batch of indices and slices every tensor once:
`x[idx], y[idx]`. The shuffling order of epoch `e` is a function of (seed, e) alone, and the
DataModule's state in a checkpoint records how far into its epoch the run is, so a run resumed in
the middle of an epoch sees the same batches as an uninterrupted one.

What a DataModule learns from its training split - class names and their order, a vocabulary,
normalisation statistics - goes into `self.fitted` (plain lists and numbers). Lightning saves it
in every checkpoint (`state_dict`); a resumed run and eval.py hand it back (`load_state_dict`)
before `setup`, so the data is prepared exactly as the model was trained on it, or a mismatch
(a label the model never saw) stops with one sentence.

To add a dataset: subclass `InMemoryDataModule`, implement `load_splits()` (return a dict of
split name -> tuple of tensors, preprocessed with statistics of the training split only, kept
in `self.fitted`) and `dims` (what the model needs to know: input shape, number of classes, ...).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from trainkit.budget import num_batches
from trainkit.config import check_positive_int, check_workers
from trainkit.errors import ConfigError, DataError

MID_EPOCH_WARNING = "You're resuming from a checkpoint that ended before the epoch ended"


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
        # index_select copies whole rows; t[idx] copies element by element (100x slower on images)
        return tuple(t.index_select(0, idx) for t in self.tensors)


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
        persistent_workers: bool = True,
        seed: int | None = 0,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
    ) -> None:
        super().__init__()
        check_positive_int(batch_size)
        check_workers(num_workers)
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
        self.persistent_workers = persistent_workers  # keep the workers from epoch to epoch
        self.seed = 0 if seed is None else int(seed)
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.splits: dict[str, tuple[torch.Tensor, ...]] | None = None
        self.fitted: dict[str, Any] = {}  # learned from the training split (see the docstring)
        self._resume_position: dict[str, int] = {}  # of a checkpoint, for the next train epoch
        self.report: dict[str, Any] = {}  # anything worth recording in metrics.json ("data_report")
        self.eval_split = "test"  # what test_dataloader() serves (eval.py: split=val, ...)

    # -- to implement ------------------------------------------------------------------------
    def load_splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """Return {"train": (x, y), "val": (x, y), "test": (x, y)}, preprocessed."""
        raise NotImplementedError

    @property
    def dims(self) -> dict:
        """Keyword arguments the model is built with (input shape, number of classes, ...)."""
        raise NotImplementedError

    # -- Lightning hooks ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Saved by Lightning in every checkpoint: what the data learned from its training split,
        and how far into its epoch the run is (the batches done, of how many)."""
        state: dict[str, Any] = {"fitted": self.fitted}
        trainer = self.trainer
        if trainer is not None and trainer.training:
            done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
            state["position"] = {
                "batches_done": done,
                "epoch_batches": trainer.num_training_batches,
            }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """A checkpoint's state: call it before `setup` to prepare the data as the checkpoint's
        model was trained on it; Lightning calls it again when fit resumes, and the next training
        epoch then goes on after the batches it had done. The order of an epoch depends only on
        seed and epoch, so they are the same ones, and the run continues exactly: Lightning's
        warning that a mid-epoch resume is unreliable does not apply."""
        self._resume_position = dict(state_dict.get("position") or {})
        if self._resume_position:
            warnings.filterwarnings("ignore", message=MID_EPOCH_WARNING)
        fitted = state_dict.get("fitted") or {}
        if self.splits is not None and fitted and fitted != self.fitted:
            changed = sorted(
                k for k in {*fitted, *self.fitted} if fitted.get(k) != self.fitted.get(k)
            )
            raise DataError(
                f"the data differs from the checkpoint's ({', '.join(changed)} changed since it "
                f"was written): resume with the data the run was trained on."
            )
        self.fitted = dict(fitted)

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
        position, self._resume_position = self._resume_position, {}
        done = position.get("batches_done", 0)
        if done < position.get("epoch_batches", 0):  # an epoch's end starts a new one
            loader.sampler.skip = done
        return loader

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.eval_split)

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
            persistent_workers=self.persistent_workers and self.num_workers > 0,
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
