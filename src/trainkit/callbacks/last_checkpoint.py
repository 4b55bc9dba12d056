"""last.ckpt, always the latest state: what `ckpt_path=<run dir>` and `ckpt_path=last` resume.

Lightning's `ModelCheckpoint(save_last=True)` (2.6) rewrites last.ckpt only when a best checkpoint
is saved in the same step, so after an epoch without improvement it is stale. This subclass keeps
its own last.ckpt: after a validation (or an epoch, without validation) once `min_interval`
seconds have passed since it was last written (the first one always; 0 = after every one, which
on a small dataset means several checkpoints a second), every `every_n_train_steps` optimizer
steps if set, at the end of training, and on an interrupt:

- Ctrl-C (SIGINT) or SIGTERM (a cluster pre-empting the job): the current iteration finishes,
  last.ckpt is written, the way to resume is printed, and the process exits non-zero. A second
  Ctrl-C stops at once (the checkpoint is still attempted).
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from trainkit.errors import ConfigError

log = logging.getLogger(__name__)


class LastCheckpoint(ModelCheckpoint):
    """Writes <dirpath>/last.ckpt (atomically, see trainkit.checkpoint_io)."""

    def __init__(
        self, dirpath: str, every_n_train_steps: int | None = None, min_interval: float = 30.0
    ) -> None:
        if min_interval < 0:
            raise ConfigError(
                f"callbacks.last_checkpoint.min_interval must be >= 0 seconds, got {min_interval}."
            )
        super().__init__(
            dirpath=dirpath,
            filename="last",
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,
            every_n_train_steps=every_n_train_steps,
        )
        self.min_interval = min_interval
        self._last_write = -math.inf  # time.monotonic() of the last write
        self.resume_hint = ""  # set by train(): the command that resumes this run
        self._interrupt_requested = False
        self._previous_handler: Any = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(role="last")

    @property
    def path(self) -> Path:
        return Path(self.dirpath) / "last.ckpt"

    # -- after validations: at most every min_interval seconds ---------------------------------
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._due(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._due(trainer):
            super().on_validation_end(trainer, pl_module)

    def _due(self, trainer: L.Trainer) -> bool:
        due = time.monotonic() - self._last_write >= self.min_interval
        # writing a checkpoint is a collective under DDP: every process decides as rank 0 does
        return bool(trainer.strategy.broadcast(due))

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._last_write = time.monotonic()

    # -- Ctrl-C: finish the iteration, then stop ----------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._interrupt_requested = False
        self._last_write = -math.inf
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._interrupt_requested:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self._interrupt_requested = True
        print(
            "\nCtrl-C: finishing this iteration, then saving last.ckpt (Ctrl-C again: stop now)",
            file=sys.stderr,
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self._every_n_train_steps >= 1:  # otherwise ModelCheckpoint has nothing to do here
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self._interrupt_requested:
            raise KeyboardInterrupt  # at an iteration boundary: the state is consistent

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None

    # -- the end of training, and interrupts ---------------------------------------------------
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step != self._last_global_step_saved and not trainer.sanity_checking:
            self._save_checkpoint(trainer, str(self.path))

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            return  # a crash (or a NaN loss): keep the last good checkpoint as it is
        kind = "SIGTERM" if isinstance(exception, SIGTERMException) else "Ctrl-C"
        trainer.save_checkpoint(self.path)
        strategy = trainer.strategy
        if strategy.checkpoint_io is not None and hasattr(strategy.checkpoint_io, "wait"):
            strategy.checkpoint_io.wait()  # the file is complete before the process ends
        iteration = trainer.fit_loop.epoch_loop.batch_progress.total.processed
        if trainer.is_global_zero:
            log.warning(
                "%s: stopped after iteration %d (epoch %d); saved %s. Resume with:\n  %s",
                kind,
                iteration,
                trainer.current_epoch,
                self.path,
                self.resume_hint or f"python train.py ckpt_path={self.path.parent.parent}",
            )
