"""What trainkit shows in TensorBoard beside the curves (docs/tensorboard.md):

- Custom Scalars: training and validation on one chart, loss and the monitored metric, by
  iteration and by epoch (the "Loss/iteration" and "Loss/epoch" pictures of teaching material).
- HParams: the settings a user varies, with their real types, and the run's final metrics.

HParams details, each for a reason found in TensorBoard 2.21's hparams plugin:

- No experiment summary is written, only the session's start and end: TensorBoard then builds the
  table from every run under the log folder, so runs of different models keep their own metric
  columns (with one experiment summary anywhere, its columns would apply to every run).
- The session lives in a sub-folder, `<run>/tensorboard/hparams`, which holds only copies of the
  metrics' points, with their tags and steps: the metric columns are exactly those metrics, and
  in the curves each copy is one more dot at a curve's end (a separate run in the run list)
  instead of a card of its own.
- The metrics are at most five (hparams_metrics), as TensorBoard ticks five: the final epoch
  training loss, the test loss and headline metric, the last samples/s, and the monitored
  validation metric at its best (the best checkpoint's score, under the metric's own name). A
  metric's value is its tag's last point there. The budget counts have no curve, so they are
  columns among the settings.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainkit.config import MONITOR_KEYS

# Command-line keys whose HParams column has a short name (see curated_hparams).
SHORT = {"data.batch_size": "batch_size", "optimizer.lr": "lr", "trainer.max_epochs": "max_epochs"}


def layout(monitor: str) -> dict:
    """The Custom Scalars layout: loss (and the monitored metric), train and val on one chart,
    by iteration and by epoch (tags anchored: TensorBoard matches from the start only)."""

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

    names = ["loss"] + [n for n in [monitor.partition("/")[2]] if n and n != "loss"]
    return {f"train and val: {re.escape(n)}": charts(re.escape(n)) for n in names}


def curated_hparams(cfg: DictConfig, summary: dict[str, Any]) -> dict[str, Any]:
    """The settings of the HParams table: the config choices (model, data, optimizer,
    scheduler), the model's own arguments, lr, batch size, epochs, seed, every other key the
    command line set, and the run's counts. No loader plumbing, no `_target_`s.

    TensorBoard ticks the first five settings, the ones that differ between runs first, then
    by name: the knobs everyone turns get short names (batch_size, lr, max_epochs), which sort
    first together with data and model."""
    hp: dict[str, Any] = {g: choice(cfg, g) for g in ("model", "data", "optimizer", "scheduler")}
    hp.update(
        {f"model.{k}": v for k, v in cfg.model.items() if k[0] != "_" and k not in MONITOR_KEYS}
    )
    hp["batch_size"] = (summary.get("plan") or {}).get("batch_size")
    hp["lr"] = summary.get("tuned", {}).get("lr", OmegaConf.select(cfg, "optimizer.lr"))
    hp["max_epochs"] = cfg.trainer.get("max_epochs")
    if cfg.trainer.get("max_steps", -1) != -1:
        hp["max_steps"] = cfg.trainer.max_steps
    hp["trainer.accumulate_grad_batches"] = cfg.trainer.get("accumulate_grad_batches")
    hp["seed"] = summary["seed"]
    for override in summary.get("overrides", []):
        key, _, value = override.lstrip("+~").partition("=")
        if key.startswith(("hydra.", "paths.")) or key == "ckpt_path" or key in SHORT.values():
            continue
        node = OmegaConf.select(cfg, key, default=value)
        hp.setdefault(SHORT.get(key, key), value if OmegaConf.is_config(node) else node)
    hp.update({f"run.{k}": summary.get(k) for k in ("epochs", "iterations", "optimizer_steps")})
    plain = {k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v for k, v in hp.items()}
    return {k: v for k, v in plain.items() if v is not None}


def hparams_metrics(monitor: str, tags: set[str]) -> list[str]:
    """The metric columns, at most five so that TensorBoard ticks them all (it ticks the first
    five, by name): the final training loss, the test's loss and headline metric, samples/s,
    and validation: the monitored metric (its best value) and the loss or headline metric."""
    name = monitor.partition("/")[2] or "loss"
    val = sorted(t.partition("/")[2] for t in tags if t.startswith("val/"))
    other = [m for m in ("acc", "r2", *val) if m in val and m != "loss"][:1]
    headline = name if name != "loss" else (other[0] if other else "loss")
    wanted = ["epoch/train_loss", "test/loss", f"test/{headline}", "train/samples_per_sec",
              monitor, f"val/{'loss' if name != 'loss' else headline}"]  # fmt: skip
    return [t for t in dict.fromkeys(wanted) if t in tags][:5]


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


def trial_id(run_dir: Path) -> str:
    """A short name for the HParams table's first column (about 15 characters show): the job
    folder of a sweep ("3_batch_size=64,...") or the run folder's date and time."""
    run_dir = Path(run_dir)
    if run_dir.parent.parent.name == "multiruns":
        return run_dir.name
    date, _, clock = run_dir.name.partition("_")  # 2026-11-30_10-00-00_123456
    if len(date) == 10 and len(clock) >= 8:
        return f"{date[5:]} {clock[:8].replace('-', ':')}"  # 11-30 10:00:00
    return run_dir.name


def write_hparams(
    log_dir: str | Path,
    hparams: dict[str, Any],
    points: dict[str, tuple[int, float]],
    name: str,
    status: str = "ok",
) -> None:
    """Write the HParams session of a run into <log_dir>/hparams (see the module docstring) and
    the settings into <log_dir>/hparams.yaml."""
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

    start = plugin_data_pb2.SessionStartInfo(group_name=name, start_time_secs=time.time())
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
    with SummaryWriter(str(Path(log_dir) / "hparams")) as writer:
        data = plugin_data_pb2.HParamsPluginData
        writer.file_writer.add_summary(
            summary(hp_metadata.SESSION_START_INFO_TAG, data(session_start_info=start))
        )
        for tag, (step, value) in points.items():
            writer.add_scalar(tag, value, step)
        writer.file_writer.add_summary(
            summary(hp_metadata.SESSION_END_INFO_TAG, data(session_end_info=end))
        )
    save_hparams_to_yaml(Path(log_dir) / "hparams.yaml", hparams)
