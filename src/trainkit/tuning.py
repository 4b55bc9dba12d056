"""Lightning's LR finder and batch-size finder, run before fit (`tune.lr_find=true`,
`tune.batch_size=true`) on a separate, silent Trainer, so that the real run's callbacks, logs and
checkpoints see only the real run. Their findings are used, printed beside the configured value,
and recorded in metrics.json ("tuned").

- The batch size is the largest power of two that fits in memory, but at most
  `tune.max_batch_fraction` of the training samples: a batch of the whole (small) dataset fits
  in any memory and leaves a couple of optimizer steps per epoch.
- The LR range test always runs its `tune.num_training` iterations: its Trainer has no epoch or
  batch limits of the run (a 1-epoch run no longer cuts the test short).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.tuner import Tuner
from omegaconf import DictConfig

from trainkit.errors import ConfigError

log = logging.getLogger(__name__)


def tune(
    cfg: DictConfig, model: L.LightningModule, datamodule: L.LightningDataModule, out_dir: Path
) -> dict[str, Any]:
    """Run the finders asked for in cfg.tune; apply and return what they found."""
    t = cfg.get("tune") or {}
    if not (t.get("lr_find") or t.get("batch_size")):
        return {}
    make_trainer = instantiate(cfg.trainer, _partial_=True, _convert_="all")
    trainer: L.Trainer = make_trainer(
        callbacks=[],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(out_dir / "tuning"),
        max_epochs=-1,
        max_steps=-1,
        max_time=None,
        limit_train_batches=None,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        val_check_interval=1.0,
        check_val_every_n_epoch=1,
    )
    if trainer.world_size > 1:
        raise ConfigError("tune.* runs on one device: tune without DDP, then train with it.")
    tuner, found = Tuner(trainer), {}
    if t.get("batch_size"):
        found["batch_size"] = find_batch_size(tuner, model, datamodule, t)
    if t.get("lr_find"):
        found.update(find_lr(tuner, model, datamodule, t, out_dir))
    return found


def find_batch_size(tuner: Tuner, model, datamodule, t: DictConfig) -> int:
    configured = datamodule.batch_size
    n = datamodule.num_train_samples
    fraction = t.get("max_batch_fraction", 0.1)
    cap = max(1, int(n * fraction))
    target = 2 ** int(math.log2(cap))  # the largest power of two within the cap
    init = min(2, target)
    # trials from init up to target, each doubling; Lightning before 2.6 returns the size after
    # the last trial untested, hence the min() below
    trials = int(math.log2(target // init)) + 1
    found = tuner.scale_batch_size(
        model, datamodule=datamodule, mode="power", init_val=init, max_trials=trials
    )
    found = min(found or init, target)
    datamodule.batch_size = found
    log.info(
        "batch-size finder: data.batch_size = %d (configured: %d): the largest power of two that "
        "fits in memory, at most tune.max_batch_fraction=%g of the %d training samples (%d); "
        "%d iterations per epoch",
        found,
        configured,
        fraction,
        n,
        target,
        math.ceil(n / found),
    )
    return found


def find_lr(tuner: Tuner, model, datamodule, t: DictConfig, out_dir: Path) -> dict[str, Any]:
    finder = tuner.lr_find(
        model,
        datamodule=datamodule,
        min_lr=t.get("min_lr", 1e-6),
        max_lr=t.get("max_lr", 1.0),
        num_training=t.get("num_training", 100),
        update_attr=False,
    )
    suggestion = finder.suggestion() if finder else None
    if suggestion is None:
        raise ConfigError(
            "the LR finder could not suggest a learning rate (too few points before the loss "
            "diverged): lower tune.max_lr or raise tune.num_training, or set optimizer.lr."
        )
    configured = set_lr(model, float(suggestion))
    figure = finder.plot(suggest=True)
    figure.savefig(out_dir / "lr_find.png", dpi=100)
    log.info(
        "LR finder: optimizer.lr = %.3g (configured: %s; %s), the steepest fall of the loss "
        "in a %d-iteration range test from %g to %g (plot: %s)",
        suggestion,
        f"{configured:.3g}" if configured is not None else "none",
        f"{suggestion / configured:.2g}x" if configured else "no configured value",
        len(finder.results.get("lr", [])),
        t.get("min_lr", 1e-6),
        t.get("max_lr", 1.0),
        out_dir / "lr_find.png",
    )
    return {
        "lr": float(suggestion),
        "lr_configured": configured,
        "lr_range_test_iterations": len(finder.results.get("lr", [])),
        "lr_find_plot": str(out_dir / "lr_find.png"),
    }


def set_lr(model: L.LightningModule, lr: float) -> float | None:
    """Give the model the learning rate `lr`; return the one it had. trainkit's models keep it in
    their optimizer config; a module of your own in an `lr` or `learning_rate` hyperparameter."""
    hparams = model.hparams
    optimizer = hparams.get("optimizer")
    if isinstance(optimizer, dict) and "lr" in optimizer:
        configured, optimizer["lr"] = optimizer["lr"], lr
        return configured
    for name in ("lr", "learning_rate"):
        if name in hparams:
            configured, hparams[name] = hparams[name], lr
            return configured
        if hasattr(model, name):
            configured = getattr(model, name)
            setattr(model, name, lr)
            return configured
    raise ConfigError(
        f"{type(model).__name__} has no learning rate the LR finder can set: give its __init__ an "
        "`lr` argument (saved with self.save_hyperparameters()) and use it in configure_optimizers."
    )
