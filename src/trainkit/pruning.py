"""Optuna pruning for a job of trainkit's Optuna sweeper (`hydra.sweeper.pruner=median`).

The sweeper adds this callback to each trial's job with Hydra's own grammar
(`+callbacks.optuna_pruning._target_=trainkit.pruning.OptunaPruning`), and tells the job its
trial through the environment (hydra.job.env_set). After every validation of the fit, the job
reports `monitor` (the sweep's optimized_metric) to its trial, at step = the validation's number
(1, 2, ...; a resumed run goes on counting), and asks the trial's pruner whether to stop. A
pruned run stops like an early-stopped one, is not tested, and its metrics.json says status
"pruned"; the sweeper tells Optuna the trial was PRUNED.

Only the main process (rank 0) talks to Optuna; under DDP it tells the others whether to stop.
The trial is found in the sweep's own process (in-memory study, basic launcher) or through the
study's storage (joblib, submitit: any process that can open the storage, e.g. a journal file on
a shared file system or a database server).

Why not optuna-integration's PyTorchLightningPruningCallback (5.0): it takes a Trial object
(which a Hydra job in another process cannot be given), reports at step = epoch (two
validations of one epoch clash), raises `TrialPruned` out of a hook in a single process (fit
ends as an error, not as a shorter finished run), and under DDP accepts only an RDB storage.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

log = logging.getLogger(__name__)


class OptunaPruning(Callback):
    """Reports `monitor` to the job's Optuna trial after each validation; stops when pruned.

    Args:
        monitor: the metric reported, as logged ("val/acc"); the sweeper passes its
            optimized_metric.

    Attributes:
        pruned: True once the trial's pruner stopped the run (train() then records status
            "pruned" and skips the test).
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.validations = 0
        self.pruned = False
        self._trial: Any = None

    @property
    def state_key(self) -> str:
        return "OptunaPruning"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero and self._trial is None:
            from hydra_plugins.trainkit_optuna_sweeper._storage import trial_of_this_job

            sweeper = HydraConfig.get().sweeper if HydraConfig.initialized() else {}
            self._trial = trial_of_this_job(sweeper)
            if self._trial is None:
                log.warning("optuna_pruning: not a job of an Optuna sweep; nothing is reported")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self.validations += 1
        prune = False
        value = trainer.callback_metrics.get(self.monitor)
        ours = trainer.is_global_zero and self._trial is not None
        if ours and value is not None and math.isfinite(float(value)):
            self._trial.report(float(value), step=self.validations)
            prune = self._trial.should_prune()
        if trainer.strategy.broadcast(prune):
            self.pruned = True
            trainer.should_stop = True
            if trainer.is_global_zero:
                log.info(
                    "Optuna pruned trial %d after validation %d (%s = %.4g): stopping",
                    self._trial.number,
                    self.validations,
                    self.monitor,
                    float(value),
                )

    def state_dict(self) -> dict[str, Any]:
        return {"validations": self.validations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.validations = int(state_dict.get("validations", 0))
