"""What metrics.json records about a run: its outcome, the counts of the budget, the best and
last checkpoints, what the finders chose and what the model and the data report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig

from trainkit import data_contract
from trainkit.callbacks.budget_table import BudgetTable, actual_counts
from trainkit.callbacks.checkpointing import LastCheckpoint
from trainkit.run_files import split_metrics


def is_best_checkpoint(callback: Any) -> bool:
    return isinstance(callback, ModelCheckpoint) and callback.monitor is not None


def summarize(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: L.LightningModule,
    seed: int,
    resumed_from: str | None,
    status: str,
    results: dict[str, dict[str, float]] | None = None,
    fit_seconds: float | None = None,
    tuned: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What metrics.json records about the run."""
    results = results if results is not None else split_metrics(trainer.callback_metrics)
    budget = next((c for c in trainer.callbacks if isinstance(c, BudgetTable)), None)
    best = next((c for c in trainer.callbacks if is_best_checkpoint(c)), None)
    last = next((c for c in trainer.callbacks if isinstance(c, LastCheckpoint)), None)
    counts = actual_counts(trainer, budget.validations if budget else None)
    samples = budget.samples_seen * trainer.world_size if budget else None  # equal shards
    monitor, mode = monitor_of(cfg)
    score = best.best_model_score if best else None
    fit_seconds = round(fit_seconds, 3) if fit_seconds else None
    return {
        "status": status,
        "model": cfg.model._target_,
        "data": cfg.data._target_,
        "seed": seed,
        "run_dir": str(cfg.paths.output_dir),
        "overrides": list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else [],
        "resumed_from": resumed_from,
        "train": results.get("train", {}),
        "val": results.get("val", {}),
        "test": results.get("test", {}),
        "monitor": monitor,
        "monitor_mode": mode,
        "best_score": None if score is None else float(score),
        "best_model_path": best.best_model_path if best else "",
        "last_model_path": str(last.path) if last and last.path.is_file() else "",
        "global_step": trainer.global_step,
        **counts,
        "fit_seconds": fit_seconds,
        "train_samples_seen": samples,
        "train_samples_per_second": round(samples / fit_seconds, 1)
        if samples and fit_seconds
        else None,
        "plan": budget.plan.as_dict() if budget and budget.plan else None,
        "tuned": tuned or {},
        "tensorboard": tensorboard_folder(trainer),
        "model_report": data_contract.model_report(model),
        "data_report": data_contract.data_report(trainer.datamodule),
    }


def tensorboard_folder(trainer: L.Trainer) -> str | None:
    """Where the run's TensorBoard curves are (logs/tensorboard/<task>/<run name>)."""
    folders = [lg.log_dir for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
    return str(Path(folders[0]).resolve()) if folders else None


def monitor_of(cfg: DictConfig) -> tuple[str, str]:
    """The metric the best checkpoint, early stopping and sweeps watch, and its direction: the
    model config's `monitor` / `monitor_mode` (default val/loss, min)."""
    return cfg.model.get("monitor", "val/loss"), cfg.model.get("monitor_mode", "min")
