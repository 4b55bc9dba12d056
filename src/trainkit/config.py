"""Checks of the composed config that need no torch: they run in a fraction of a second, before
the heavy imports, so that a typo ends the run at once with one clear sentence.

Each rule lives here once; the DataModules call the same functions for values given in code.
"""

from __future__ import annotations

import math
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainkit.errors import ConfigError

# Lightning's precision settings (its _PRECISION_INPUT), as a user writes them.
PRECISIONS = (
    "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true",
    "transformer-engine", "transformer-engine-float16", "32", "16", "bf16", "64",
)  # fmt: skip
MAX_TIME = re.compile(r"^\d+:\d{1,2}:\d{1,2}:\d{1,2}$")  # DD:HH:MM:SS
# Keys of a model config that are trainkit's (what to monitor), not the model's arguments.
MONITOR_KEYS = ("monitor", "monitor_mode")


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_positive_number(value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0


def check_positive_int(value: Any, key: str = "data.batch_size") -> None:
    if not is_int(value) or value <= 0:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}.")


def check_workers(value: Any) -> None:
    if not is_int(value) or value < 0:
        raise ConfigError(f"data.num_workers must be an integer >= 0, got {value!r}.")


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError on values that cannot work (Lightning would fail later, or worse, not)."""
    missing = [k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra.")]
    if missing:
        raise ConfigError(
            f"{missing[0]} has no value and is required: set it on the command line "
            f"({missing[0]}=...)."
        )
    seed = cfg.get("seed")
    if seed is not None and (not is_int(seed) or not 0 <= seed < 2**32):
        raise ConfigError(
            f"seed must be an integer from 0 to 2**32 - 1 (or null to draw one), got {seed!r}."
        )
    if _get(cfg, "data.batch_size") is not None:
        check_positive_int(_get(cfg, "data.batch_size"))
    if _get(cfg, "data.num_workers") is not None:
        check_workers(_get(cfg, "data.num_workers"))
    lr = _get(cfg, "optimizer.lr")
    if lr is not None and not is_positive_number(lr):
        raise ConfigError(f"optimizer.lr must be a positive, finite number, got {lr!r}.")
    if cfg.get("trainer"):
        check_trainer(cfg.trainer, scheduler=cfg.get("scheduler"))


def check_trainer(t: DictConfig, scheduler: Any = None) -> None:
    acc = t.get("accumulate_grad_batches", 1)
    if not is_int(acc) or acc < 1:
        raise ConfigError(f"trainer.accumulate_grad_batches must be an integer >= 1, got {acc!r}.")
    max_epochs, max_steps = t.get("max_epochs"), t.get("max_steps", -1)
    if max_epochs is not None and (not is_int(max_epochs) or max_epochs < -1):
        raise ConfigError(
            f"trainer.max_epochs must be an integer >= -1 (-1 = no limit), got {max_epochs!r}."
        )
    if not is_int(max_steps) or max_steps < -1:
        raise ConfigError(
            f"trainer.max_steps must be an integer >= -1 (-1 = no limit), got {max_steps!r}."
        )
    if max_epochs == 0 or max_steps == 0:
        raise ConfigError(
            "trainer.max_epochs and trainer.max_steps must not be 0: nothing would train."
        )
    max_time = t.get("max_time")
    if max_time is not None and not (isinstance(max_time, str) and MAX_TIME.match(max_time)):
        raise ConfigError(
            f'trainer.max_time must be "DD:HH:MM:SS" (e.g. "00:12:00:00") or null, '
            f"got {max_time!r}."
        )
    unbounded = max_epochs == -1 and max_steps == -1
    if unbounded and max_time is None:
        raise ConfigError(
            "trainer.max_epochs=-1 and trainer.max_steps=-1 would train forever: set one of them "
            "(or trainer.max_time)."
        )
    spans_run = isinstance(scheduler, DictConfig) and "total_steps" in scheduler.values()
    if spans_run and unbounded:
        raise ConfigError(
            "this scheduler spans the run's optimizer steps, but the run has no step or epoch "
            "limit: set trainer.max_epochs or trainer.max_steps."
        )
    precision = t.get("precision")
    if precision is not None and str(precision) not in PRECISIONS:
        raise ConfigError(
            f"trainer.precision={precision} is not a precision Lightning knows; use one of "
            f"{', '.join(PRECISIONS[:6])}."
        )
    clip = t.get("gradient_clip_val")
    if clip is not None and clip != 0 and not is_positive_number(clip):
        raise ConfigError(
            f"trainer.gradient_clip_val must be a positive number (the largest gradient norm or "
            f"value), or null for no clipping, got {clip!r}."
        )
    devices = t.get("devices")
    if is_int(devices) and devices < 1 and devices != -1:
        raise ConfigError(
            f"trainer.devices must be >= 1, -1 (all), a list of device ids or auto; got {devices}."
        )
    check_validation(t)


def check_validation(t: DictConfig) -> None:
    vci = t.get("val_check_interval", 1.0)
    every_n = t.get("check_val_every_n_epoch", 1)
    if isinstance(vci, bool) or not isinstance(vci, (int, float)) or vci <= 0:
        raise ConfigError(
            "trainer.val_check_interval must be a positive integer (iterations) or a fraction of "
            f"an epoch in (0, 1], got {vci!r}."
        )
    if isinstance(vci, float) and vci > 1.0:
        raise ConfigError(
            f"trainer.val_check_interval={vci} is a float above 1.0: a float is a fraction of an "
            "epoch (at most 1.0, once at its end); to validate every N iterations give an "
            "integer N (trainer.val_check_interval=50)."
        )
    if every_n is None and isinstance(vci, float):
        raise ConfigError(
            "trainer.check_val_every_n_epoch=null counts validation in iterations across epochs: "
            "give trainer.val_check_interval as an integer number of iterations."
        )
    if every_n is not None and (not is_int(every_n) or every_n < 1):
        raise ConfigError(
            f"trainer.check_val_every_n_epoch must be an integer >= 1 or null, got {every_n!r}."
        )
    log_n = t.get("log_every_n_steps", 50)
    if not is_int(log_n) or log_n < 0:
        raise ConfigError(f"trainer.log_every_n_steps must be an integer >= 0, got {log_n!r}.")
