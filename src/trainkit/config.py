"""Checks of the composed config that need no torch: they run in a fraction of a second, before
the heavy imports, so that a typo ends the run at once with one clear sentence."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainkit.errors import ConfigError


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError on values that cannot work (Lightning would fail later, or worse, not)."""
    missing = [k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra.")]
    if missing:
        raise ConfigError(
            f"{missing[0]} has no value and is required: set it on the command line "
            f"({missing[0]}=...)."
        )
    batch_size = _get(cfg, "data.batch_size")
    if batch_size is not None and (not _is_int(batch_size) or batch_size <= 0):
        raise ConfigError(f"data.batch_size must be a positive integer, got {batch_size!r}.")
    num_workers = _get(cfg, "data.num_workers")
    if num_workers is not None and (not _is_int(num_workers) or num_workers < 0):
        raise ConfigError(f"data.num_workers must be an integer >= 0, got {num_workers!r}.")
    lr = _get(cfg, "optimizer.lr")
    if lr is not None and (not isinstance(lr, (int, float)) or lr <= 0):
        raise ConfigError(f"optimizer.lr must be a positive number, got {lr!r}.")
    t = cfg.get("trainer") or {}
    acc = t.get("accumulate_grad_batches", 1)
    if not _is_int(acc) or acc < 1:
        raise ConfigError(f"trainer.accumulate_grad_batches must be an integer >= 1, got {acc!r}.")
    max_epochs = t.get("max_epochs")
    if max_epochs is not None and (not _is_int(max_epochs) or max_epochs < -1):
        raise ConfigError(
            f"trainer.max_epochs must be an integer >= -1 (-1 = no limit), got {max_epochs!r}."
        )
    max_steps = t.get("max_steps", -1)
    if not _is_int(max_steps) or max_steps < -1:
        raise ConfigError(
            f"trainer.max_steps must be an integer >= -1 (-1 = no limit), got {max_steps!r}."
        )
    if max_epochs == 0 or max_steps == 0:
        raise ConfigError(
            "trainer.max_epochs and trainer.max_steps must not be 0: nothing would train."
        )
    vci = t.get("val_check_interval", 1.0)
    every_n = t.get("check_val_every_n_epoch", 1)
    if isinstance(vci, bool) or not isinstance(vci, (int, float)) or vci <= 0:
        raise ConfigError(
            "trainer.val_check_interval must be a positive integer (iterations) or a fraction of "
            f"an epoch in (0, 1], got {vci!r}."
        )
    if isinstance(vci, float) and vci > 1.0:
        raise ConfigError(
            f"trainer.val_check_interval={vci} is a float above 1.0; write an integer "
            f"({int(vci)}) to validate every {int(vci)} iterations."
        )
    if every_n is None and isinstance(vci, float):
        raise ConfigError(
            "trainer.check_val_every_n_epoch=null counts validation in iterations across epochs: "
            "give trainer.val_check_interval as an integer number of iterations."
        )
    if every_n is not None and (not _is_int(every_n) or every_n < 1):
        raise ConfigError(
            f"trainer.check_val_every_n_epoch must be an integer >= 1 or null, got {every_n!r}."
        )
    log_n = t.get("log_every_n_steps", 50)
    if not _is_int(log_n) or log_n < 0:
        raise ConfigError(f"trainer.log_every_n_steps must be an integer >= 0, got {log_n!r}.")
