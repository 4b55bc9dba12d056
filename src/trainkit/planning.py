"""What a run will do, decided before it starts (trainkit.training calls plan_run): its budget
(trainkit.budget: iterations, optimizer steps, epochs, validations), its logging interval, and
what it cannot do. A run that would train nothing, or a schedule that needs validation in a run
without any, is one sentence; a run without validation trains without a best checkpoint or
early stopping, and says so in one line."""

from __future__ import annotations

import logging

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping
from omegaconf import DictConfig

from trainkit.budget import Plan, log_interval, no_validation_reason
from trainkit.callbacks.budget_table import plan_from_trainer
from trainkit.data.base import InMemoryDataModule
from trainkit.errors import ConfigError
from trainkit.summary import is_best_checkpoint
from trainkit.tensorboard_views import choice

log = logging.getLogger(__name__)


def plan_run(cfg: DictConfig, trainer: L.Trainer, datamodule: L.LightningDataModule) -> Plan:
    """The run's budget (a ConfigError for an impossible one, or one that trains nothing), its
    logging interval, and no best checkpoint or early stopping when it cannot validate."""
    if trainer.overfit_batches and isinstance(datamodule, InMemoryDataModule):
        raise ConfigError(
            "trainer.overfit_batches replaces the training loader's sampler, which trainkit's "
            "whole-batch loaders do not allow: use debug=overfit (the same first batches every "
            "epoch: trainer.limit_train_batches=N with data.shuffle=false)."
        )
    plan = plan_from_trainer(trainer, datamodule)
    if plan.iterations == 0:
        raise ConfigError(f"this run trains nothing: {nothing_to_train(trainer, plan)}.")
    trainer.log_every_n_steps = log_interval(plan)
    reason = no_validation_reason(plan)
    if reason and scheduler_needs_validation(cfg):
        raise ConfigError(
            f"scheduler={choice(cfg, 'scheduler')} steps on the validation metric, but {reason}: "
            "choose another scheduler (scheduler=cosine, step, ...) or give the run validation."
        )
    if reason:
        without_validation(trainer, reason)
    return plan


def nothing_to_train(trainer: L.Trainer, plan: Plan) -> str:
    """Why a plan has no training batch, in words a user can act on."""
    if trainer.limit_train_batches == 0:
        return "trainer.limit_train_batches=0 leaves no training batch"
    if plan.drop_last and plan.batch_size and (plan.samples_per_device or 0) < plan.batch_size:
        return (
            f"data.drop_last=true drops the only batch: {plan.samples_per_device} training "
            f"samples per device are fewer than data.batch_size={plan.batch_size}; lower "
            "data.batch_size or set data.drop_last=false"
        )
    return "the training loader gives no batch"


def scheduler_needs_validation(cfg: DictConfig) -> bool:
    target = str((cfg.get("scheduler") or {}).get("_target_", ""))
    return target.endswith("ReduceLROnPlateau")


def without_validation(trainer: L.Trainer, reason: str) -> None:
    """No validation will run: nothing to pick a best checkpoint or stop early on; the run
    trains its whole budget and is tested with its last weights. Said in one line."""
    dropped = [
        c for c in trainer.callbacks if isinstance(c, EarlyStopping) or is_best_checkpoint(c)
    ]
    if dropped:
        log.warning(
            "no validation in this run: %s; early stopping and the best checkpoint are off, "
            "and the last weights are tested",
            reason,
        )
        trainer.callbacks = [c for c in trainer.callbacks if c not in dropped]
