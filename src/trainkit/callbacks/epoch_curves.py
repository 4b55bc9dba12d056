"""Epoch-indexed TensorBoard curves.

Lightning writes every scalar against the step counter, epoch-level ones included. This callback
also writes the epoch-level training and validation metrics under `epoch/` with the number of
completed epochs as the x value, so runs with different batch sizes line up by epoch.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger


class EpochCurves(Callback):
    """Writes `epoch/train_loss`, `epoch/val_acc`, ... at x = epochs completed."""

    def __init__(self) -> None:
        self._validated = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not any(isinstance(lg, TensorBoardLogger) for lg in trainer.loggers):
            return
        metrics = dict(trainer.callback_metrics)
        # Lightning calls this hook before the module's own on_train_epoch_end, where a trainkit
        # module logs its training-epoch metrics: ask it for them directly (on every process:
        # under DDP it is a collective).
        if hasattr(pl_module, "train_epoch_values"):
            metrics.update({f"train/{k}": v for k, v in pl_module.train_epoch_values().items()})
        validated, self._validated = self._validated, False
        if not trainer.is_global_zero:
            return
        writers = [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        values: dict[str, float] = {}
        for key, value in metrics.items():
            stage, _, name = key.partition("/")
            if stage not in ("train", "val") or not name or name.endswith("_step"):
                continue
            if stage == "val" and not validated:
                continue  # no validation in this epoch: do not repeat the previous value
            values[f"epoch/{stage}_{name.removesuffix('_epoch')}"] = float(value)
        epoch = trainer.current_epoch + 1
        for writer in writers:
            for tag, value in values.items():
                writer.add_scalar(tag, value, global_step=epoch)
