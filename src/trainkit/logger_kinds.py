"""How each kind of Lightning logger holds trainkit's two axes and a run's record
(trainkit.loggers routes every value; this module writes it in the logger's own terms).

- TensorBoard, MLflow and most loggers keep a step per value: x is the step.
- The CSV logger has one `step` column: the iteration; rows of epoch values add an `epoch` column.
- W&B wants its own step to grow: `iteration` and `epoch` are its step metrics (define_metric).

A resumed run goes on in the same place: TensorBoard in its run's folder, MLflow and W&B in the
same run (`continuation`, kept in every checkpoint). At the end of a run: MLflow gets the
settings it does not have yet as params (they cannot change once logged) and the outcome as
`trainkit.*` tags; W&B its config and summary, and its run is finished (a sweep's next job
starts its own); any other logger `log_hyperparams`.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import (
    CSVLogger,
    Logger,
    MLFlowLogger,
    TensorBoardLogger,
    WandbLogger,
)

ITERATION, EPOCH = "iteration", "epoch"


def raw_log_metrics(logger: Logger) -> Any:
    """The logger's own `log_metrics` (its class's), bypassing MetricsAxes."""
    return type(logger).log_metrics.__get__(logger)


def write_on_axis(logger: Logger, axis: str, x: int, values: Mapping[str, float], now: int) -> None:
    """Write points on `axis` ("iteration" or "epoch") at `x`, as the logger can hold them;
    `now`: the run's iteration, for loggers with a single step counter."""
    write = raw_log_metrics(logger)
    if isinstance(logger, CSVLogger):  # one `step` column: the iteration, plus `epoch`
        write({**values, EPOCH: x} if axis == EPOCH else dict(values), now if axis == EPOCH else x)
    elif isinstance(logger, WandbLogger):  # W&B's own step must grow: axes as step metrics
        _define_wandb_axes(logger)
        write({**values, axis: x}, now)
    else:  # TensorBoard, MLflow and others keep a step per value
        write(dict(values), x)


_WANDB_RUNS_WITH_AXES: weakref.WeakSet = weakref.WeakSet()


def _define_wandb_axes(logger: WandbLogger) -> None:
    run = logger.experiment
    if run in _WANDB_RUNS_WITH_AXES:
        return
    run.define_metric(ITERATION)
    run.define_metric(EPOCH)
    for stage in ("train", "val", "test"):
        run.define_metric(f"{stage}/*", step_metric=ITERATION)
    run.define_metric("epoch/*", step_metric=EPOCH)
    _WANDB_RUNS_WITH_AXES.add(run)


def _record_mlflow(logger: MLFlowLogger, hparams: dict[str, Any], outcome: dict[str, Any]) -> None:
    """MLflow params cannot change once logged (Lightning logged the model's at fit start):
    add the settings it does not have yet; the outcome goes into tags."""
    client, run_id = logger.experiment, logger.run_id
    have = client.get_run(run_id).data.params
    logger.log_hyperparams({k: v for k, v in hparams.items() if k not in have})
    for key, value in outcome.items():
        client.set_tag(run_id, f"trainkit.{key}", str(value))


def run_outcome(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary a logger keeps of a run: status, counts, best score, final metrics."""
    keys = ("status", "epochs", "iterations", "optimizer_steps", "validations", "monitor",
            "best_score", "train_samples_per_second", "fit_seconds")  # fmt: skip
    outcome = {k: summary.get(k) for k in keys if summary.get(k) is not None}
    for stage in ("train", "val", "test"):
        outcome.update({f"{stage}/{k}": v for k, v in (summary.get(stage) or {}).items()})
    return outcome


def record_settings(logger: Logger, hparams: dict[str, Any], outcome: dict[str, Any]) -> None:
    """The run's settings and outcome, as `logger` keeps such things (not TensorBoard's:
    trainkit.tensorboard_views writes its HParams table)."""
    if isinstance(logger, MLFlowLogger):
        _record_mlflow(logger, hparams, outcome)
    else:
        logger.log_hyperparams(hparams)
    logger.save()
    if isinstance(logger, WandbLogger):  # the next job of a sweep gets a run of its own
        logger.experiment.summary.update(outcome)
        logger.experiment.finish()


def continuation(logger: Logger) -> dict[str, Any]:
    """The logger config's arguments with which a resumed run writes where this run writes:
    TensorBoard its folder (the curves go on, one run in the run list), MLflow and W&B their run."""
    if isinstance(logger, TensorBoardLogger):
        folder = Path(logger.log_dir)
        return {"save_dir": str(folder.parent.resolve()), "name": folder.name, "version": ""}
    if isinstance(logger, MLFlowLogger):
        return {"run_id": logger.run_id}
    if isinstance(logger, WandbLogger):
        return {"id": logger.version, "resume": "allow"}
    return {}
