"""One metrics path for every Lightning logger: trainkit's axes and names, whatever the logger
(TensorBoard, CSV, MLflow, W&B, or one of your own).

Lightning hands each logger `log_metrics(metrics, step)` with its count of optimizer steps as
`step`, adds an `epoch` entry, and does not say whether the values are per step or per epoch.
`MetricsAxes` is a Callback, so its hooks tell it where the run is; `MetricsAxes.attach(logger)`
routes that logger's `log_metrics` through it. Every logger then records what any
LightningModule logs with `self.log` like this (docs/tensorboard.md):

| name                        | x axis    | written                                               |
|-----------------------------|-----------|-------------------------------------------------------|
| train/<name>                | iteration | values logged with on_step=True: at the first          |
|                             |           | iteration, then every trainer.log_every_n_steps        |
|                             |           | optimizer steps, at the iteration that completes it,   |
|                             |           | and at the run's last iteration                        |
| train/lr, train/samples_per_sec | iteration | at the same points (the lr the step used)          |
| val/<name>                  | iteration | after every validation, at the iteration it followed   |
| test/<name>                 | iteration | once, after fit, at the run's last iteration           |
| epoch/train_<name>          | epoch     | at the end of each epoch: values logged with           |
|                             |           | on_epoch=True (their mean over the epoch)              |
| epoch/val_<name>            | epoch     | at the end of each epoch that had a validation: the    |
|                             |           | last validation of that epoch                          |

An iteration is one training batch; epochs count from 1 (the first point of an epoch curve is
the end of epoch 1). Lightning's `epoch` entry is not written, nor per-batch validation values.
How an axis is written depends on what the logger can hold: TensorBoard and MLflow keep a step
per value (x is the step); CSV has one `step` column (the iteration; epoch rows add an `epoch`
column); W&B gets `iteration` and `epoch` as its step metrics. What only TensorBoard shows (the
Custom Scalars layout, images, the HParams table) is in trainkit.tensorboard_views.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import (
    Logger,
    TensorBoardLogger,
)
from lightning.pytorch.utilities.data import extract_batch_size

from trainkit.logger_kinds import (
    EPOCH,
    ITERATION,
    continuation,
    raw_log_metrics,
    record_settings,
    run_outcome,
    write_on_axis,
)
from trainkit.tensorboard_views import layout, summary_metrics, write_hparams

log = logging.getLogger(__name__)
Points = dict[str, tuple[int, float]]  # tag -> (x, value) of its latest point


def iteration(trainer: L.Trainer) -> int:
    """Training batches started so far in this run, resumed runs included."""
    return trainer.fit_loop.epoch_loop.batch_progress.total.ready


class MetricsAxes(Callback):
    """Knows where the run is (Lightning calls its hooks) and writes what the attached loggers
    receive on trainkit's axes (see the module docstring). `monitor`/`monitor_mode`: the metric
    whose best validation the run's summary (TensorBoard's HParams) shows."""

    def __init__(self, monitor: str = "val/loss", monitor_mode: str = "min") -> None:
        self.monitor, self.monitor_mode = monitor, monitor_mode
        self.loggers: list[Logger] = []
        self._names: dict[int, str] = {}  # per logger: its entry in the config's `logger`
        self._points: dict[int, Points] = {}  # per logger: a point is never written twice
        self._trainer: L.Trainer | None = None
        self._best: tuple[int, float] | None = None  # (x, score) of the best validation
        self._epoch_ending = False  # between on_train_epoch_end and Lightning's epoch log call
        self._last_validation: dict[str, float] = {}  # of the current epoch
        self._lr: dict[str, float] = {}  # used by the latest optimizer step
        self._steps_seen = 0
        self._samples, self._clock = 0, math.nan
        self._loss_sum: Any = 0.0  # the training losses of this epoch (a tensor: no sync)
        self._loss_count = 0
        self._epoch_loss: float | None = None  # the mean training loss of the last epoch
        self._layout_written = False

    @property
    def state_key(self) -> str:
        return "MetricsAxes"

    def attach(self, logger: Logger, name: str = "") -> Logger:
        """Route Lightning's `log_metrics` calls to `logger` (the config's `logger.<name>`)
        through these axes. Set on this instance only: its class, and every isinstance check on
        it, stay the logger's own."""
        logger.log_metrics = _OnAxes(logger, self)  # type: ignore[method-assign]
        self.loggers.append(logger)
        self._names[id(logger)] = name
        self._points[id(logger)] = {}
        return logger

    # -- what Lightning logs ---------------------------------------------------------------------
    def route(self, metrics: Mapping[str, Any]) -> tuple[str, int, dict[str, float]]:
        """(axis, x, values) of one of Lightning's log calls, named as trainkit names them."""
        trainer = self._trainer
        assert trainer is not None
        values = {k: float(v) for k, v in metrics.items() if k != "epoch"}
        if trainer.validating or trainer.testing:
            values = {k: v for k, v in values.items() if not k.endswith("_step")}
            if trainer.validating:  # idempotent: every attached logger routes the same call
                self._last_validation.update(values)
                self._keep_if_best(iteration(trainer), values)
            return ITERATION, iteration(trainer), values
        if self._epoch_ending:
            epoch_values = {_epoch_tag(k): v for k, v in values.items()}
            return EPOCH, trainer.current_epoch + 1, epoch_values
        return (
            ITERATION,
            iteration(trainer),
            {k.removesuffix("_step"): v for k, v in values.items()},
        )

    def write(self, logger: Logger, axis: str, x: int, values: Mapping[str, float]) -> None:
        """Write the points of `values` at `x` to `logger`, each at most once."""
        points = self._points[id(logger)]
        fresh = {k: v for k, v in values.items() if points.get(k, (None, 0.0))[0] != x}
        if not fresh:
            return
        points.update({k: (x, v) for k, v in fresh.items()})
        now = iteration(self._trainer) if self._trainer is not None else x
        write_on_axis(logger, axis, x, fresh, now)

    def emit(self, trainer: L.Trainer, axis: str, x: int, values: Mapping[str, float]) -> None:
        """Points Lightning does not log itself, to every attached logger (rank 0 writes)."""
        if trainer.is_global_zero:
            for logger in self.active:
                self.write(logger, axis, x, values)

    def _keep_if_best(self, x: int, values: dict[str, float]) -> None:
        score = values.get(self.monitor)
        if score is None or math.isnan(score):
            return
        best = self._best[1] if self._best else None
        # strictly better, as ModelCheckpoint keeps the first of equal scores
        if best is None or (score < best if self.monitor_mode == "min" else score > best):
            self._best = (x, score)

    # -- where the run is: Lightning calls these as it calls any callback's ---------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    @property
    def active(self) -> list[Logger]:
        """The attached loggers the Trainer uses (none under fast_dev_run, which turns them off)."""
        used = self._trainer.loggers if self._trainer is not None else []
        return [lg for lg in self.loggers if any(lg is u for u in used)]

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._layout_written = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and not self._layout_written:
            self._write_layout(trainer)

    def _write_layout(self, trainer: L.Trainer) -> None:
        """Train and val on one chart (tab Custom Scalars), for the loss and the monitored
        metric under the names the model logs them (a regression's loss is `mse`)."""
        self._layout_written = True
        monitored = self.monitor.partition("/")[2]
        for logger in self.active:
            tags = self._points[id(logger)]
            names = [n for n in ("loss", "mse", monitored)
                     if f"train/{n}" in tags or f"val/{n}" in tags]  # fmt: skip
            if isinstance(logger, TensorBoardLogger) and names and trainer.is_global_zero:
                logger.experiment.add_custom_scalars(layout(names))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._steps_seen = trainer.global_step
        self._samples, self._clock = 0, time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_ending = False

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self._lr = learning_rates(optimizer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._samples += extract_batch_size(batch)
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):
            self._loss_sum, self._loss_count = self._loss_sum + loss.detach(), self._loss_count + 1
        stepped = trainer.global_step > self._steps_seen
        self._steps_seen = trainer.global_step
        first = iteration(trainer) == 1
        n = trainer.log_every_n_steps
        if not (first or (stepped and n and trainer.global_step % n == 0)):
            return
        values = self._lr_now(trainer)
        now = time.perf_counter()
        if not first:
            values["train/samples_per_sec"] = self._samples / max(now - self._clock, 1e-9)
        self._samples, self._clock = 0, now
        if first:  # Lightning logs step values only after optimizer steps: the first point
            values.update(step_values(trainer.logged_metrics))
        self.emit(trainer, ITERATION, iteration(trainer), values)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_ending = True  # Lightning's log call of the epoch's values comes next
        if self._loss_count:  # one read of the device per epoch
            self._epoch_loss = float(self._loss_sum / self._loss_count)
        self._loss_sum, self._loss_count = 0.0, 0
        if self._last_validation:
            epoch = trainer.current_epoch + 1
            values = {_epoch_tag(k): v for k, v in self._last_validation.items()}
            self.emit(trainer, EPOCH, epoch, values)
        self._last_validation = {}  # the next epoch's point comes from its own validations

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The step-wise curves end at the run's last iteration (a run whose length is not a
        multiple of the log interval would end before it)."""
        self._epoch_ending = False
        if not self._layout_written:
            self._write_layout(trainer)
        if trainer.log_every_n_steps and iteration(trainer) > 0:
            values = {**self._lr_now(trainer), **step_values(trainer.callback_metrics)}
            self.emit(trainer, ITERATION, iteration(trainer), values)

    def _lr_now(self, trainer: L.Trainer) -> dict[str, float]:
        if not self._lr and trainer.optimizers:  # before the first step: the lr it will use
            self._lr = learning_rates(trainer.optimizers[0])
        return dict(self._lr)

    def state_dict(self) -> dict[str, Any]:
        """The current epoch's validation and the best one, and where each logger writes (a
        resumed run goes on there: trainkit.logger_kinds.continuation)."""
        where = {
            self._names[id(lg)]: continuation(lg) for lg in self.loggers if self._names[id(lg)]
        }
        return {"last_validation": dict(self._last_validation), "best": self._best,
                "continue": where}  # fmt: skip

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._last_validation = dict(state_dict.get("last_validation", {}))
        self._best = state_dict.get("best")

    # -- the end of a run ------------------------------------------------------------------------
    def record_run(self, hparams: dict[str, Any], summary: dict[str, Any]) -> None:
        """Give every attached logger the run's settings and outcome, in the form it keeps them:
        TensorBoard's HParams row (trainkit.tensorboard_views), MLflow's params and tags, W&B's
        config and summary, the CSV logger's hparams.yaml."""
        for logger in self.active:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.flush()
                points = self._points[id(logger)]
                metrics = summary_metrics(
                    self.monitor, points, self._best, summary, self._epoch_loss
                )
                step = iteration(self._trainer) if self._trainer is not None else 0
                write_hparams(logger.log_dir, hparams, metrics, step, summary["status"])
                logger.save()
            else:
                record_settings(logger, hparams, run_outcome(summary))


class _OnAxes:
    """A logger's `log_metrics` as MetricsAxes.attach installs it: during a fit (or the test
    after it) through the axes, otherwise (a Trainer of eval.py, the finders) as it was."""

    def __init__(self, logger: Logger, axes: MetricsAxes) -> None:
        self.logger, self.axes = logger, axes

    def __call__(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if self.axes._trainer is None:
            return raw_log_metrics(self.logger)(metrics, step)
        axis, x, values = self.axes.route(metrics)
        self.axes.write(self.logger, axis, x, values)
        return None


def step_values(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The step values among Lightning's metrics ("train/loss_step" -> "train/loss")."""
    return {k.removesuffix("_step"): float(v) for k, v in metrics.items() if k.endswith("_step")}


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
