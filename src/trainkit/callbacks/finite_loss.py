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
    """Checks the loss after every iteration (one host sync per iteration)."""

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None or bool(torch.isfinite(loss.detach()).all()):
            return
        value = float(loss.detach().float().mean())
        iteration = trainer.fit_loop.epoch_loop.batch_progress.total.ready
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else math.nan
        raise NonFiniteLossError(
            f"the training loss became {value} at iteration {iteration} "
            f"(epoch {trainer.current_epoch}, batch {batch_idx}); most likely the learning rate "
            f"({lr:g}) is too high for this model and data: lower optimizer.lr, or set "
            "trainer.gradient_clip_val=1.0."
        )
