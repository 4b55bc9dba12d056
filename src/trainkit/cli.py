"""What train.py and eval.py share: run one job, turn failures into one line or a recorded,
failed multirun job. Imports nothing heavy until the job runs."""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from trainkit.errors import TrainkitError

log = logging.getLogger("trainkit")


def run_job(job: Callable[[DictConfig], float], cfg: DictConfig) -> float:
    """Run `job(cfg)` and return its metric.

    A single run ends a user error (TrainkitError) with `error: <one sentence>` and exit code 1;
    any other exception keeps its traceback. In a multirun, a job that fails for any reason is
    recorded as failed in its metrics.json (with the error) and returns NaN, so the sweep goes on
    to the next job. Ctrl-C still stops the whole sweep.
    """
    from trainkit.config import check_config

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        check_config(cfg)
        return job(cfg)
    except Exception as raw:
        err = user_error(raw)
        if not multirun:
            if isinstance(err, TrainkitError):
                sys.exit(f"error: {err}")
            raise
        record_failure(cfg, err)
        return math.nan


def user_error(err: Exception) -> Exception:
    """The TrainkitError behind Hydra's wrapping of errors raised while instantiating."""
    from hydra.errors import InstantiationException

    cause = err
    while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
        cause = cause.__cause__
    return cause if isinstance(cause, TrainkitError) else err


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return text if isinstance(err, TrainkitError) else f"{type(err).__name__}: {text}"


def record_failure(cfg: DictConfig, err: Exception) -> None:
    """Write metrics.json with status "failed" and the error; the full traceback goes to the log."""
    message = one_line(err)
    if isinstance(err, TrainkitError):
        log.error("job failed: %s", message)
    else:
        log.exception("job failed: %s", message)
    out = Path(HydraConfig.get().runtime.output_dir)
    summary = {
        "status": "failed",
        "error": message,
        "overrides": list(HydraConfig.get().overrides.task),
        "train": {},
        "val": {},
        "test": {},
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
