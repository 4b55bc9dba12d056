"""evaluate(cfg): re-test a checkpoint on a split, or write its predictions to CSV.

Nothing about the model has to be typed again: every trainkit checkpoint holds the run's composed
config (see callbacks/run_state.py) and the DataModule's learned state (class names and their
order, vocabulary, normalisation). The model is rebuilt from the config, its data from the same
config (same seed, same split) and prepared with the checkpoint's learned state - so a data file
whose labels changed order is still read with the model's class map, and a label the model never
saw stops with one sentence instead of a wrong score.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig, OmegaConf

from trainkit import data_contract
from trainkit.building import build_model
from trainkit.callbacks.budget_table import format_table
from trainkit.callbacks.run_state import restore_data_state
from trainkit.checkpoints import KEY, check_compatible, read_checkpoint, resolve_checkpoint
from trainkit.code_folders import import_from
from trainkit.errors import ConfigError
from trainkit.run_files import split_metrics, write_json

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig, path: str | None = None) -> dict[str, Any]:
    """Re-test or predict with the checkpoint file `path` (default: what cfg.ckpt_path means;
    see conf/eval.yaml)."""
    out_dir = Path(cfg.paths.output_dir)
    path = path or resolve_checkpoint(cfg.ckpt_path, prefer="best")
    if cfg.split not in data_contract.SPLITS:
        raise ConfigError(f"split must be train, val or test, got {cfg.split!r}.")
    ckpt = read_checkpoint(path)
    run = OmegaConf.create(ckpt[KEY]["config"])
    import_from(ckpt[KEY].get("code_folders", []))  # your model and data, without PYTHONPATH

    # The data: the checkpoint's (same seed, same split, its learned state) unless data=... asks
    # for another dataset (of the same dimensions).
    data_cfg = cfg.data if cfg.get("data") else run.data
    # the seed and batch size, for a DataModule whose config has them (trainkit's: data/loader)
    wanted = {"seed": run.seed if cfg.seed is None else cfg.seed, "batch_size": cfg.batch_size}
    overrides = {k: v for k, v in wanted.items() if k in data_cfg and v is not None}
    datamodule: L.LightningDataModule = instantiate(OmegaConf.merge(data_cfg, overrides))
    if cfg.get("data"):  # a new test set: read as the model was trained, carved afresh
        data_contract.restore_fitted(datamodule, ckpt)
    else:  # the run's own split, rebuilt and checked against the checkpoint's record
        restore_data_state(datamodule, ckpt)
    datamodule.prepare_data()
    datamodule.setup("fit")

    model = build_model(run, datamodule)
    check_compatible(ckpt, path, run.model._target_, data_contract.dims(datamodule))
    model.on_load_checkpoint(ckpt)  # as Lightning loads a checkpoint: the hook, then the weights
    model.load_state_dict(ckpt["state_dict"])
    trainer: L.Trainer = instantiate(cfg.trainer)
    summary: dict[str, Any] = {
        "checkpoint": path,
        "split": cfg.split,
        "data": data_cfg._target_,
        "test_set": (
            "a new test set (data=... on the command line), not the run's own split"
            if cfg.get("data")
            else "the run's own split"
        ),
    }
    if cfg.predict:
        if not is_overridden("predict_step", model, L.LightningModule):
            raise ConfigError(
                f"{type(model).__name__} has no predict_step: to write predictions, add one that "
                "returns the model's output for a batch, e.g. `return self(batch[0]).softmax(-1)`."
            )
        source, loader = data_contract.predictions_source(datamodule, cfg.split)
        batches = trainer.predict(model, **source)
        targets = [data_contract.targets(batch) for batch in loader]
        target = torch.cat(targets) if all(t is not None for t in targets) else None
        csv_path = out_dir / f"predictions_{cfg.split}.csv"
        write_predictions(csv_path, torch.cat(batches), target, datamodule)
        summary.update(predictions=str(csv_path), value=None)
        log.info("predictions written to %s", csv_path)
    else:
        # through the DataModule: its batch hooks (trainkit's normalise uint8 images) apply
        stage = data_contract.serve_split(datamodule, cfg.split)
        run_stage = trainer.validate if stage == "validate" else trainer.test
        run_stage(model, datamodule=datamodule, verbose=False)
        logged = split_metrics(trainer.callback_metrics)
        metrics = logged.get("val" if stage == "validate" else "test", {})
        summary["metrics"] = {f"{cfg.split}/{k}": v for k, v in metrics.items()}
        rows = [(name, f"{value:.4f}") for name, value in summary["metrics"].items()]
        log.info("%s\n%s", path, format_table(rows, ("metric", f"{cfg.split} split")))
        monitor = run.model.get("monitor", "val/loss").partition("/")[2]
        summary["value"] = metrics.get(monitor)
    write_json(out_dir / "eval.json", summary)
    return summary


def write_predictions(
    path: Path,
    outputs: torch.Tensor,
    targets: torch.Tensor | None,
    datamodule: L.LightningDataModule,
) -> None:
    """One row per sample: index, target (when the batches have one), prediction (+ one
    probability column per class)."""
    rows = range(len(outputs)) if targets is None else targets.tolist()
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        target = [] if targets is None else ["target"]
        if outputs.dim() == 1:  # regression: values in the target's units
            if targets is not None:
                rows = data_contract.to_target_units(datamodule, targets).tolist()
            writer.writerow(["index", *target, "prediction"])
            for i, (t, p) in enumerate(zip(rows, outputs.tolist(), strict=True)):
                writer.writerow([i, *([t] if targets is not None else []), p])
            return
        classes = data_contract.class_names(datamodule)
        classes = (
            classes
            if len(classes) == outputs.shape[1]
            else [str(c) for c in range(outputs.shape[1])]
        )
        writer.writerow(["index", *target, "prediction", *(f"p_{c}" for c in classes)])
        for i, (t, probs) in enumerate(zip(rows, outputs.tolist(), strict=True)):
            best = max(range(len(probs)), key=probs.__getitem__)
            given = [classes[int(t)]] if targets is not None else []
            writer.writerow([i, *given, classes[best], *(f"{p:.6f}" for p in probs)])
