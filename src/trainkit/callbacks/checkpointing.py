"""The run's two checkpoints: the best one by the monitored metric, and last.ckpt (the latest
state, which a resume continues from). Both are written through
trainkit.checkpoint_io.AtomicCheckpointIO: atomically, and by default in the background.

- `BestCheckpoint` is Lightning's ModelCheckpoint; resumed into a new run directory, it brings
  the resumed run's best checkpoint(s) along (copied into the new checkpoints/ folder) with
  their scores, instead of starting afresh as ModelCheckpoint does when its dirpath changed.
- `LastCheckpoint` writes last.ckpt after a validation (or an epoch without one) once
  `min_interval` seconds have passed since it was last written (the first one always; 0 = after
  every one), every `every_n_train_steps` optimizer steps if set, at the end of training, and on
  an interrupt during fit:

  Ctrl-C (SIGINT) or SIGTERM (a cluster pre-empting the job) during fit: the current iteration
  (or the validation under way) finishes, last.ckpt is written, the way to resume is printed,
  and the process exits non-zero (1 for Ctrl-C, 143 for SIGTERM). A second Ctrl-C stops at once
  (the checkpoint is still attempted). An interrupt after fit (while testing) leaves last.ckpt
  as fit wrote it: the final weights.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from trainkit.command_line import quote_value
from trainkit.errors import ConfigError
from trainkit.loggers import iteration

log = logging.getLogger(__name__)


def _in_main_thread() -> bool:  # signal handlers can only be set there
    return threading.current_thread() is threading.main_thread()


class BestCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose best checkpoints and scores survive a resume into a new run
    directory (trainkit resumes into a new run directory; nothing is overwritten), and whose file
    names count as everything else a user reads does: `{epoch}` from 1, `{iteration}` training
    batches (best-epoch005-iter000200.ckpt is TensorBoard's epoch 5, iteration 200)."""

    _trainer: L.Trainer | None = None  # set in setup()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._trainer = trainer

    def format_checkpoint_name(self, metrics: dict[str, Any], *args: Any, **kwargs: Any) -> str:
        trainer = self._trainer
        if trainer is not None and "epoch" in metrics:
            counted = {"epoch": metrics["epoch"] + 1, "iteration": iteration(trainer)}
            metrics = {**metrics, **counted}
        return super().format_checkpoint_name(metrics, *args, **kwargs)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old_dir = state_dict.get("dirpath")
        if not old_dir or self.dirpath is None or Path(old_dir) == Path(self.dirpath):
            return super().load_state_dict(state_dict)
        best_k = state_dict.get("best_k_models") or {}
        # where it was written, or beside the checkpoint resumed from (a run folder moved or
        # copied elsewhere since)
        resumed_from = self._trainer.ckpt_path if self._trainer is not None else None
        beside = Path(resumed_from).parent if resumed_from else None
        found = {p: _find_file(Path(p), beside) for p in best_k}
        if not best_k or None in found.values():
            looked = " and ".join(str(x) for x in (old_dir, beside) if x)
            log.warning(
                "the best checkpoint of the resumed run (%s) is in neither %s: the best "
                "checkpoint is chosen among this run's validations only",
                Path(state_dict.get("best_model_path") or old_dir).name,
                looked,
            )
            return None
        moved = {str(Path(self.dirpath) / Path(p).name): score for p, score in best_k.items()}
        _copy_files([str(f) for f in found.values()], self.dirpath)

        def new(path: str | None) -> str:
            return str(Path(self.dirpath) / Path(path).name) if path else ""

        super().load_state_dict(
            {
                **state_dict,
                "dirpath": self.dirpath,
                "best_k_models": moved,
                "best_model_path": new(state_dict.get("best_model_path")),
                "kth_best_model_path": new(state_dict.get("kth_best_model_path")),
                "last_model_path": "",
            }
        )
        return None


def _find_file(recorded: Path, beside: Path | None) -> Path | None:
    """A checkpoint file where it was written, else the file of that name in `beside`."""
    if recorded.is_file():
        return recorded
    if beside is not None and (beside / recorded.name).is_file():
        return beside / recorded.name
    return None


@rank_zero_only
def _copy_files(paths: list[str], folder: str) -> None:
    """Hard links where the file system allows (no copy of the bytes), else copies."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    for path in paths:
        target = Path(folder) / Path(path).name
        if target.exists():
            continue
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


class LastCheckpoint(Checkpoint):
    """Writes <dirpath>/last.ckpt (see the module docstring).

    A `Checkpoint` (Lightning's base class of ModelCheckpoint): Lightning runs checkpoint
    callbacks after the others, so the state it saves holds the other callbacks' latest state
    (early stopping's patience, the best checkpoint's score).
    """

    def __init__(
        self, dirpath: str, every_n_train_steps: int | None = None, min_interval: float = 30.0
    ) -> None:
        if min_interval < 0:
            raise ConfigError(
                f"callbacks.last_checkpoint.min_interval must be >= 0 seconds, got {min_interval}."
            )
        if every_n_train_steps is not None and every_n_train_steps < 1:
            raise ConfigError(
                "callbacks.last_checkpoint.every_n_train_steps must be null or >= 1, got "
                f"{every_n_train_steps}."
            )
        self.path = Path(dirpath) / "last.ckpt"
        self.every_n_train_steps = every_n_train_steps
        self.min_interval = min_interval
        self._last_write = -math.inf  # time.monotonic() of the last write
        self._saved_step = -1  # global step of the last write
        self._interrupt_requested = False
        self._previous_handler: Any = None  # of SIGINT, before fit
        self._lightning_sigterm_handler: Any = None
        self._sigterm: tuple[int, Any] | None = None  # a SIGTERM held until the iteration ends

    def save(self, trainer: L.Trainer) -> None:
        """Write last.ckpt now (every process must call it under DDP)."""
        trainer.save_checkpoint(self.path, weights_only=False)
        self._last_write, self._saved_step = time.monotonic(), trainer.global_step

    # -- after validations: at most every min_interval seconds ---------------------------------
    # When validation runs once at the end of every epoch (or not at all), the state is saved at
    # the end of the epoch, as Lightning's ModelCheckpoint does: a resume then starts the next
    # epoch, instead of replaying the end of one whose validation metrics it does not have.
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        if not saves_at_epoch_end(trainer):
            self._save_if_due(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if saves_at_epoch_end(trainer):
            self._save_if_due(trainer)
        self._stop_if_asked()  # an interrupt during the epoch's last validation: stop here

    def _save_if_due(self, trainer: L.Trainer) -> None:
        due = time.monotonic() - self._last_write >= self.min_interval
        # writing a checkpoint is a collective under DDP: every process decides as rank 0 does
        if trainer.strategy.broadcast(due) and trainer.global_step != self._saved_step:
            self.save(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        n = self.every_n_train_steps
        if n and trainer.global_step % n == 0 and trainer.global_step != self._saved_step:
            self.save(trainer)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        # between two iterations: the one before is complete in Lightning's progress (which a
        # stop at its end would leave one short of its optimizer step) and this one not begun
        self._stop_if_asked()

    def _stop_if_asked(self) -> None:
        if self._interrupt_requested:
            raise KeyboardInterrupt
        if self._sigterm is not None:  # Lightning's handler now: it stops the run right after
            signum, frame = self._sigterm
            self._sigterm = None
            self._lightning_sigterm_handler(signum, frame)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step != self._saved_step:
            self.save(trainer)

    # -- Ctrl-C and SIGTERM: finish the iteration (or the validation under way), then stop ------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._interrupt_requested = False
        self._last_write, self._saved_step = -math.inf, -1
        if _in_main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning's SIGTERM handler (installed just before training) would stop the run at the
        # next batch of a validation under way, and a resume would not finish that validation:
        # hold the signal until the iteration or the epoch ends, then hand it to Lightning.
        self._sigterm = None
        if _in_main_thread():
            self._lightning_sigterm_handler = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self._sigterm = (signum, frame)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._interrupt_requested:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self._interrupt_requested = True
        print(
            "\nCtrl-C: finishing this iteration, then saving last.ckpt (Ctrl-C again: stop now)",
            file=sys.stderr,
        )

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None
        if self._lightning_sigterm_handler is not None:
            # Lightning restores the handlers it found before the callbacks' teardown: give it
            # back its own only if ours is still installed (else its handler would outlive fit,
            # and a SIGTERM between two jobs of a sweep would be lost)
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                signal.signal(signal.SIGTERM, self._lightning_sigterm_handler)
            self._lightning_sigterm_handler = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            return  # a crash (or a NaN loss): keep the last good checkpoint as it is
        if trainer.state.fn != TrainerFn.FITTING:
            return  # testing: last.ckpt already holds the final weights of fit
        kind = "SIGTERM" if isinstance(exception, SIGTERMException) else "Ctrl-C"
        self.save(trainer)
        io = trainer.strategy.checkpoint_io
        if hasattr(io, "wait"):
            io.wait()  # the file is complete before the process ends
        if trainer.is_global_zero:
            log.warning(
                "%s: stopped after iteration %d (epoch %d); saved %s. Resume with:\n  %s",
                kind,
                trainer.fit_loop.epoch_loop.batch_progress.total.completed,
                trainer.current_epoch + 1,
                self.path,
                resume_command(self.path.parent.parent),
            )


@contextlib.contextmanager
def ctrl_c_kept() -> Iterator[None]:
    """Leave Ctrl-C as it was found around a Trainer's fit or test. Lightning ignores SIGINT for
    good once it catches a KeyboardInterrupt (trainer/call.py: SIG_IGN, which the processes
    started afterwards inherit) and its signal connector's teardown re-installs whatever handler
    it found (LastCheckpoint's, during fit): a notebook, or the test process that called
    train(), could otherwise never be interrupted again."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        if _in_main_thread() and handler is not None:
            signal.signal(signal.SIGINT, handler)


def saves_at_epoch_end(trainer: L.Trainer) -> bool:
    """True when validation runs once at the end of every epoch, or not at all."""
    if not trainer.enable_validation or not sum(trainer.num_val_batches or [0]):
        return True
    return trainer.check_val_every_n_epoch == 1 and trainer.val_check_interval == 1.0


def resume_command(run_dir: Path) -> str:
    """`python train.py <this run's overrides> ckpt_path=<run dir>`, each argument quoted for the
    shell where it must be (a path with spaces or non-ASCII characters), ready to paste."""
    from hydra.core.hydra_config import HydraConfig

    overrides = []
    if HydraConfig.initialized():
        overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith("ckpt_path=")]
    args = [*overrides, f"ckpt_path={quote_value(str(run_dir))}"]
    return " ".join(["python train.py", *(shlex.quote(a) for a in args)])
