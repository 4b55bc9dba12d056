"""Stop at the first non-finite training loss, with one sentence instead of a run of NaNs."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from trainkit.errors import TrainkitError


class NonFiniteLossError(TrainkitError):
    """The training loss became NaN or infinite."""


class FiniteLossGuard(Callback):
    """Checks every iteration's loss. On the CPU each loss is checked at once; on an accelerator
    the losses are kept on the device and checked together every `check_every` iterations (and
    at each epoch's end), so that the check adds no per-iteration host sync. Either way the error
    names the first bad iteration."""

    def __init__(self, check_every: int = 50) -> None:
        self.check_every = check_every
        self._losses: list[torch.Tensor] = []
        self._first_iteration = 0

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        if loss.device.type == "cpu":  # reading a CPU tensor costs no sync: check it at once
            if not math.isfinite(loss.item()):
                self._first_iteration = trainer.fit_loop.epoch_loop.batch_progress.total.ready
                self._losses = [loss.detach().reshape(())]
                self._check(trainer)
            return
        if not self._losses:
            self._first_iteration = trainer.fit_loop.epoch_loop.batch_progress.total.ready
        self._losses.append(loss.detach().reshape(()))
        if len(self._losses) >= self.check_every:
            self._check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: L.Trainer) -> None:
        if not self._losses:
            return
        finite = torch.isfinite(torch.stack(self._losses)).cpu()
        losses, self._losses = self._losses, []
        if bool(finite.all()):
            return
        bad = int((~finite).nonzero()[0])
        value = float(losses[bad].float())
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else math.nan
        raise NonFiniteLossError(
            f"the training loss became {value} at iteration {self._first_iteration + bad} "
            f"(epoch {trainer.current_epoch}); most likely the learning rate ({lr:g}) is too "
            "high for this model and data: lower optimizer.lr, or set "
            "trainer.gradient_clip_val=1.0."
        )
