"""TensorBoard logger whose step-wise x axis is the iteration (training batches done).

Lightning writes scalars against its count of optimizer steps. With accumulate_grad_batches=k
that is k iterations per x unit, so step-wise curves of runs with different accumulation do not
line up. This subclass writes them against the iteration instead: step-wise training metrics at
the iteration that completes an optimizer step, validation at the iteration after which it ran.
Lightning's LearningRateMonitor reports once per accumulating batch at the same step: only the
first of those is kept. Everything else is Lightning's TensorBoardLogger.
"""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only


class IterationTensorBoardLogger(TensorBoardLogger):
    """`TensorBoardLogger` with x = iterations during fit; call `bind(trainer)` before fit."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._trainer: L.Trainer | None = None
        self._last_step: dict[str, int] = {}

    def bind(self, trainer: L.Trainer) -> None:
        self._trainer = trainer

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        trainer = self._trainer
        if trainer is None or step is None:
            return super().log_metrics(metrics, step)
        kept = {}
        for key, value in metrics.items():
            if key.endswith("_step") or key.startswith("lr-"):
                if self._last_step.get(key) == step:
                    continue  # the same optimizer step again (accumulating): keep the first
                self._last_step[key] = step
            kept[key] = value
        if not kept:
            return None
        iteration = trainer.fit_loop.epoch_loop.batch_progress.total.ready
        return super().log_metrics(kept, iteration)
