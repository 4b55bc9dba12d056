"""Lightning's LR finder and batch-size finder, run before fit (`tune.lr_find=true`,
`tune.batch_size=true`) on a separate, silent Trainer so that the real run's callbacks, logs and
checkpoints see only the real run."""

from __future__ import annotations

import logging
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
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=[],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(out_dir / "tuning"),
    )
    if t.get("batch_size") and trainer.world_size > 1:
        raise ConfigError("tune.batch_size=true does not work with several devices; tune on one.")
    tuner, found = Tuner(trainer), {}
    if t.get("batch_size"):
        found["batch_size"] = tuner.scale_batch_size(
            model,
            datamodule=datamodule,
            mode=t.get("batch_size_mode", "power"),
            max_trials=t.get("batch_size_max_trials", 10),
        )
        log.info("batch-size finder: data.batch_size = %d", found["batch_size"])
    if t.get("lr_find"):
        finder = tuner.lr_find(
            model,
            datamodule=datamodule,
            min_lr=t.get("min_lr", 1e-6),
            max_lr=t.get("max_lr", 1.0),
            num_training=t.get("num_training", 100),
            update_attr=True,
            attr_name="lr",
        )
        suggestion = finder.suggestion() if finder else None
        if suggestion is None:
            raise ConfigError(
                "the LR finder could not suggest a learning rate (too few points before the loss "
                "diverged): lower tune.max_lr or raise tune.num_training, or set optimizer.lr."
            )
        figure = finder.plot(suggest=True)
        figure.savefig(out_dir / "lr_find.png", dpi=100)
        found.update(lr=float(suggestion), lr_find_plot=str(out_dir / "lr_find.png"))
        log.info("LR finder: optimizer.lr = %.3g (plot: %s)", suggestion, out_dir / "lr_find.png")
    return found
