"""train(cfg): the one place where data, model, callbacks, loggers and the Trainer are wired.

Read it top to bottom: seed -> data -> model (dimensions from the data) -> callbacks, loggers,
Trainer -> fit -> test with the best checkpoint -> metrics.json and TensorBoard hparams.
"""

from __future__ import annotations

import inspect
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
from lightning.pytorch.callbacks import Callback, Checkpoint, EarlyStopping, ProgressBar
from omegaconf import DictConfig, OmegaConf

from trainkit.budget import log_interval, no_validation_reason
from trainkit.callbacks.budget_table import plan_from_trainer
from trainkit.callbacks.checkpointing import ctrl_c_kept
from trainkit.callbacks.run_state import RunState, restore_data_state
from trainkit.checkpoint_io import AtomicCheckpointIO
from trainkit.checkpoints import (
    check_compatible,
    check_not_finished,
    read_checkpoint,
    remove_stale_temp_files,
    resolve_checkpoint,
)
from trainkit.cli import build_error
from trainkit.compiling import compile_network
from trainkit.config import MONITOR_KEYS
from trainkit.data.base import InMemoryDataModule
from trainkit.distributed import install_hydra_ddp_fix
from trainkit.errors import ConfigError, TrainkitError
from trainkit.loggers import IterationTensorBoardLogger
from trainkit.run_files import split_metrics, write_metrics
from trainkit.summary import is_best_checkpoint, summarize
from trainkit.tensorboard_views import curated_hparams, trial_id
from trainkit.tuning import tune

log = logging.getLogger(__name__)

# Lightning adds its own console handler to the "lightning" logger and also propagates to the
# root logger, which Hydra has set up (console + the run's log file): every line came out twice.
if logging.getLogger().handlers:
    logging.getLogger("lightning").handlers.clear()
# Lightning 2.6 on torch >= 2.10 warns about its own use of a torch API; nothing a user can do.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
# Lightning 2.6 advertises a cloud logging service on every run.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: "litlogger" not in str(record.msg)
)

# Lightning 2.6 logs on every checkpoint load that `weights_only` was not set and it loads the
# whole pickle (its default, and what a module with any hyperparameters needs): set it; 2.5 has
# no such argument.
LOAD = (
    {"weights_only": False} if "weights_only" in inspect.signature(L.Trainer.fit).parameters else {}
)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, test, write metrics.json into the run directory, and return its contents."""
    out_dir = Path(cfg.paths.output_dir)
    install_hydra_ddp_fix()  # DDP workers run this job's command (see trainkit.distributed)

    # 1. Threads for parallel local sweeps, then seed everything (0 is a seed; null draws one,
    # recorded in metrics.json and in every checkpoint's config).
    set_threads_for_parallel_jobs()
    seed = L.seed_everything(cfg.seed, workers=True, verbose=False)
    log.info("seed %d, run directory %s", seed, out_dir)
    log.info("%s", what_trains(cfg))

    # 2. The checkpoint to resume, if any: read first, so that the data is prepared the way it
    # was for that run (its class names, vocabulary, normalisation).
    ckpt_path = resolve_checkpoint(cfg.get("ckpt_path"), "last", out_dir.parent)
    checkpoint = read_checkpoint(ckpt_path) if ckpt_path else None

    # 3. Data first: the model's dimensions come from it.
    datamodule: L.LightningDataModule = instantiate(cfg.data)
    if checkpoint is not None:
        remove_stale_temp_files(Path(ckpt_path).parent)
        restore_data_state(datamodule, checkpoint)
    datamodule.prepare_data()
    datamodule.setup("fit")

    # 4. The model, given the data's dimensions it takes; optionally Lightning's batch-size and
    # LR finders (tune.*), whose findings are used; optionally compiled.
    model = build_model(cfg, datamodule)
    if checkpoint is not None:
        check_compatible(checkpoint, ckpt_path, cfg.model._target_, datamodule.dims)
        check_not_finished(checkpoint, ckpt_path, cfg.trainer)
        if any((cfg.get("tune") or {}).get(k) for k in ("lr_find", "batch_size")):
            raise ConfigError(
                "tune.* with ckpt_path: a resumed run keeps the learning rate and batch size it "
                "was started with; drop tune.lr_find / tune.batch_size to resume."
            )
        log.info("resuming from %s", ckpt_path)
    tuned = tune(cfg, model, datamodule, out_dir)
    fitted_model = compile_network(model) if cfg.get("compile") else model

    # 5. Callbacks, loggers, Trainer; the budget (a clear sentence for an impossible one).
    run_config = record_of_run(cfg, seed, model, datamodule)
    trainer, callbacks, loggers = build_trainer(cfg, RunState(run_config))
    if trainer.overfit_batches and isinstance(datamodule, InMemoryDataModule):
        raise ConfigError(
            "trainer.overfit_batches replaces the training loader's sampler, which trainkit's "
            "whole-batch loaders do not allow: use debug=overfit (the same first batches every "
            "epoch: trainer.limit_train_batches=N with data.shuffle=false)."
        )
    plan = plan_from_trainer(trainer, datamodule)
    trainer.log_every_n_steps = log_interval(plan)
    if no_validation_reason(plan):
        without_validation(trainer, no_validation_reason(plan))

    # 6. Fit (resuming when ckpt_path is set), then test the best checkpoint.
    start = time.perf_counter()
    try:
        with ctrl_c_kept():
            trainer.fit(fitted_model, datamodule=datamodule, ckpt_path=ckpt_path, **LOAD)
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C / SIGTERM: last.ckpt is written
        write_metrics(out_dir, summarize(cfg, trainer, model, seed, ckpt_path, "interrupted"))
        raise
    fit_seconds = time.perf_counter() - start
    results = split_metrics(trainer.callback_metrics)
    fitted = summarize(cfg, trainer, model, seed, ckpt_path, "ok", results, fit_seconds, tuned)
    best = next((c for c in trainer.callbacks if is_best_checkpoint(c)), None)
    if cfg.get("test") and datamodule.split_sizes().get("test", 0) > 0:
        best_path = best.best_model_path if best else ""
        try:
            with ctrl_c_kept():
                trainer.test(
                    fitted_model, datamodule=datamodule, ckpt_path=best_path or None, **LOAD
                )
        except (KeyboardInterrupt, SystemExit):
            log.warning(
                "interrupted while testing: last.ckpt holds the final weights of fit; test the "
                "run later with: python eval.py ckpt_path=%s",
                out_dir,
            )
            write_metrics(out_dir, summarize(cfg, trainer, model, seed, ckpt_path, "interrupted"))
            raise
        results["test"] = split_metrics(trainer.callback_metrics).get("test", {})

    # 7. Record what happened (the counts as fit left them: testing the best checkpoint restores
    # the callbacks' state of that checkpoint).
    summary = {**fitted, "test": results.get("test", {})}
    if trainer.is_global_zero:
        write_metrics(out_dir, summary)
        for logger in loggers:
            if isinstance(logger, IterationTensorBoardLogger):
                logger.write_summary(curated_hparams(cfg, summary), trial_id(out_dir))
        log.info("metrics written to %s", out_dir / "metrics.json")
    return summary


def what_trains(cfg: DictConfig) -> str:
    """ "model=text on data=synthetic_text (the model's default dataset; data=... for another)"."""
    if not HydraConfig.initialized():
        return f"model {cfg.model._target_} on data {cfg.data._target_}"
    choices = HydraConfig.get().runtime.choices
    chosen = any(o.lstrip("+").startswith("data=") for o in HydraConfig.get().overrides.task)
    source = f"experiment={choices['experiment']}'s" if choices.get("experiment") else "the model's"
    why = "as chosen" if chosen else f"{source} default dataset; data=... for another"
    return f"model={choices.get('model')} on data={choices.get('data')} ({why})"


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
    """Instantiate cfg.model with what its __init__ accepts of the data's dimensions and of the
    optimizer/scheduler configs (a module that builds its own optimizer takes neither)."""
    dims = datamodule.dims
    model_cfg = OmegaConf.masked_copy(cfg.model, [k for k in cfg.model if k not in MONITOR_KEYS])
    clash = sorted(set(dims) & set(model_cfg))
    if clash:
        raise ConfigError(
            f"the model config sets {clash}, which come from the data; remove them from "
            "conf/model/ (or from the command line)."
        )
    model_cls = get_class(cfg.model._target_)
    params = inspect.signature(model_cls.__init__).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    given: dict[str, Any] = {k: v for k, v in dims.items() if k in params or takes_any}
    for group in ("optimizer", "scheduler"):
        if group in params:
            value = cfg.get(group)
            given[group] = OmegaConf.to_container(value, resolve=True) if value else None
    if "optimizer" not in params:
        log.info(
            "%s builds its own optimizer (its __init__ takes no `optimizer`): the optimizer "
            "and scheduler configs are not used",
            model_cls.__name__,
        )
    required = [
        n
        for n, p in list(params.items())[1:]
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    missing = [n for n in required if n not in given and n not in model_cfg]
    if missing:
        raise ConfigError(
            f"{model_cls.__name__} needs {missing}, which neither {type(datamodule).__name__} "
            f"provides (it gives {sorted(dims)}) nor the model config sets: pick a matching "
            "pair (e.g. model=text with a text dataset) or set them in the model's config."
        )
    # the model's own nested configs are instantiated; the optimizer/scheduler stay plain dicts
    factory = instantiate(model_cfg, _partial_=True, _convert_="all")
    try:
        return factory(**given)
    except TrainkitError:
        raise
    except Exception as err:  # e.g. a negative layer width: name the setting, not torch's line
        raise build_error("model", err) from err


def record_of_run(
    cfg: DictConfig, seed: int, model: L.LightningModule, datamodule: L.LightningDataModule
) -> dict[str, Any]:
    """The composed config as this run trains: the seed it drew, and the learning rate and
    batch size the finders chose. Saved in every checkpoint, so eval.py needs nothing else."""
    record = OmegaConf.to_container(cfg, resolve=True)
    record["seed"] = seed
    if "batch_size" in record.get("data", {}):
        record["data"]["batch_size"] = datamodule.batch_size
    optimizer = model.hparams.get("optimizer")
    if isinstance(optimizer, dict) and record.get("optimizer"):
        record["optimizer"]["lr"] = optimizer["lr"]
    return record


def build_trainer(cfg: DictConfig, *extra: Callback) -> tuple[L.Trainer, list, list]:
    """The Trainer with the configured callbacks and loggers (plus `extra` callbacks)."""
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    # Lightning refuses a progress bar it cannot show
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    # trainkit's TensorBoard logger is also a callback: its hooks tell it where the run is
    callbacks += [*extra, *(lg for lg in loggers if isinstance(lg, Callback))]
    # objects are passed to the built Trainer, not through Hydra (which would turn the lists
    # into ListConfigs that Lightning 2.4 refuses)
    make_trainer = instantiate(cfg.trainer, _partial_=True, _convert_="all")
    try:
        trainer: L.Trainer = make_trainer(
            callbacks=callbacks,
            logger=loggers or False,
            enable_checkpointing=any(isinstance(c, Checkpoint) for c in callbacks),
            plugins=[AtomicCheckpointIO(background=cfg.get("checkpoint_in_background", True))],
        )
    except Exception as err:  # Lightning's refusal (no GPU, a bad value): name the setting
        raise build_error("trainer", err) from err
    return trainer, callbacks, loggers


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


def optimized_value(summary: dict[str, Any], metric: str) -> float:
    """The value a sweeper optimises: the best checkpoint's score when it monitors `metric`,
    else the final value of `metric` ("val/acc", "test/loss", ...); NaN if absent."""
    if summary.get("monitor") == metric and summary.get("best_score") is not None:
        return float(summary["best_score"])
    stage, _, name = metric.partition("/")
    return float(summary.get(stage, {}).get(name, math.nan))
