"""What every trainkit LightningModule shares: optimizer and LR schedule from config, optional
torch.compile, and the step/epoch metric logging convention.

A model subclass builds its network as `self.net` in `__init__` (from the dimensions the
DataModule hands it), calls `self.save_hyperparameters(logger=False)` and implements
`shared_step` and `make_metrics` (see ClassifierModule and Regressor).
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import get_class
from torch import nn
from torchmetrics import MetricCollection

from trainkit.checkpoints import KEY as CHECKPOINT_KEY
from trainkit.errors import ConfigError

# Plain attributes set on every hook call or iteration: nn.Module.__setattr__ checks each one
# against parameters, modules and buffers (~45 times an iteration), object.__setattr__ does not.
_PLAIN_ATTRIBUTES = frozenset({"_current_fx_name", "samples_seen", "latest_step_metrics"})

# Scheduler config keys that are Lightning's, not the scheduler's.
_LIGHTNING_KEYS = ("interval", "frequency", "monitor")


def _collect_rng_states() -> dict[str, Any]:
    """torch, numpy and Python random states, as types a weights-only torch.load accepts."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])


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
        self.latest_step_metrics: dict[str, float] = {}
        self._sums: dict[str, dict[str, torch.Tensor]] = {}
        self._counts: dict[str, int] = {}
        self.run_config: dict | None = None  # the composed config, saved in checkpoints
        # (training sums, sample count) from the checkpoint being resumed, see on_load_checkpoint
        self._restored_train: tuple[dict[str, torch.Tensor], int] | None = None
        self._compiled: list = []  # the compiled network, kept out of the state_dict

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PLAIN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # -- network -----------------------------------------------------------------------------
    net: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.compile_net:
            if not self._compiled:
                self._compiled.append(torch.compile(self.net))
            return self._compiled[0](x)
        return self.net(x)

    # -- steps -------------------------------------------------------------------------------
    # The hot path is kept short: per iteration, the loss and a few sums are accumulated on the
    # device; values are read back (one .item()) only every trainer.log_every_n_steps, and the
    # epoch's metrics are logged once, at its end. Validation and test metrics are torchmetrics.
    def shared_step(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forward a batch: (loss, outputs, targets)."""
        raise NotImplementedError

    def make_metrics(self) -> MetricCollection:
        """The validation/test metrics, as a torchmetrics collection (one per stage)."""
        raise NotImplementedError

    def metric_inputs(self, outputs: torch.Tensor, target: torch.Tensor) -> tuple:
        """What the metrics compare (e.g. predictions in the target's original units)."""
        return outputs, target

    def train_sums(self, outputs: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-batch sums behind the training-epoch metrics (cheap: no torchmetrics per step)."""
        return {}

    def train_metrics(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, torch.Tensor]:
        """Training-epoch metrics from the summed `train_sums` of `count` samples."""
        return {}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, outputs, target = self.shared_step(batch)
        n = len(target)
        self.samples_seen += n
        sums = self.train_sums(outputs.detach(), target)
        self._accumulate("train", n, loss=loss.detach() * n, **sums)
        trainer = self.trainer
        # Lightning's own rule for step-wise logs: every log_every_n_steps optimizer steps
        if (
            trainer.loggers
            and not trainer.fit_loop._should_accumulate()
            and trainer._logger_connector.should_update_logs
        ):
            self.write_step_metrics({"train/loss_step": loss})
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _eval_step(self, batch: Any, stage: str) -> None:
        loss, outputs, target = self.shared_step(batch)
        self._accumulate(stage, len(target), loss=loss.detach() * len(target))
        getattr(self, f"{stage}_metrics").update(*self.metric_inputs(outputs, target))

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self(batch[0])

    def _accumulate(self, stage: str, n: int, **sums: torch.Tensor) -> None:
        acc = self._sums.setdefault(stage, {})
        for key, value in sums.items():
            acc[key] = acc[key] + value if key in acc else value
        self._counts[stage] = self._counts.get(stage, 0) + n

    def write_step_metrics(self, metrics: dict[str, torch.Tensor]) -> None:
        """Write step-wise values straight to the loggers (bypassing Lightning's per-call
        bookkeeping, which costs about a millisecond per self.log on a CPU)."""
        values = {k: float(v.detach()) for k, v in metrics.items()}
        self.latest_step_metrics = values  # shown by trainkit's progress bar
        for logger in self.loggers:
            logger.log_metrics(values, step=self.global_step)

    def on_fit_start(self) -> None:
        self.samples_seen = 0

    def on_train_epoch_start(self) -> None:
        self._reset("train")
        restored, self._restored_train = self._restored_train, None
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.processed
        if restored and 0 < done < self.trainer.num_training_batches:  # resumed mid-epoch
            sums, count = restored
            self._sums["train"] = {k: v.to(self.device) for k, v in sums.items()}
            self._counts["train"] = count

    def on_validation_epoch_start(self) -> None:
        self._reset("val")

    def on_test_epoch_start(self) -> None:
        self._reset("test")

    def _reset(self, stage: str) -> None:
        self._sums.pop(stage, None)
        self._counts.pop(stage, None)
        if stage != "train":
            getattr(self, f"{stage}_metrics").reset()

    def train_epoch_values(self) -> dict[str, torch.Tensor]:
        """The training epoch's metrics so far (callbacks read them before on_train_epoch_end
        of the module has logged them: Lightning calls callbacks first)."""
        sums, count = self._global_sums("train")
        if not count:
            return {}
        return {"loss_epoch": sums["loss"] / count, **self.train_metrics(sums, count)}

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train", self.train_epoch_values())

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", self._eval_values("test"))

    def _eval_values(self, stage: str) -> dict[str, torch.Tensor]:
        sums, count = self._global_sums(stage)
        if not count:
            return {}
        # torchmetrics' compute() gathers its state over the processes itself
        return {"loss": sums["loss"] / count, **getattr(self, f"{stage}_metrics").compute()}

    def _global_sums(self, stage: str) -> tuple[dict[str, torch.Tensor], int]:
        """A stage's sums and sample count over all processes (one all-reduce under DDP), so
        that epoch values mean what they mean on one device, uneven shards included. Every
        process must call it (it is a collective)."""
        sums, count = self._sums.get(stage, {}), self._counts.get(stage, 0)
        trainer = self._trainer
        if trainer is None or trainer.world_size <= 1:
            return sums, count
        keys = sorted(sums)
        packed = torch.tensor([float(count)], device=self.device)
        if keys:
            packed = torch.cat([torch.stack([sums[k].float() for k in keys]), packed])
        packed = trainer.strategy.reduce(packed, reduce_op="sum")
        return dict(zip(keys, packed[:-1], strict=True)), int(packed[-1].item())

    def _log_epoch(self, stage: str, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            self.log(
                f"{stage}/{name}",
                value,
                on_step=False,
                on_epoch=True,
                prog_bar=stage != "test" and name.startswith(("loss", "acc")),
                sync_dist=False,  # already global: see _global_sums
            )

    def final_report(self) -> dict[str, Any]:
        """Anything worth recording about the trained model in metrics.json (see Regressor)."""
        return {}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the run's config (eval.py needs only the checkpoint) and what an exact resume
        needs beyond Lightning's own state: the random generators (dropout, augmentation) and
        the training epoch's running sums (a resume mid-epoch)."""
        checkpoint[CHECKPOINT_KEY] = {
            "model_target": f"{type(self).__module__}.{type(self).__qualname__}",
            "config": self.run_config,
            "rng": _collect_rng_states(),
            "train_sums": {k: v.detach().cpu() for k, v in self._sums.get("train", {}).items()},
            "train_count": self._counts.get("train", 0),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get(CHECKPOINT_KEY) or {}
        if saved.get("rng"):
            _set_rng_states(saved["rng"])
        loop = checkpoint.get("loops", {}).get("fit_loop", {})
        done = loop.get("epoch_loop.batch_progress", {}).get("current", {}).get("processed", 0)
        trainer = self._trainer
        datamodule = trainer.datamodule if trainer is not None else None
        if done and hasattr(datamodule, "resume_train_after"):
            datamodule.resume_train_after(done)  # the data continues where it stopped
        self._restored_train = (saved.get("train_sums", {}), saved.get("train_count", 0))

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
        config = {
            "scheduler": scheduler,
            "interval": lightning.get("interval", "epoch"),
            "frequency": lightning.get("frequency", 1),
        }
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
        values = self._eval_values("val")
        self._log_epoch("val", values)
        if self.trainer.sanity_checking:
            return
        # ReduceLROnPlateau steps here, after every validation (see configure_optimizers)
        for config in self.trainer.lr_scheduler_configs:
            if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                name = config.monitor.removeprefix("val/")
                if not config.monitor.startswith("val/") or name not in values:
                    raise ConfigError(
                        f"the plateau scheduler monitors {config.monitor!r}, which validation "
                        f"does not log; it logs: {sorted('val/' + k for k in values)}."
                    )
                config.scheduler.step(values[name])
