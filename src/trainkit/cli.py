"""What train.py and eval.py share: run one job, turn failures into one line or a recorded,
failed multirun job. Imports nothing heavy until the job runs."""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    except SystemExit as stop:
        if type(stop).__name__ == "SIGTERMException":  # Lightning's; its exit code would be 0
            sys.exit(143)  # 128 + SIGTERM, as a shell reports a process killed by SIGTERM
        raise
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


HELP = """trainkit: train a model with PyTorch Lightning, configured by Hydra.

  python train.py model=cnn trainer.max_epochs=5      pick a model, change a value
  python train.py -m model=cnn data.batch_size=32,64 trainer.max_epochs=3,5   a sweep
  python train.py --cfg job                          print the composed config
  python eval.py ckpt_path=logs/train/runs/<time>    re-test a checkpoint (predict=true: CSV)

Config groups (group=option), from {conf}:
{groups}
Also: hydra/launcher=joblib|submitit_slurm|submitit_local, hydra/sweeper=optuna
(python train.py --hydra-help lists Hydra's own options).

Runs are written to logs/<task_name>/runs/<time>/; view them with: tensorboard --logdir logs
"""


def start(main: Callable[[], Any], conf_dir: Path) -> None:
    """The entry points' `__main__`: a fast `--help` (see print_help), else Hydra's main."""
    if {"--help", "-h"} & set(sys.argv[1:]):
        print_help(conf_dir)
        sys.exit(0)
    main()


def print_help(conf_dir: str | Path) -> None:
    """`python train.py --help`, without Hydra's help, which composes every config group
    (about two seconds); this only lists the files of conf/ (a few milliseconds)."""
    conf = Path(conf_dir)
    groups = []
    for folder in sorted(p for p in conf.rglob("*") if p.is_dir() and p.name != "hydra"):
        options = sorted(f.stem for f in folder.glob("*.yaml"))
        if options:
            groups.append(f"  {folder.relative_to(conf).as_posix()}: {', '.join(options)}")
    print(HELP.format(conf=conf, groups="\n".join(groups)))
