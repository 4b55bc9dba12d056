"""train(cfg): the one place where data, model, callbacks, loggers and the Trainer are wired.

Read it top to bottom: seed -> data -> model (dimensions from the data) -> callbacks, loggers,
Trainer -> fit -> test with the best checkpoint -> metrics.json and what each logger keeps of
the run. How each object is built from its config is in trainkit.building.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
import secrets
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from trainkit import data_contract
from trainkit.building import build_model, build_trainer, record_of_run
from trainkit.callbacks.checkpointing import ctrl_c_kept
from trainkit.callbacks.run_state import RunState, restore_data_state
from trainkit.checkpoints import (
    check_compatible,
    check_not_finished,
    check_same_network,
    check_same_optimizer,
    read_checkpoint,
    remove_stale_temp_files,
    resolve_checkpoint,
)
from trainkit.compiling import compile_network
from trainkit.distributed import install_hydra_ddp_fix
from trainkit.errors import ConfigError
from trainkit.loggers import MetricsAxes
from trainkit.planning import plan_run
from trainkit.pruning import OptunaPruning
from trainkit.run_files import split_metrics, write_metrics
from trainkit.summary import is_best_checkpoint, summarize
from trainkit.tensorboard_views import curated_hparams
from trainkit.tuning import tune

log = logging.getLogger(__name__)

# Lightning adds its own console handler to the "lightning" logger and also propagates to the
# root logger, which Hydra has set up (console + the run's log file): every line came out twice.
if logging.getLogger().handlers:
    logging.getLogger("lightning").handlers.clear()
# Lightning 2.6 on torch >= 2.10 warns about its own use of a torch API; nothing a user can do.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
# Lightning 2.6 advertises a cloud logging service on every run, and says on every run that it
# uses conf/callbacks' ModelSummary instead of adding its own (what trainer.enable_model_summary
# asks of it).
NOISE = ("litlogger", "Skipping setting a default `ModelSummary`")
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: not any(text in str(record.msg) for text in NOISE)
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

    # 1. Threads for parallel local sweeps, then seed everything (0 is a seed; null draws one).
    set_threads_for_parallel_jobs()
    seed = seed_run(cfg)
    log.info("seed %d, run directory %s", seed, out_dir)
    log.info("%s", what_trains(cfg))

    # 2. The checkpoint to resume, if any: read first, so that the data is prepared the way it
    # was for that run (its class names, vocabulary, normalisation, splits).
    ckpt_path = resolve_checkpoint(cfg.get("ckpt_path"), "last", out_dir.parent)
    checkpoint = read_checkpoint(ckpt_path) if ckpt_path else None

    # 3. Data first: the model's dimensions come from it (any LightningDataModule).
    datamodule = prepare_data(cfg, checkpoint, ckpt_path)

    # 4. The model, given the data's dimensions it takes; optionally Lightning's batch-size and
    # LR finders (tune.*), whose findings are used; optionally compiled.
    model = build_model(cfg, datamodule)
    if checkpoint is not None:
        check_resume(cfg, checkpoint, ckpt_path, datamodule, model)
    tuned = tune(cfg, model, datamodule, out_dir)
    fitted_model = compile_network(model) if cfg.get("compile") else model

    # 5. Callbacks, loggers, Trainer; the budget (a clear sentence for an impossible one).
    run_state = RunState(record_of_run(cfg, seed, model, datamodule))
    trainer, _, axes = build_trainer(cfg, run_state, checkpoint=checkpoint)
    plan_run(cfg, trainer, datamodule)

    # 6. Fit (resuming when ckpt_path is set), then test the best checkpoint.
    def record(status: str, **more: Any) -> dict[str, Any]:
        summary = summarize(cfg, trainer, model, seed, ckpt_path, status, **more)
        write_metrics(out_dir, summary)
        return summary

    start = time.perf_counter()
    with ctrl_c_kept(), interrupted_run(record, "fit"):
        trainer.fit(fitted_model, datamodule=datamodule, ckpt_path=ckpt_path, **LOAD)
    fit_seconds = time.perf_counter() - start
    results = split_metrics(trainer.callback_metrics)
    # a run its Optuna trial's pruner stopped (trainkit.pruning) is recorded so, and not tested
    pruned = any(isinstance(c, OptunaPruning) and c.pruned for c in trainer.callbacks)
    status = "pruned" if pruned else "ok"
    fitted = summarize(cfg, trainer, model, seed, ckpt_path, status, results, fit_seconds, tuned)
    if cfg.get("test") and not pruned and data_contract.has_split(datamodule, "test"):
        best = next((c for c in trainer.callbacks if is_best_checkpoint(c)), None)
        best_path = (best.best_model_path if best else "") or None
        with ctrl_c_kept(), interrupted_run(record, "test", out_dir):
            trainer.test(fitted_model, datamodule=datamodule, ckpt_path=best_path, **LOAD)
        results["test"] = split_metrics(trainer.callback_metrics).get("test", {})

    # 7. Record what happened (the counts as fit left them: testing the best checkpoint restores
    # the callbacks' state of that checkpoint), in metrics.json and in every logger.
    summary = {**fitted, "test": results.get("test", {})}
    if trainer.is_global_zero:
        write_metrics(out_dir, summary)
        record_in_loggers(axes, cfg, summary)
        log.info("metrics written to %s", out_dir / "metrics.json")
    return summary


def seed_run(cfg: DictConfig) -> int:
    """Seed torch, numpy and Python (and the DataLoader workers). `seed=null` draws a seed and
    puts it into the config, so that the data's split, metrics.json and every checkpoint use and
    record it; a DDP worker takes the one its main process drew (Lightning passes it on in
    PL_GLOBAL_SEED)."""
    seed = cfg.seed
    if seed is None:
        worker = os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"
        inherited = os.environ.get("PL_GLOBAL_SEED") if worker else None
        seed = int(inherited) if inherited else secrets.randbelow(2**32)
        with open_dict(cfg):
            cfg.seed = seed
        log.info("seed=null: drew seed %d (repeat this run with seed=%d)", seed, seed)
    return L.seed_everything(seed, workers=True, verbose=False)


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


def prepare_data(
    cfg: DictConfig, checkpoint: dict[str, Any] | None, ckpt_path: str | None
) -> L.LightningDataModule:
    """The DataModule, set up for fit: with a checkpoint's state first (trainkit's DataModules
    then prepare the data as that run did, or say what changed)."""
    datamodule: L.LightningDataModule = instantiate(cfg.data)
    if checkpoint is not None:
        remove_stale_temp_files(Path(ckpt_path).parent)
        restore_data_state(datamodule, checkpoint)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def check_resume(
    cfg: DictConfig,
    checkpoint: dict[str, Any],
    ckpt_path: str,
    datamodule: L.LightningDataModule,
    model: L.LightningModule,
) -> None:
    """A checkpoint of this model and data, with something left to train, and no finder."""
    check_compatible(checkpoint, ckpt_path, cfg.model._target_, data_contract.dims(datamodule))
    check_same_network(checkpoint, ckpt_path, model.state_dict())
    if "optimizer" in model.hparams:  # a model that takes conf/optimizer/ and conf/scheduler/
        targets = {g: OmegaConf.select(cfg, f"{g}._target_") for g in ("optimizer", "scheduler")}
        check_same_optimizer(checkpoint, ckpt_path, targets)
    check_not_finished(checkpoint, ckpt_path, cfg.trainer)
    if any((cfg.get("tune") or {}).get(k) for k in ("lr_find", "batch_size")):
        raise ConfigError(
            "tune.* with ckpt_path: a resumed run keeps the learning rate and batch size it "
            "was started with; drop tune.lr_find / tune.batch_size to resume."
        )
    log.info("resuming from %s", ckpt_path)


@contextlib.contextmanager
def interrupted_run(record: Any, phase: str, run_dir: Path | None = None) -> Iterator[None]:
    """Around fit or test: on Ctrl-C or SIGTERM, metrics.json says "interrupted" (last.ckpt was
    written by LastCheckpoint); while testing, one line says how to test the run later. The
    interrupt goes on: the process exits non-zero."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        if phase == "test":
            log.warning(
                "interrupted while testing: last.ckpt holds the final weights of fit; test the "
                "run later with: python eval.py ckpt_path=%s",
                run_dir,
            )
        record("interrupted")
        raise


def record_in_loggers(axes: MetricsAxes, cfg: DictConfig, summary: dict) -> None:
    """The run's settings and outcome, in every logger (TensorBoard: its HParams table)."""
    axes.record_run(curated_hparams(cfg, summary), summary)


def optimized_value(summary: dict[str, Any], metric: str) -> float:
    """The value a sweeper optimises: the best checkpoint's score when it monitors `metric`,
    else the final value of `metric` ("val/acc", "test/loss", ...); NaN if absent."""
    if summary.get("monitor") == metric and summary.get("best_score") is not None:
        return float(summary["best_score"])
    stage, _, name = metric.partition("/")
    return float(summary.get(stage, {}).get(name, math.nan))
