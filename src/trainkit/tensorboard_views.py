"""What trainkit shows in TensorBoard beside the curves (docs/tensorboard.md), so that one
`tensorboard --logdir logs` over a week of runs of every kind reads at a glance:

- Custom Scalars: training and validation on one chart, for the loss and the monitored metric,
  by iteration and by epoch (the "loss by iteration / by epoch" pictures of teaching material).
- HParams: one row per run (a resumed run updates its row), the settings a user varies with
  their real types, and five metric columns that every run has, whatever its model.
- A Time Series link that pins what matters: each family's loss and headline metric.

HParams details, each for a reason found in TensorBoard 2.21's hparams plugin:

- No experiment summary is written, only each run's session start and end: TensorBoard builds
  the table from every run under the log folder (one experiment summary anywhere would fix the
  columns of every run to its own).
- The session lives in the run's own folder, in an event file of its own (`*.hparams`) that an
  update replaces: one entry per run in the run list, one row per run.
- The metric columns are every scalar tag of the session runs, sorted by name, and TensorBoard
  ticks the first five; its Parallel Coordinates view draws only the runs that have a value for
  every ticked column. So every run writes five `Summary/` scalars, the same five for every model
  (their capital sorts them first): the monitored metric at its best and at the last validation,
  its test value, the last epoch's training loss and the run's throughput. Which metric is
  monitored is the `monitor` setting (val/acc for the classifiers, val/mse for regression).
- The model's own arguments are settings under the model's name (`cnn.hidden`,
  `regression.hidden`): an argument of one model never shares a column with another model's.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.parse
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainkit.config import MONITOR_KEYS

# Command-line keys whose HParams column has a short name (see curated_hparams).
SHORT = {"data.batch_size": "batch_size", "optimizer.lr": "lr", "trainer.max_epochs": "max_epochs"}
SUMMARY = "Summary"  # the tag group of the five HParams metrics
# pinned in the Time Series link: each family's loss and headline metric
PINNED = ("train/loss", "val/loss", "val/acc", "train/mse", "val/mse", "val/r2")


def layout(names: list[str]) -> dict:
    """The Custom Scalars layout: for each of `names` (the loss and the monitored metric, as the
    run logs them), train and val on one chart, by iteration and by epoch (tags anchored:
    TensorBoard matches from the start only)."""

    def charts(name: str) -> dict:
        return {
            "by iteration (val: every validation)": [
                "Multiline",
                [f"^train/{name}$", f"^val/{name}$"],
            ],
            "by epoch (train: the epoch's mean; val: the epoch's last validation)": [
                "Multiline",
                [f"^epoch/train_{name}$", f"^epoch/val_{name}$"],
            ],
        }

    return {f"train and val: {re.escape(n)}": charts(re.escape(n)) for n in dict.fromkeys(names)}


def time_series_url(port: int = 6006) -> str:
    """TensorBoard's Time Series with every family's loss and headline metric pinned on top (it
    opens the first two card groups by name otherwise)."""
    pins = json.dumps([{"plugin": "scalars", "tag": t} for t in PINNED], separators=(",", ":"))
    return f"http://localhost:{port}/?pinnedCards={urllib.parse.quote(pins)}#timeseries"


def curated_hparams(cfg: DictConfig, summary: dict[str, Any]) -> dict[str, Any]:
    """The settings of the HParams table: the config choices (model, data, optimizer,
    scheduler), the monitored metric, the model's own arguments (under the model's name), lr,
    batch size, epochs, seed, every other key the command line set, and the run's counts. No
    loader plumbing, no `_target_`s.

    TensorBoard ticks the first five settings, the ones that differ between runs first, then
    by name: the knobs everyone turns get short names (batch_size, lr, max_epochs), which sort
    first together with data and model."""
    hp: dict[str, Any] = {g: choice(cfg, g) for g in ("model", "data", "optimizer", "scheduler")}
    hp["monitor"] = summary.get("monitor")
    family = hp["model"]
    own = {k: v for k, v in cfg.model.items() if k[0] != "_" and k not in MONITOR_KEYS}
    hp.update({f"{family}.{k}": v for k, v in own.items()})
    hp["batch_size"] = (summary.get("plan") or {}).get("batch_size")
    hp["lr"] = summary.get("tuned", {}).get("lr", OmegaConf.select(cfg, "optimizer.lr"))
    hp["max_epochs"] = cfg.trainer.get("max_epochs")
    if cfg.trainer.get("max_steps", -1) != -1:
        hp["max_steps"] = cfg.trainer.max_steps
    hp["trainer.accumulate_grad_batches"] = cfg.trainer.get("accumulate_grad_batches")
    hp["seed"] = summary["seed"]
    for override in summary.get("overrides", []):
        key, _, value = override.lstrip("+~").partition("=")
        if key.startswith(("hydra.", "paths.", "model.")) or key == "ckpt_path":
            continue
        if key in SHORT.values():
            continue
        node = OmegaConf.select(cfg, key, default=value)
        hp.setdefault(SHORT.get(key, key), value if OmegaConf.is_config(node) else node)
    hp.update({f"run.{k}": summary.get(k) for k in ("epochs", "iterations", "optimizer_steps")})
    plain = {k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v for k, v in hp.items()}
    return {k: v for k, v in plain.items() if v is not None}


def summary_metrics(
    monitor: str,
    points: dict[str, tuple[int, float]],
    best: tuple[int, float] | None,
    summary: dict[str, Any],
    train_loss: float | None,
) -> dict[str, float]:
    """The five HParams metrics of a run (see the module docstring), from the latest point of
    each of its curves, its best validation, its metrics.json summary and the mean training
    loss of its last epoch; those a run does not have are left out."""
    name = monitor.partition("/")[2]
    values = {
        f"{SUMMARY}/val_best": best[1] if best else None,
        f"{SUMMARY}/val_last": points.get(monitor, (0, None))[1],
        f"{SUMMARY}/test": (summary.get("test") or {}).get(name),
        f"{SUMMARY}/train_loss": train_loss,
        f"{SUMMARY}/samples_per_sec": summary.get("train_samples_per_second"),
    }
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


def choice(cfg: DictConfig, group: str) -> str:
    """The config file a group was composed from ("cnn"), else its class ("ImageClassifier")."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        picked = HydraConfig.get().runtime.choices.get(group)
        if picked is not None:
            return str(picked)
    node = cfg.get(group)
    return str(node.get("_target_", "none")).rsplit(".", 1)[-1] if node else "none"


def typed(value: Any) -> bool | float | str | None:
    """A value as TensorBoard types it: bool, number, string (lists as compact JSON)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def write_hparams(
    log_dir: str | Path,
    hparams: dict[str, Any],
    metrics: dict[str, float],
    step: int,
    status: str = "ok",
) -> None:
    """Write the run's HParams session into its own folder, with its `metrics` as scalars at
    `step`, in an event file of its own that replaces the one an earlier part of the run (before
    a resume) wrote; and the settings into <log_dir>/hparams.yaml."""
    from lightning.pytorch.core.saving import save_hparams_to_yaml
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    from tensorboard.plugins.hparams import metadata as hp_metadata
    from torch.utils.tensorboard import SummaryWriter

    def summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
        out = Summary()
        out.value.add(
            tag=tag,
            metadata=hp_metadata.create_summary_metadata(data),
            tensor=hp_metadata.NULL_TENSOR,
        )
        return out

    folder = Path(log_dir)
    start = plugin_data_pb2.SessionStartInfo(group_name=folder.name, start_time_secs=time.time())
    for key, value in ((k, typed(v)) for k, v in hparams.items()):
        if value is None:
            continue
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, float):
            start.hparams[key].number_value = value
        else:
            start.hparams[key].string_value = value
    end = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.STATUS_SUCCESS if status == "ok" else api_pb2.STATUS_FAILURE,
        end_time_secs=time.time(),
    )
    earlier = list(folder.glob("events.out.tfevents.*.hparams"))
    with SummaryWriter(str(folder), filename_suffix=".hparams") as writer:
        data = plugin_data_pb2.HParamsPluginData
        writer.file_writer.add_summary(
            summary(hp_metadata.SESSION_START_INFO_TAG, data(session_start_info=start))
        )
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, step)
        writer.file_writer.add_summary(
            summary(hp_metadata.SESSION_END_INFO_TAG, data(session_end_info=end))
        )
    for old in earlier:
        old.unlink(missing_ok=True)
    save_hparams_to_yaml(folder / "hparams.yaml", hparams)
