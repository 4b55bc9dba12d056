"""The best checkpoint, early stopping and a sweep's objective watch one metric: the model
config's `monitor` (default val/loss). A model that does not log it would stop the run after its
first validation with Lightning's long error; this says it in one sentence, with what the model
does log."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from trainkit.errors import ConfigError


class MonitorGuard(Callback):
    """Checks, at the end of the first validation, that the monitored metric was logged. Put it
    before the callbacks that watch the metric (they act in the same hook)."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self._checked = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self._checked:
            return
        self._checked = True
        watching = [
            c
            for c in trainer.callbacks
            if isinstance(c, (ModelCheckpoint, EarlyStopping)) and c.monitor == self.monitor
        ]
        if not watching or self.monitor in trainer.callback_metrics:
            return
        logged = sorted(trainer.callback_metrics) or "nothing"
        raise ConfigError(
            f"the best checkpoint and early stopping watch {self.monitor}, which "
            f"{type(pl_module).__name__} does not log in validation (it logs {logged}): set "
            "+model.monitor=<one of them> (and +model.monitor_mode=min or max), or drop them "
            "with callbacks.model_checkpoint=null callbacks.early_stopping=null."
        )
