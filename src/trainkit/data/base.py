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
(a label the model never saw) stops with one sentence. What identifies the splits (the data's
fingerprint, seed, fractions, each split's membership: see split_record.py) is kept beside it and
checked the same way: a resume or eval.py rebuilds the run's splits, or stops with one sentence.

To add a dataset: subclass `InMemoryDataModule`, implement `load_splits()` (return a dict of
split name -> tuple of tensors, preprocessed with statistics of the training split only, kept
in `self.fitted`; `self.carve_indices(...)` carves the indices with the run's seed, and with
data.folds takes the validation split as a cross-validation fold) and `dims` (what the model
needs to know: input shape, number of classes, ...).
Optionally call `self.record_splits(...)` from `load_splits` with each split's per-sample hashes
of the raw data and override `source()`; else the split record hashes the returned tensors' rows.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from trainkit.config import check_positive_int, check_workers
from trainkit.data import split_record
from trainkit.data.batches import BatchIndexSampler, TensorBatches, check_position
from trainkit.data.carving import check_folds, split_indices
from trainkit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

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


class InMemoryDataModule(L.LightningDataModule):
    """Base class: splits held as tensors, batches sliced from them. Subclasses load the data."""

    config: str | None = None  # its config, conf/data/<config>.yaml (named in messages)
    unit = "samples"  # what a sample is called in messages: rows, images, ...
    keep_sample_hashes = False  # True for a user's files: checkpoints then count rows added

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
        folds: int | None = None,
        fold: int | None = None,
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
        self.folds, self.fold = check_folds(folds, fold)
        self.splits: dict[str, tuple[torch.Tensor, ...]] | None = None
        self.fitted: dict[str, Any] = {}  # learned from the training split (see the docstring)
        self._resume_position: dict[str, int] = {}  # of a checkpoint, for the next train epoch
        self.report: dict[str, Any] = {}  # anything worth recording in metrics.json ("data_report")
        self.split_record: dict[str, Any] | None = None  # what identifies the splits (setup)
        self.sample_hashes: torch.Tensor | None = None  # per sample, in the splits' order
        self._restored_record: dict[str, Any] = {}  # a checkpoint's, to compare (state_dict)
        self._said: set[str] = set()
        self.eval_split = "test"  # what test_dataloader() serves (eval.py: split=val, ...)

    # -- to implement ------------------------------------------------------------------------
    def load_splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """Return {"train": (x, y), "val": (x, y), "test": (x, y)}, preprocessed."""
        raise NotImplementedError

    @property
    def dims(self) -> dict:
        """Keyword arguments the model is built with (input shape, number of classes, ...)."""
        raise NotImplementedError

    def source(self) -> dict[str, Any]:
        """What the data comes from, for the split record: the sha256 of a user's files, or a
        built-in dataset's name and version (a generator's parameters)."""
        return {"dataset": f"{type(self).__module__}.{type(self).__qualname__}"}

    def record_splits(self, hashes: dict[str, torch.Tensor]) -> None:
        """Record the splits, given {split: per-sample hashes in its order} (split_record.py),
        and check them against a checkpoint's record: call it as soon as the splits are carved,
        before the training statistics, so that a changed file is what the user hears of."""
        hashes = {n: hashes[n] for n in ("train", "val", "test") if n in hashes}
        fractions = (None if self.folds else self.val_fraction, self.test_fraction)
        folds = (self.fold, self.folds) if self.folds else None
        self.split_record = split_record.build(self.source(), self.seed, fractions, hashes, folds)
        self.sample_hashes = torch.cat(list(hashes.values()))
        self.report["splits"] = self.split_record
        self._check_record()

    def _check_record(self) -> None:
        old, new = self._restored_record.get("split_record"), self.split_record
        if not old or new is None:
            return
        keys = self._restored_record.get("sample_hashes")
        split_record.check(old, new, keys, self.sample_hashes, self.unit, self.config)
        if old["source"] != new["source"]:
            self._say_once(
                f"the data's description differs from the checkpoint's "
                f"({split_record.describe_source(old['source'], new['source'])}) but it holds the "
                f"same {self.unit} in the same order: the run's splits are rebuilt exactly"
            )

    def _say_once(self, message: str) -> None:
        """Log `message` once (a resume hands the checkpoint's state over more than once)."""
        if message not in self._said:
            self._said.add(message)
            log.info(message)

    # -- Lightning hooks ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Saved by Lightning in every checkpoint: what the data learned from its training split,
        what identifies its splits, and how far into its epoch the run is (the batches done, of
        how many, of which batch size and number of processes)."""
        state: dict[str, Any] = {"fitted": self.fitted}
        if self.split_record is not None:
            state["split_record"] = self.split_record
            if self.keep_sample_hashes:
                state["sample_hashes"] = self.sample_hashes
        trainer = self.trainer
        if trainer is not None and trainer.training:
            done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
            samples = done * self.batch_size * trainer.world_size
            state["position"] = {
                "batches_done": done,
                "epoch_batches": trainer.num_training_batches,
                "batch_size": self.batch_size,
                "world_size": trainer.world_size,
                "samples_done": min(samples, len(self.splits["train"][0])),
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
        keys = ("split_record", "sample_hashes")
        self._restored_record = {k: state_dict[k] for k in keys if state_dict.get(k) is not None}
        if state_dict and not self._restored_record:
            self._say_once(
                "the checkpoint holds no split record (written before trainkit kept one): its "
                "splits are rebuilt from the data and seed given, unchecked"
            )
        self._check_record()
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

    def load_fitted(self, state_dict: dict[str, Any]) -> None:
        """Only what a checkpoint's model learned of its data (class map, vocabulary,
        normalisation), before `setup`: for a deliberate new test set (eval.py with data=...),
        read as the model was trained but carved afresh, not checked against the run's split."""
        self.fitted = dict(state_dict.get("fitted") or {})

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
            if self.split_record is None:  # a subclass that does not record its own
                self.record_splits({n: split_record.tensor_keys(*t) for n, t in splits.items()})

    def train_dataloader(self) -> DataLoader:
        loader = self._loader("train", shuffle=self.shuffle, drop_last=self.drop_last)
        position, self._resume_position = self._resume_position, {}
        done = position.get("batches_done", 0)
        if 0 < done < position.get("epoch_batches", 0):  # an epoch's end starts a new one
            check_position(position, self.batch_size, loader.sampler.world_size)
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
    def carve_indices(
        self, n: int, val_fraction: float, test_fraction: float, stratify: Sequence | None = None
    ) -> dict[str, list[int]]:
        """Train/val/test indices of `n` samples (split_indices) with this DataModule's seed and,
        with data.folds, fold data.fold of the samples outside the test split as validation."""
        if self.folds and not val_fraction:
            raise ConfigError(
                f"data.folds={self.folds} takes the validation split from the training data, but "
                f"{type(self).__name__} carves none from it here (a validation split of its own, "
                "or data.val_fraction=0); leave data.folds out, or give the training data alone."
            )
        folds = (self.folds, self.fold)
        return split_indices(n, val_fraction, test_fraction, self.seed, stratify, *folds)

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
