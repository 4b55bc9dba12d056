"""A run's name as the loggers show it: what it trains and what sets it apart, short enough for a
run list (`cnn·digits·12-02 10:24:57`, a sweep's job `cnn·digits·batch_size=64,max_epochs=4`).
The resolver `${run_name:}` (registered by trainkit.cli) gives it to logger configs."""

from __future__ import annotations

from datetime import datetime

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

SEPARATOR = "·"


def run_name() -> str:
    """model·data·<the swept values of a sweep's job, or the run's start time>."""
    if not HydraConfig.initialized():
        return "run"
    from trainkit.cli import job_label

    hc = HydraConfig.get()
    choices = hc.runtime.choices
    what = [str(choices.get("model") or "model"), str(choices.get("data") or "data")]
    if hc.mode == RunMode.MULTIRUN:
        return SEPARATOR.join([*what, job_label()])
    return SEPARATOR.join([*what, datetime.now().strftime("%m-%d %H:%M:%S")])
