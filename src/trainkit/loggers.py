"""TensorBoard as trainkit shows it: one tag per quantity, on the iteration or the epoch axis.

Lightning hands a logger `log_metrics(metrics, step)` with its count of optimizer steps as
`step`, adds an `epoch` entry, and does not say whether the values are per step or per epoch.
This logger is therefore also a Callback (trainkit passes it in both lists): its hooks tell it
where the run is, so it can write what any LightningModule logs with `self.log` like this
(docs/tensorboard.md):

| tag                         | x axis    | written                                               |
|-----------------------------|-----------|-------------------------------------------------------|
| train/<name>                | iteration | values logged with on_step=True: at the first          |
|                             |           | iteration, then every trainer.log_every_n_steps        |
|                             |           | optimizer steps, at the iteration that completes it    |
| train/lr, train/samples_per_sec | iteration | at the same points (the lr the step used)          |
| val/<name>                  | iteration | after every validation, at the iteration it followed   |
| test/<name>                 | iteration | once, after fit, at the run's last iteration           |
| epoch/train_<name>          | epoch     | at the end of each epoch: values logged with           |
|                             |           | on_epoch=True (their mean over the epoch)              |
| epoch/val_<name>            | epoch     | at the end of each epoch that had a validation: the    |
|                             |           | last validation of that epoch                          |

An iteration is one training batch; epochs count from 1 (the first point of an epoch curve is
the end of epoch 1). Lightning's `epoch` entry is not written, nor per-batch validation values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.data import extract_batch_size

from trainkit.tensorboard_views import hparams_metrics, layout, write_hparams

EPOCH_VAL_RULE = (
    "x = epoch e (counted from 1): the last validation that ran during epoch e; every "
    "validation is in the val/ curves, by iteration"
)


def iteration(trainer: L.Trainer) -> int:
    """Training batches started so far in this run, resumed runs included."""
    return trainer.fit_loop.epoch_loop.batch_progress.total.ready


class IterationTensorBoardLogger(TensorBoardLogger, Callback):
    """Lightning's TensorBoardLogger with trainkit's tags and axes (see the module docstring).

    Outside a fit (no hooks called, e.g. a Trainer built by eval.py) it is Lightning's logger.
    """

    def __init__(
        self, *args: Any, monitor: str = "val/loss", monitor_mode: str = "min", **kwargs: Any
    ) -> None:
        TensorBoardLogger.__init__(self, *args, **kwargs)
        self.monitor, self.monitor_mode = monitor, monitor_mode  # for the best validation
        self._trainer: L.Trainer | None = None
        # the last point of each tag: a point is never written twice
        self._points: dict[str, tuple[int, float]] = {}
        self._best: tuple[int, float] | None = None  # (x, score) of the best validation
        self._epoch_ending = False  # between on_train_epoch_end and Lightning's epoch log call
        self._last_validation: dict[str, float] = {}  # of the current epoch
        self._lr: dict[str, float] = {}  # used by the latest optimizer step
        self._steps_seen = 0
        self._samples, self._clock = 0, math.nan

    @property
    def state_key(self) -> str:
        return "IterationTensorBoardLogger"

    # -- what Lightning logs -------------------------------------------------------------------
    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        trainer = self._trainer
        if trainer is None:
            return super().log_metrics(metrics, step)
        values = {k: float(v) for k, v in metrics.items() if k != "epoch"}
        if trainer.validating or trainer.testing:
            values = {k: v for k, v in values.items() if not k.endswith("_step")}
            if trainer.validating:
                self._last_validation.update(values)
                self._keep_if_best(iteration(trainer), values)
            self._write(values, iteration(trainer))
        elif self._epoch_ending:
            epoch = trainer.current_epoch + 1
            self._write({_epoch_tag(k): v for k, v in values.items()}, epoch)
        else:
            self._write({k.removesuffix("_step"): v for k, v in values.items()}, iteration(trainer))
        return None

    def _write(self, values: Mapping[str, float], x: int) -> None:
        fresh = {
            k: v for k, v in values.items() if k not in self._points or self._points[k][0] != x
        }
        if not fresh:
            return
        self._points.update({k: (x, v) for k, v in fresh.items()})
        super().log_metrics(fresh, x)

    def _keep_if_best(self, x: int, values: dict[str, float]) -> None:
        score = values.get(self.monitor)
        if score is None or math.isnan(score):
            return
        best = self._best[1] if self._best else None
        # strictly better, as ModelCheckpoint keeps the first of equal scores
        if best is None or (score < best if self.monitor_mode == "min" else score > best):
            self._best = (x, score)

    def final_points(self) -> dict[str, tuple[int, float]]:
        """(iteration or epoch, value) of what the HParams table shows (tensorboard_views.
        hparams_metrics): the last point of each curve, the monitored metric's best validation."""
        points = {t: self._points[t] for t in hparams_metrics(self.monitor, set(self._points))}
        if self._best is not None and self.monitor in points:
            points[self.monitor] = self._best
        return points

    @rank_zero_only
    def write_summary(self, hparams: dict[str, Any], name: str, status: str = "ok") -> None:
        """The run's HParams session and hparams.yaml (see trainkit.tensorboard_views)."""
        self.experiment.flush()
        write_hparams(self.log_dir, hparams, self.final_points(), name, status)

    # -- where the run is: Lightning calls these as it calls any callback's ---------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:  # train and val on one chart (tab Custom Scalars)
            self.experiment.add_custom_scalars(layout(self.monitor))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._steps_seen = trainer.global_step
        self._samples, self._clock = 0, time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_ending = False

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self._lr = learning_rates(optimizer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._samples += extract_batch_size(batch)
        stepped = trainer.global_step > self._steps_seen
        self._steps_seen = trainer.global_step
        first = iteration(trainer) == 1
        n = trainer.log_every_n_steps
        if not (first or (stepped and n and trainer.global_step % n == 0)):
            return
        if not self._lr and trainer.optimizers:  # before the first step: the lr it will use
            self._lr = learning_rates(trainer.optimizers[0])
        values = dict(self._lr)
        now = time.perf_counter()
        if not first:
            values["train/samples_per_sec"] = self._samples / max(now - self._clock, 1e-9)
        self._samples, self._clock = 0, now
        if first:  # Lightning logs step values only after optimizer steps: the first point
            step_values = {k: v for k, v in trainer.logged_metrics.items() if k != "epoch"}
            values.update({k.removesuffix("_step"): float(v) for k, v in step_values.items()})
        if trainer.is_global_zero:
            self._write(values, iteration(trainer))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_ending = True  # Lightning's log call of the epoch's values comes next
        if trainer.is_global_zero and self._last_validation:
            epoch = trainer.current_epoch + 1
            self._write({_epoch_tag(k): v for k, v in self._last_validation.items()}, epoch)
        self._last_validation = {}  # the next epoch's point comes from its own validations

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_ending = False

    def state_dict(self) -> dict[str, Any]:
        return {"last_validation": dict(self._last_validation), "best": self._best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._last_validation = dict(state_dict.get("last_validation", {}))
        self._best = state_dict.get("best")


def learning_rates(optimizer: Any) -> dict[str, float]:
    """train/lr (and train/lr_group1, ... for more parameter groups) of an optimizer."""
    return {
        "train/lr" if i == 0 else f"train/lr_group{i}": float(group["lr"])
        for i, group in enumerate(optimizer.param_groups)
    }


def _epoch_tag(key: str) -> str:
    """ "train/loss_epoch" -> "epoch/train_loss"; "val/acc" -> "epoch/val_acc"."""
    stage, _, name = key.removesuffix("_epoch").partition("/")
    return f"epoch/{stage}_{name}" if name else f"epoch/{stage}"
