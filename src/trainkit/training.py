"""train(cfg): the one place where data, model, callbacks, loggers and the Trainer are wired.

Read it top to bottom: seed -> data -> model (dimensions from the data) -> callbacks, loggers,
Trainer -> fit -> test with the best checkpoint -> metrics.json and TensorBoard hparams.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ProgressBar
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf, open_dict

from trainkit import fast_hooks
from trainkit.callbacks.budget import IterationBudget, actual_counts, plan_from_trainer
from trainkit.checkpoint_io import AtomicCheckpointIO
from trainkit.checkpoints import check_compatible, read_checkpoint, resolve_checkpoint
from trainkit.distributed import install_hydra_ddp_fix
from trainkit.errors import ConfigError
from trainkit.profiler import NullProfiler
from trainkit.tuning import tune

log = logging.getLogger(__name__)

# Lightning adds its own console handler to the "lightning" logger and also propagates to the
# root logger, which Hydra has set up (console + the run's log file): every line came out twice.
if logging.getLogger().handlers:
    logging.getLogger("lightning").handlers.clear()
# Lightning 2.6 on torch >= 2.10 warns about its own use of a torch API; nothing a user can do.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, test, write metrics.json into the run directory, and return its contents."""
    out_dir = Path(cfg.paths.output_dir)
    install_hydra_ddp_fix()  # DDP workers run this job's command (see trainkit.distributed)

    # 1. Threads for parallel local sweeps, then seed everything (0 is a seed; null draws one,
    # recorded in metrics.json).
    set_threads_for_parallel_jobs()
    with open_dict(cfg):
        cfg.seed = L.seed_everything(cfg.seed, workers=True, verbose=False)
    log.info("seed %d, run directory %s", cfg.seed, out_dir)

    # 2. Data first: the model's dimensions come from it.
    datamodule: L.LightningDataModule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")

    # 3. The model, built with the data's dimensions (input shape, classes, vocabulary size);
    # optionally Lightning's batch-size and LR finders (tune.*), whose findings are used.
    model = build_model(cfg, datamodule)
    tuned = tune(cfg, model, datamodule, out_dir)
    with open_dict(cfg):
        cfg.optimizer.lr = model.lr
        cfg.data.batch_size = datamodule.batch_size
    model.run_config = OmegaConf.to_container(cfg, resolve=True)  # saved in every checkpoint

    # 4. Callbacks, loggers, Trainer.
    trainer, callbacks, loggers = build_trainer(cfg)

    # 5. Check the budget (a clear sentence instead of Lightning's traceback for an impossible
    # validation interval), fit (resuming when ckpt_path is set), then test the best checkpoint.
    plan_from_trainer(trainer, datamodule)
    ckpt_path = resolve_checkpoint(cfg.get("ckpt_path"), "last", out_dir.parent)
    if ckpt_path:
        check_compatible(read_checkpoint(ckpt_path), ckpt_path, cfg.model._target_, datamodule.dims)
        log.info("resuming from %s", ckpt_path)
    best_ckpt, last = checkpoint_callbacks(callbacks)
    if last is not None and HydraConfig.initialized():
        overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith("ckpt_path=")]
        last.resume_hint = " ".join(["python train.py", *overrides, f"ckpt_path={out_dir}"])
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    fit_seconds = time.perf_counter() - start
    results = split_metrics(trainer.callback_metrics)

    best = best_ckpt.best_model_path if best_ckpt else ""
    if cfg.get("test") and datamodule.split_sizes().get("test", 0) > 0 and not trainer.interrupted:
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=True)
        results["test"] = split_metrics(trainer.callback_metrics).get("test", {})

    # 6. Record what happened.
    summary = summarize(cfg, trainer, model, callbacks, results, fit_seconds)
    summary["tuned"] = tuned
    summary["resumed_from"] = ckpt_path
    if trainer.is_global_zero:
        (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        log_hparams(loggers, cfg, summary)
        log.info("metrics written to %s", out_dir / "metrics.json")
    return summary


def set_threads_for_parallel_jobs() -> None:
    """Under hydra/launcher=joblib, share the cores between the jobs running at once: each
    torch would otherwise use every core, and n jobs x n threads on n cores thrash."""
    if not HydraConfig.initialized():
        return
    launcher = HydraConfig.get().launcher
    if "joblib" not in str(launcher.get("_target_", "")):
        return
    cores = os.cpu_count() or 1
    n_jobs = launcher.get("n_jobs", -1)
    n_jobs = cores if n_jobs is None or n_jobs < 1 else min(n_jobs, cores)
    torch.set_num_threads(max(1, cores // n_jobs))
    log.info(
        "joblib launcher: %d jobs at once, %d torch threads each", n_jobs, torch.get_num_threads()
    )


def build_model(cfg: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    """Instantiate cfg.model with the data's dimensions and the optimizer/scheduler configs."""
    dims = datamodule.dims
    clash = sorted(set(dims) & set(cfg.model))
    if clash:
        raise ConfigError(
            f"model config sets {clash}, which come from the data; remove them from conf/model/."
        )
    model_cls = get_class(cfg.model._target_)
    params = inspect.signature(model_cls.__init__).parameters
    needed = [
        n for n, p in params.items() if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    missing = [n for n in needed[1:] if n not in dims and n not in ("optimizer",)]
    if missing:
        raise ConfigError(
            f"{model_cls.__name__} needs {missing} from the data, but {type(datamodule).__name__} "
            f"provides {sorted(dims)}: pick a matching pair (e.g. model=text with a text dataset)."
        )
    scheduler = (
        OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None
    )
    return instantiate(
        cfg.model,
        **dims,
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=scheduler or None,
        _recursive_=False,  # the optimizer/scheduler configs are built in configure_optimizers
        _convert_="all",
    )


def build_trainer(cfg: DictConfig) -> tuple[L.Trainer, list, list]:
    """The Trainer with the configured callbacks and loggers (TensorBoard bound to the Trainer)."""
    fast_hooks.install()
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    # Lightning refuses a progress bar it cannot show and an LR monitor with nowhere to write.
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if not loggers:
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        profiler=cfg.trainer.get("profiler") or NullProfiler(),
        plugins=[AtomicCheckpointIO(background=cfg.get("checkpoint_in_background", True))],
    )
    for logger in loggers:
        if hasattr(logger, "bind"):
            logger.bind(trainer)
    return trainer, callbacks, loggers


def checkpoint_callbacks(callbacks: list) -> tuple[ModelCheckpoint | None, ModelCheckpoint | None]:
    """(the one keeping the best checkpoint by a monitored metric, the one keeping the latest)."""
    ckpts = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
    best = next((c for c in ckpts if c.monitor is not None), None)
    last = next((c for c in ckpts if c.monitor is None), None)
    return best, last


def split_metrics(metrics: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """{"train/loss_epoch": t, "val/acc": t} -> {"train": {"loss": ...}, "val": {"acc": ...}}."""
    out: dict[str, dict[str, float]] = {}
    for key, value in sorted(metrics.items()):
        stage, _, name = key.partition("/")
        if not name or name.endswith("_step"):
            continue
        out.setdefault(stage, {})[name.removesuffix("_epoch")] = float(value)
    return out


def summarize(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: L.LightningModule,
    callbacks: list,
    results: dict[str, dict[str, float]],
    fit_seconds: float,
) -> dict[str, Any]:
    budget = next((c for c in callbacks if isinstance(c, IterationBudget)), None)
    checkpoint, last = checkpoint_callbacks(callbacks)
    counts = budget.actual if budget and budget.actual else actual_counts(trainer, 0)
    best_score = checkpoint.best_model_score if checkpoint else None
    # every process trains on an equal (padded) shard: this process's count x the processes
    samples = getattr(model, "samples_seen", 0) * trainer.world_size
    return {
        "status": "interrupted" if trainer.interrupted else "ok",
        "model": cfg.model._target_,
        "data": cfg.data._target_,
        "seed": int(cfg.seed),
        "run_dir": str(cfg.paths.output_dir),
        "overrides": list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else [],
        "train": results.get("train", {}),
        "val": results.get("val", {}),
        "test": results.get("test", {}),
        "monitor": getattr(model, "monitor", None),
        "best_score": None if best_score is None else float(best_score),
        "best_model_path": checkpoint.best_model_path if checkpoint else "",
        "last_model_path": str(last.path) if last and last.path.is_file() else "",
        "global_step": trainer.global_step,
        "epochs": counts["epochs"],
        "iterations": counts["iterations"],
        "validations": counts["validations"] if budget else None,
        "fit_seconds": round(fit_seconds, 3),
        "train_samples_seen": samples,
        "train_samples_per_second": round(samples / fit_seconds, 1) if fit_seconds > 0 else None,
        "plan": budget.plan.as_dict() if budget and budget.plan else None,
        "model_report": model.final_report() if hasattr(model, "final_report") else {},
    }


def optimized_value(summary: dict[str, Any], metric: str) -> float:
    """The value a sweeper optimises: the best checkpoint's score when it monitors `metric`,
    else the final value of `metric` ("val/acc", "test/loss", ...); NaN if absent."""
    if summary.get("monitor") == metric and summary.get("best_score") is not None:
        return float(summary["best_score"])
    stage, _, name = metric.partition("/")
    return float(summary.get(stage, {}).get(name, math.nan))


def log_hparams(loggers: list, cfg: DictConfig, summary: dict[str, Any]) -> None:
    """TensorBoard's HParams tab: the run's settings with its final metrics (no -1 placeholder)."""
    groups = ("model", "data", "optimizer", "scheduler", "trainer")
    params = {g: OmegaConf.to_container(cfg[g], resolve=True) for g in groups if cfg.get(g)}
    params["seed"] = summary["seed"]
    metrics = {
        f"hparams/{stage}_{name}": value
        for stage in ("train", "val", "test")
        for name, value in summary[stage].items()
    }
    if summary["best_score"] is not None:
        metrics["hparams/best_score"] = summary["best_score"]
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            # nested: Lightning flattens them ("model/hidden") and turns lists into strings
            logger.log_hyperparams(params, metrics)
            logger.save()  # flushes the event file
            # Lightning's save() writes hparams.yaml only if it does not exist yet, and the end of
            # fit already wrote it (empty: the model logs no hparams, see save_hyperparameters)
            save_hparams_to_yaml(Path(logger.log_dir) / logger.NAME_HPARAMS_FILE, logger.hparams)
