"""What every trainkit LightningModule shares: optimizer and LR schedule from config, optional
torch.compile, and the step/epoch metric logging convention.

A model subclass builds its network in `__init__` (from the dimensions the DataModule hands it),
calls `self.save_hyperparameters(logger=False)` and implements `forward` and `compute_loss`.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from hydra.utils import get_class
from torch import nn

from trainkit.checkpoints import KEY as CHECKPOINT_KEY
from trainkit.errors import ConfigError

# Scheduler config keys that are Lightning's, not the scheduler's.
_LIGHTNING_KEYS = ("interval", "frequency", "monitor")


class TrainkitModule(L.LightningModule):
    """Base LightningModule: configure_optimizers from `optimizer` / `scheduler` dicts."""

    def __init__(
        self,
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        monitor: str = "val/loss",
        monitor_mode: str = "min",
        compile: bool = False,
    ) -> None:
        super().__init__()
        if "_target_" not in optimizer or "lr" not in optimizer:
            raise ConfigError("the optimizer config needs `_target_` and `lr`.")
        if optimizer["lr"] <= 0:
            raise ConfigError(f"optimizer.lr must be positive, got {optimizer['lr']}.")
        if monitor_mode not in ("min", "max"):
            raise ConfigError(f"model.monitor_mode must be 'min' or 'max', got {monitor_mode!r}.")
        self.optimizer_cfg = dict(optimizer)
        self.scheduler_cfg = dict(scheduler) if scheduler else None
        # A plain attribute, so that Lightning's LR finder can read and set it.
        self.lr = float(optimizer["lr"])
        self.monitor, self.monitor_mode = monitor, monitor_mode
        self.compile_net = compile
        self.samples_seen = 0  # training samples of the current fit (for samples/s)
        self.run_config: dict | None = None  # the composed config, saved in checkpoints
        self._compiled: list = []  # the compiled network, kept out of the state_dict

    # -- network -----------------------------------------------------------------------------
    net: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.compile_net:
            if not self._compiled:
                self._compiled.append(torch.compile(self.net))
            return self._compiled[0](x)
        return self.net(x)

    # -- steps -------------------------------------------------------------------------------
    def compute_loss(self, batch: Any, stage: str) -> torch.Tensor:
        """Loss of a batch; also updates and logs the stage's metrics."""
        raise NotImplementedError

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.samples_seen += len(batch[-1])
        return self.compute_loss(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.compute_loss(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.compute_loss(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self(batch[0])

    def on_fit_start(self) -> None:
        self.samples_seen = 0

    def log_stage(self, stage: str, values: dict[str, Any], batch_size: int) -> None:
        """The logging convention: `train/loss` step-wise and epoch-wise, the rest epoch-wise."""
        for name, value in values.items():
            step_wise = stage == "train" and name == "loss"
            self.log(
                f"{stage}/{name}",
                value,
                on_step=step_wise,
                on_epoch=True,
                prog_bar=name in ("loss", "acc") and stage != "test",
                batch_size=batch_size,
            )

    def final_report(self) -> dict[str, Any]:
        """Anything worth recording about the trained model in metrics.json (see Regressor)."""
        return {}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the run's config, so that eval.py needs only the checkpoint."""
        checkpoint[CHECKPOINT_KEY] = {
            "model_target": f"{type(self).__module__}.{type(self).__qualname__}",
            "config": self.run_config,
        }

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        kwargs = {k: v for k, v in self.optimizer_cfg.items() if k not in ("_target_", "lr")}
        optimizer = get_class(self.optimizer_cfg["_target_"])(
            self.parameters(), lr=self.lr, **kwargs
        )
        if not self.scheduler_cfg:
            return optimizer
        cfg = dict(self.scheduler_cfg)
        scheduler_cls = get_class(cfg.pop("_target_"))
        lightning = {k: cfg.pop(k) for k in _LIGHTNING_KEYS if k in cfg}
        for key, value in cfg.items():
            if value == "total_steps":  # the run's optimizer steps, known only now
                cfg[key] = int(self.trainer.estimated_stepping_batches)
        if scheduler_cls is torch.optim.lr_scheduler.OneCycleLR:
            cfg["max_lr"] = self.lr  # follows optimizer.lr, also after the LR finder
        scheduler = scheduler_cls(optimizer, **cfg)
        config = {"scheduler": scheduler, "interval": lightning.get("interval", "epoch")}
        config["frequency"] = lightning.get("frequency", 1)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            # Stepped after every validation by on_validation_epoch_end (not once per epoch),
            # so that it also follows validations every N iterations.
            config.update(monitor=lightning.get("monitor", self.monitor), strict=False)
        return {"optimizer": optimizer, "lr_scheduler": config}

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            return  # see on_validation_epoch_end
        scheduler.step()

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        for config in self.trainer.lr_scheduler_configs:
            if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                value = self.trainer.callback_metrics.get(config.monitor)
                if value is None:
                    raise ConfigError(
                        f"the plateau scheduler monitors {config.monitor!r}, which the model does "
                        f"not log; logged: {sorted(self.trainer.callback_metrics)}."
                    )
                config.scheduler.step(value)
