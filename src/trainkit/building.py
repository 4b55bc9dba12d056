"""How each object of a run is built from its config: the model (with the data's dimensions it
takes), the callbacks and loggers (every entry of `callbacks` and `logger`, so that Hydra's own
`+callbacks.<name>._target_=...` adds one), and the Trainer. trainkit.training wires them."""

from __future__ import annotations

import inspect
import logging
import re
from typing import Any

import lightning as L
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import Callback, Checkpoint, ModelSummary, ProgressBar
from lightning.pytorch.loggers import MLFlowLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from trainkit import data_contract
from trainkit.callbacks.monitor_guard import MonitorGuard
from trainkit.checkpoint_io import AtomicCheckpointIO
from trainkit.cli import build_error
from trainkit.config import MONITOR_KEYS
from trainkit.errors import ConfigError, TrainkitError
from trainkit.loggers import MetricsAxes
from trainkit.summary import monitor_of

log = logging.getLogger(__name__)


def build_model(cfg: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    """Instantiate cfg.model with what its __init__ accepts of the data's dimensions and of the
    optimizer/scheduler configs (a module that builds its own optimizer takes neither).

    A dimension the data provides must not be set in the model's config too (one source for
    every number); one it does not provide comes from the config or the command line
    (`+model.num_classes=10`)."""
    dims = data_contract.dims(datamodule)
    model_cfg = OmegaConf.masked_copy(cfg.model, [k for k in cfg.model if k not in MONITOR_KEYS])
    clash = sorted(set(dims) & set(model_cfg))
    if clash:
        raise ConfigError(
            f"the model config sets {clash}, which {type(datamodule).__name__} provides: remove "
            "them from conf/model/ (or from the command line)."
        )
    model_cls = _class_of("model", cfg.model._target_)
    params = inspect.signature(model_cls.__init__).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    given: dict[str, Any] = {k: v for k, v in dims.items() if k in params or takes_any}
    for group in ("optimizer", "scheduler"):
        if group in params:
            value = cfg.get(group)
            if value and value.get("_target_"):  # a typo now, not at fit's first step
                _class_of(group, value._target_)
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
        data = type(datamodule).__name__
        offers = f"it gives {sorted(dims)}" if dims else "it provides no model arguments"
        raise ConfigError(
            f"{model_cls.__name__} needs {missing}, which neither {data} provides ({offers}) "
            f"nor the model config sets: give {' '.join(f'+model.{n}=...' for n in missing)} "
            "on the command line (or in its config), or pick a dataset that provides them."
        )
    # the model's own nested configs are instantiated; the optimizer/scheduler stay plain dicts
    factory = instantiate(model_cfg, _partial_=True, _convert_="all")
    try:
        return factory(**given)
    except TrainkitError:
        raise
    except Exception as err:  # e.g. a negative layer width: name the setting, not torch's line
        raise build_error("model", err) from err


def _class_of(group: str, target: str) -> type:
    try:
        return get_class(target)
    except Exception as err:  # an import error or a typo: one sentence naming the target
        raise build_error(group, err) from err


def build_all(
    cfg: DictConfig, group: str, settings: dict[str, dict] | None = None
) -> list[tuple[str, Any]]:
    """(name, object) of every entry of `group` (callbacks, logger), in config order; an entry
    set to null is left out; `settings`: more arguments per entry (a resumed run's loggers). An
    entry that cannot be built is one sentence naming it; so is a logging service (MLflow, W&B)
    that cannot be started (no server, no login)."""
    objects = []
    for name, node in (cfg.get(group) or {}).items():
        if not node:
            continue
        try:
            extra = (settings or {}).get(name) or {}
            built = instantiate(OmegaConf.merge(node, extra) if extra else node)
            if isinstance(built, (MLFlowLogger, WandbLogger)):
                _ = built.experiment  # starts the run now, before any training
            objects.append((name, built))
        except Exception as err:
            package = missing_package(err)
            if package:
                extra = f"'.[{package}]'" if package in EXTRAS else package
                raise ConfigError(
                    f"{group}.{name} needs the {package} package, which is not installed: "
                    f"pip install {'-e ' if package in EXTRAS else ''}{extra}."
                ) from err
            if isinstance(node, DictConfig) and "WandbLogger" in str(node.get("_target_")):
                raise ConfigError(
                    f"{build_error(f'{group}.{name}', err)} Without a W&B account: "
                    "WANDB_MODE=offline python train.py logger=wandb ..."
                ) from err
            raise build_error(f"{group}.{name}", err) from err
    return objects


# optional packages that pyproject.toml has an extra for (pip install -e ".[mlflow]")
EXTRAS = ("mlflow", "wandb", "litdata")


def missing_package(err: BaseException) -> str | None:
    """The package whose absence `err` reports (Lightning's "Requirement 'wandb>=0.12.10' not
    met", or an import of a module that is not there), else None."""
    cause: BaseException | None = err
    while cause is not None:
        found = re.search(r"Requirement '([A-Za-z0-9_.-]+?)[<>=!~ ']", str(cause))
        if isinstance(cause, ModuleNotFoundError) and found:
            return found.group(1)
        if isinstance(cause, ModuleNotFoundError) and cause.name:
            return cause.name.split(".")[0] if cause.name.split(".")[0] in EXTRAS else None
        cause = cause.__cause__ or cause.__context__
    return None


def build_trainer(
    cfg: DictConfig, *extra: Callback, checkpoint: dict[str, Any] | None = None
) -> tuple[L.Trainer, list[Callback], MetricsAxes]:
    """The Trainer with the configured callbacks and loggers, `extra` callbacks, and the
    MetricsAxes that gives every logger trainkit's axes (docs/tensorboard.md). Resuming from
    `checkpoint`, the loggers write where the checkpoint's run wrote."""
    monitor, mode = monitor_of(cfg)
    axes = MetricsAxes(monitor, mode)
    callbacks = [MonitorGuard(monitor), *(c for _, c in build_all(cfg, "callbacks"))]
    where = ((checkpoint or {}).get("callbacks") or {}).get(axes.state_key, {}).get("continue")
    loggers = [axes.attach(lg, name) for name, lg in build_all(cfg, "logger", where)]
    # Lightning refuses a progress bar it cannot show; a summary turned off is off
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if not cfg.trainer.get("enable_model_summary", True):
        callbacks = [c for c in callbacks if not isinstance(c, ModelSummary)]
    callbacks += [*extra, axes]
    # objects are passed to the built Trainer, not through Hydra (which would turn the lists
    # into ListConfigs)
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
    return trainer, callbacks, axes


def record_of_run(
    cfg: DictConfig, seed: int, model: L.LightningModule, datamodule: L.LightningDataModule
) -> dict[str, Any]:
    """The composed config as this run trains: the seed it drew, and the learning rate and
    batch size the finders chose. Saved in every checkpoint, so eval.py needs nothing else."""
    record = OmegaConf.to_container(cfg, resolve=True)
    record["seed"] = seed
    batch_size = data_contract.batch_size(datamodule)
    if "batch_size" in record.get("data", {}) and batch_size is not None:
        record["data"]["batch_size"] = batch_size
    optimizer = model.hparams.get("optimizer")
    if isinstance(optimizer, dict) and record.get("optimizer"):
        record["optimizer"]["lr"] = optimizer["lr"]
    return record
