"""What trainkit reads from a user's LightningDataModule and LightningModule, in one place.

Any LightningDataModule trains with trainkit as Lightning's docs write it: `setup()` and the
`*_dataloader()` methods are all trainkit needs. trainkit's own DataModules offer more, the
members of `DataModuleExtras` below, and trainkit uses each one a DataModule has; where one is
missing it reads the same fact from the training loader (samples, batch size, batches per
epoch), or does without it and says so. Every read of those optional members goes through the
functions of this module; nothing else in trainkit probes a DataModule or a model for them.

The state trainkit needs for an exact resume is Lightning's own: a DataModule's `state_dict()` /
`load_state_dict()` (trainkit's record the fitted statistics, the splits and the position in
the epoch), and a stateful DataLoader's (LitData's StreamingDataLoader, torchdata's
StatefulDataLoader), which Lightning saves and restores itself. A plain DataLoader has no
position: a resume from the middle of an epoch runs the rest of that epoch's batch count on a
fresh pass over the loader (docs/extending.md says what that guarantees).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import lightning as L
from lightning.pytorch.utilities.model_helpers import is_overridden
from lightning.pytorch.utilities.parsing import (
    lightning_getattr,
    lightning_hasattr,
    lightning_setattr,
)

from trainkit.errors import ConfigError

SPLITS = ("train", "val", "test")
# what a dict batch calls its inputs and targets (Hugging Face datasets' usual names first)
INPUT_KEYS = ("image", "images", "pixel_values", "input_ids", "text", "x", "inputs", "input")
TARGET_KEYS = ("label", "labels", "target", "targets", "y")
LR_NAMES = ("lr", "learning_rate")  # where Lightning's LR finder looks (its attr_name="")


class DataModuleExtras(Protocol):
    """What trainkit reads, when it is there, from a DataModule. Every member is optional."""

    @property
    def dims(self) -> Mapping[str, Any]:
        """The keyword arguments a model is built with (`input_shape`, `num_classes`,
        `vocab_size`, ...). trainkit passes those a model's `__init__` asks for; without it the
        model's config or the command line gives them (`+model.num_classes=10`)."""
        ...

    @property
    def num_train_samples(self) -> int:
        """Samples in the training split (the budget table's first row)."""
        ...

    batch_size: int
    """Samples per batch and process (the budget table; the batch-size finder sets it)."""
    drop_last: bool
    """Whether the training loader drops an epoch's last, smaller batch."""

    def split_sizes(self) -> dict[str, int]:
        """Samples per split, e.g. {"train": 1257, "val": 270, "test": 270}: whether there is
        anything to validate or test on."""
        ...

    @property
    def class_names(self) -> list[str]:
        """Class names in label order: predictions' columns, the confusion matrix."""
        ...

    report: dict[str, Any]
    """Facts about the data worth keeping (rows read, files skipped, the splits' record),
    written into metrics.json as `data_report`."""
    eval_split: str
    """Which split `test_dataloader()` serves; `eval.py split=val` sets it."""

    def to_target_units(self, y: Any) -> Any:
        """A regression target as predicted, back in the target's units (predictions CSV)."""
        ...

    def load_fitted(self, state_dict: dict[str, Any]) -> None:
        """Take only what a checkpoint's model learned of its data (class map, vocabulary,
        normalisation) from the DataModule's state in a checkpoint, not its splits: for a
        deliberate new test set (`eval.py data=...`)."""
        ...


class ModelExtras(Protocol):
    """What trainkit reads, when it is there, from a LightningModule (optional too). For
    `tune.lr_find` also its learning rate, where Lightning's LR finder finds it (`lr` or
    `learning_rate`; `current_lr` / `set_lr` below)."""

    def final_report(self) -> dict[str, Any]:
        """Facts about the trained model for metrics.json (`model_report`), e.g. the weights
        and bias of a linear regression."""
        ...


def _optional(obj: Any, name: str, default: Any = None) -> Any:
    """The one place where a member of `DataModuleExtras` / `ModelExtras` is looked up."""
    return getattr(obj, name, default)


# -- dimensions, names, reports -----------------------------------------------------------------
def dims(datamodule: L.LightningDataModule) -> dict[str, Any]:
    """The model arguments the data provides (none for a DataModule without `dims`)."""
    return dict(_optional(datamodule, "dims", None) or {})


def class_names(datamodule: L.LightningDataModule | None) -> list[str]:
    return [str(n) for n in _optional(datamodule, "class_names", None) or []]


def data_report(datamodule: L.LightningDataModule | None) -> dict[str, Any]:
    return dict(_optional(datamodule, "report", None) or {})


def model_report(model: L.LightningModule) -> dict[str, Any]:
    final_report = _optional(model, "final_report")
    return dict(final_report()) if callable(final_report) else {}


# -- the learning rate (tune.lr_find) --------------------------------------------------------------
def _lr_name(model: L.LightningModule) -> str | None:
    """Where Lightning's LR finder finds the model's rate: `lr` or `learning_rate`, an attribute
    or a saved hyperparameter of the model (or of its datamodule); None where it has neither."""
    return next((name for name in LR_NAMES if lightning_hasattr(model, name)), None)


def current_lr(model: L.LightningModule) -> float | None:
    """The learning rate the model trains with (where set_lr would set it), or None."""
    optimizer = model.hparams.get("optimizer")
    if isinstance(optimizer, dict) and "lr" in optimizer:
        return optimizer["lr"]
    name = _lr_name(model)
    return lightning_getattr(model, name) if name else None


def set_lr(model: L.LightningModule, lr: float) -> float | None:
    """Give the model the learning rate `lr`; return the one it had. trainkit's models keep it in
    their optimizer config; a module of your own where Lightning's own LR finder looks for
    `lr` or `learning_rate`: an attribute, a saved hyperparameter (or the datamodule's)."""
    optimizer = model.hparams.get("optimizer")
    if isinstance(optimizer, dict) and "lr" in optimizer:
        configured, optimizer["lr"] = optimizer["lr"], lr
        return configured
    name = _lr_name(model)
    if name is None:
        raise ConfigError(
            f"{type(model).__name__} has no learning rate the LR finder can set: give its "
            "__init__ an `lr` argument (saved with self.save_hyperparameters()) and use it in "
            "configure_optimizers."
        )
    configured = lightning_getattr(model, name)
    lightning_setattr(model, name, lr)
    return configured


def batch_size(datamodule: L.LightningDataModule) -> int | None:
    """The DataModule's batch size when it has one (the record of the run keeps the size the
    batch-size finder chose)."""
    value = _optional(datamodule, "batch_size")
    return value if isinstance(value, int) else None


def restore_fitted(datamodule: L.LightningDataModule, checkpoint: Mapping[str, Any]) -> bool:
    """Give the DataModule what the checkpoint's model learned of its data, without its split
    (see DataModuleExtras.load_fitted); False when it has no such thing to take."""
    load_fitted = _optional(datamodule, "load_fitted")
    state = checkpoint.get(type(datamodule).__qualname__)
    if not callable(load_fitted) or not state:
        return False
    load_fitted(state)
    return True


def to_target_units(datamodule: L.LightningDataModule, y: Any) -> Any:
    convert = _optional(datamodule, "to_target_units")
    return convert(y) if callable(convert) else y


# -- what the training loader holds -------------------------------------------------------------
@dataclass(frozen=True)
class TrainData:
    """What the budget needs from the data; None where the loader cannot know (streaming)."""

    samples: int | None  # training samples (all processes together)
    batch_size: int | None  # per process
    drop_last: bool
    batches: int | None  # batches per epoch on one process, when there is no batch_size
    has_val: bool
    source: str  # how it was read: "the DataModule" or "the training loader"


def train_data(datamodule: L.LightningDataModule) -> TrainData:
    """Samples, batch size and validation of the DataModule's training data, after
    `setup("fit")`: from trainkit's members when it has them, else from its loaders."""
    sizes = _optional(datamodule, "split_sizes")
    samples = _optional(datamodule, "num_train_samples")
    if callable(sizes) and isinstance(samples, int) and batch_size(datamodule):
        return TrainData(
            samples=samples,
            batch_size=batch_size(datamodule),
            drop_last=bool(_optional(datamodule, "drop_last", False)),
            batches=None,
            has_val=sizes().get("val", 0) > 0,
            source="the DataModule",
        )
    loader = datamodule.train_dataloader()
    return TrainData(
        samples=_length(_optional(loader, "dataset")),
        batch_size=_optional(loader, "batch_size"),
        drop_last=bool(_optional(loader, "drop_last", False)),
        batches=_length(loader),
        has_val=has_split(datamodule, "val"),
        source="the training loader",
    )


def _length(obj: Any) -> int | None:
    """len(obj), or None for something without one (an IterableDataset that streams)."""
    try:
        return len(obj) if obj is not None else None
    except (TypeError, NotImplementedError):
        return None


def has_split(datamodule: L.LightningDataModule, split: str) -> bool:
    """Whether the DataModule has data for `split`: trainkit's say how many samples; another
    DataModule has one when it defines that split's loader (`val_dataloader`, ...)."""
    sizes = _optional(datamodule, "split_sizes")
    if callable(sizes):
        return sizes().get(split, 0) > 0
    hook = {"train": "train_dataloader", "val": "val_dataloader"}.get(split, "test_dataloader")
    return is_overridden(hook, datamodule, L.LightningDataModule)


# -- evaluation ---------------------------------------------------------------------------------
def serve_split(datamodule: L.LightningDataModule, split: str) -> str:
    """Get the DataModule ready to evaluate `split`; return the Trainer method that evaluates
    it on the DataModule (so that its batch hooks apply): trainkit's DataModules serve any split
    from their test loader (`eval_split`), another DataModule its test split through
    trainer.test and its val split through trainer.validate."""
    if split not in SPLITS:
        raise ConfigError(f"split must be train, val or test, got {split!r}.")
    if _optional(datamodule, "eval_split") is not None:
        datamodule.eval_split = split
        return "test"
    if split == "train":
        raise ConfigError(
            f"split=train: {type(datamodule).__name__}'s train_dataloader shuffles (and may "
            "augment), so it is not evaluated; use split=val or split=test."
        )
    if not has_split(datamodule, split):
        raise ConfigError(f"split={split}: {type(datamodule).__name__} has no {split} loader.")
    return "validate" if split == "val" else "test"


def predictions_source(datamodule: L.LightningDataModule, split: str) -> tuple[dict[str, Any], Any]:
    """(keyword arguments of trainer.predict, the loader its batches come from) for `split`:
    trainkit's DataModules predict through their own hooks; another DataModule's loader of that
    split is predicted as it is."""
    stage = serve_split(datamodule, split)
    if _optional(datamodule, "eval_split") is not None:
        return {"datamodule": datamodule}, datamodule.predict_dataloader()
    if stage == "validate":
        return {"dataloaders": datamodule.val_dataloader()}, datamodule.val_dataloader()
    datamodule.setup("test")
    return {"dataloaders": datamodule.test_dataloader()}, datamodule.test_dataloader()


def targets(batch: Any) -> Any:
    """The targets of a batch: the last item of a tuple or list `(x, y)`, or the value of the
    first target key of a dict batch (`{"image": ..., "label": ...}`); None if it has none."""
    if isinstance(batch, Mapping):
        return next((batch[k] for k in TARGET_KEYS if k in batch), None)
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[-1]
    return None


def inputs(batch: Any) -> Any:
    """The inputs of a batch: the first item of `(x, y)`, or a dict batch's first input key."""
    if isinstance(batch, Mapping):
        return next((batch[k] for k in INPUT_KEYS if k in batch), None)
    if isinstance(batch, (tuple, list)) and batch:
        return batch[0]
    return None
