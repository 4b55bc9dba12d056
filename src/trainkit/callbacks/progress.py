"""Lightning's TQDM progress bar, redrawn at most every `min_interval` seconds (not every N
batches: fast iterations do not pay for redraws, slow ones still show every batch). The last
iteration of an epoch is always drawn."""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class ProgressBar(TQDMProgressBar):
    def __init__(self, min_interval: float = 0.25, **kwargs: Any) -> None:
        super().__init__(refresh_rate=1, **kwargs)
        self.min_interval = min_interval
        self._last_draw = -math.inf  # time.monotonic() of the last draw
        self._epoch_batches: float = 0  # iterations this epoch will run (its last is drawn)

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        batches = trainer.num_training_batches
        if trainer.max_steps is not None and trainer.max_steps > 0:
            remaining = trainer.max_steps - trainer.global_step
            batches = min(batches, remaining * trainer.accumulate_grad_batches)
        self._epoch_batches = batches

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        now = time.monotonic()
        if now - self._last_draw < self.min_interval and batch_idx + 1 < self._epoch_batches:
            return
        self._last_draw = now
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
