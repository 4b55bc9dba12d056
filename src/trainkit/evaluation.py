"""evaluate(cfg): re-test a checkpoint on a split, or write its predictions to CSV.

Nothing about the model has to be typed again: trainkit stores the run's composed config in
every checkpoint (see TrainkitModule.on_save_checkpoint), so the model class, its dimensions and
its data (same split, same seed) are rebuilt from the checkpoint alone.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from trainkit.checkpoints import KEY, check_compatible, read_checkpoint, resolve_checkpoint
from trainkit.errors import ConfigError
from trainkit.training import split_metrics

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig, path: str | None = None) -> dict[str, Any]:
    """Re-test or predict with the checkpoint `path` (default: what cfg.ckpt_path means)."""
    out_dir = Path(cfg.paths.output_dir)
    path = path or resolve_checkpoint(cfg.ckpt_path, prefer="best")
    ckpt = read_checkpoint(path)
    saved = (ckpt.get(KEY) or {}).get("config")
    if not saved:
        raise ConfigError(f"{path} was not written by trainkit (it holds no run config).")
    if cfg.split not in ("train", "val", "test"):
        raise ConfigError(f"split must be train, val or test, got {cfg.split!r}.")

    # The data: the checkpoint's (same seed, same split) unless data=... was given.
    with open_dict(cfg):
        cfg.seed = saved["seed"] if cfg.seed is None else cfg.seed
    data_cfg = cfg.data if cfg.get("data") else OmegaConf.create(saved["data"])
    if cfg.batch_size is not None:
        data_cfg = OmegaConf.merge(data_cfg, {"batch_size": cfg.batch_size})
    datamodule: L.LightningDataModule = instantiate(data_cfg)
    datamodule.prepare_data()
    datamodule.setup("test")

    # The model: its class and hyperparameters (dimensions included) from the checkpoint.
    target = saved["model"]["_target_"]
    check_compatible(ckpt, path, target, datamodule.dims)
    model = get_class(target).load_from_checkpoint(path, map_location="cpu")
    trainer: L.Trainer = instantiate(cfg.trainer)
    loader = datamodule.loader(cfg.split)

    summary: dict[str, Any] = {"checkpoint": path, "split": cfg.split, "data": data_cfg._target_}
    if cfg.predict:
        batches = trainer.predict(model, dataloaders=loader)
        csv_path = out_dir / f"predictions_{cfg.split}.csv"
        write_predictions(csv_path, torch.cat(batches), datamodule, cfg.split)
        summary.update(predictions=str(csv_path), value=math.nan)
        log.info("predictions written to %s", csv_path)
    else:
        trainer.test(model, dataloaders=loader, verbose=True)
        metrics = split_metrics(trainer.callback_metrics).get("test", {})
        summary.update(metrics={f"{cfg.split}/{k}": v for k, v in metrics.items()})
        monitor = getattr(model, "monitor", "val/loss").partition("/")[2]
        summary["value"] = metrics.get(monitor, math.nan)
    (out_dir / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def write_predictions(path: Path, outputs: torch.Tensor, datamodule, split: str) -> None:
    """One row per sample: index, target, prediction (+ one probability column per class)."""
    targets = datamodule.splits[split][-1]
    names = getattr(datamodule, "class_names", None) or None
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        if outputs.dim() == 1:  # regression: values in the target's units
            writer.writerow(["index", "target", "prediction"])
            for i, (t, p) in enumerate(zip(targets.tolist(), outputs.tolist(), strict=True)):
                writer.writerow([i, t, p])
            return
        classes = names or [str(c) for c in range(outputs.shape[1])]
        writer.writerow(["index", "target", "prediction", *(f"p_{c}" for c in classes)])
        for i, (t, probs) in enumerate(zip(targets.tolist(), outputs.tolist(), strict=True)):
            best = max(range(len(probs)), key=probs.__getitem__)
            writer.writerow([i, classes[t], classes[best], *(f"{p:.6f}" for p in probs)])
