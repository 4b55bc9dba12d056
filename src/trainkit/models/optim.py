"""Optimizer and learning-rate schedule from trainkit's config groups (conf/optimizer/,
conf/scheduler/), for a LightningModule's `configure_optimizers`.

Optional: a module that builds its own optimizer (`return torch.optim.Adam(...)`) needs none of
this. trainkit's models take the two configs as plain dicts, which keeps them readable in
hparams.yaml and loadable from a checkpoint with `weights_only=True`:

    optimizer = {"_target_": "torch.optim.Adam", "lr": 1e-3, "weight_decay": 0.0}
    scheduler = {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "T_max": "total_steps",
                 "interval": "step"}
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from hydra.utils import get_class

# Keys of a scheduler config that are Lightning's (its lr_scheduler dict), not the scheduler's.
LIGHTNING_KEYS = ("interval", "frequency", "monitor")
# A scheduler argument with this value gets the run's number of optimizer steps (known at fit).
TOTAL_STEPS = "total_steps"


def configure_optimizers(
    module: L.LightningModule, optimizer: dict[str, Any], scheduler: dict[str, Any] | None = None
) -> Any:
    """What `configure_optimizers` returns for these configs: the optimizer over all of the
    module's parameters, with its schedule in Lightning's lr_scheduler format when there is one.

    OneCycleLR's `max_lr` is the optimizer's `lr` (so the LR finder's suggestion applies to it);
    ReduceLROnPlateau watches `monitor` (default val/loss) after every validation.
    """
    kwargs = {k: v for k, v in optimizer.items() if k != "_target_"}
    opt = get_class(optimizer["_target_"])(module.parameters(), **kwargs)
    if not scheduler:
        return opt
    kwargs = {k: v for k, v in scheduler.items() if k != "_target_" and k not in LIGHTNING_KEYS}
    cls = get_class(scheduler["_target_"])
    for key, value in kwargs.items():
        if value == TOTAL_STEPS:
            kwargs[key] = int(module.trainer.estimated_stepping_batches)
    if cls is torch.optim.lr_scheduler.OneCycleLR:
        kwargs["max_lr"] = optimizer["lr"]
    config = {
        "scheduler": cls(opt, **kwargs),
        "interval": scheduler.get("interval", "epoch"),
        "frequency": scheduler.get("frequency", 1),
    }
    if cls is torch.optim.lr_scheduler.ReduceLROnPlateau:
        config["monitor"] = scheduler.get("monitor", "val/loss")
    return {"optimizer": opt, "lr_scheduler": config}
