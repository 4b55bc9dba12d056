"""Reading and writing a run directory: metrics.json, the final metrics, the jobs of a sweep,
their overrides and TensorBoard scalars. Shared by train.py, eval.py, the sweep report and the
curve plots; nothing here imports torch or Lightning.

A run directory (docs/training.md, "What a run leaves behind") holds `.hydra/` (the composed
config and the overrides), `metrics.json` and `checkpoints/` (its TensorBoard curves are in
logs/tensorboard/, named in metrics.json); a sweep folder holds one such directory per job, and
`sweep_jobs.yaml`, the jobs trainkit's sweepers planned.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from trainkit.errors import TrainkitError

STAGES = ("train", "val", "test")
NOT_SET = "(not set)"  # the value of a swept key in a job that did not override it
Series = list[tuple[int, float]]  # (step or epoch, value), sorted by step


class ReportError(TrainkitError):
    """Nothing to report at the given path (a wrong folder, or a sweep with no jobs yet)."""


def find_job_dirs(path: Path) -> list[Path]:
    """The job folders of a sweep in job order (0_..., 1_..., ..., 10_...), or [path] for a
    single run."""

    def is_job(d: Path) -> bool:
        return (d / ".hydra" / "overrides.yaml").is_file() or (d / "metrics.json").is_file()

    if not path.is_dir():
        raise ReportError(f"no such folder: {path}")
    if is_job(path):
        return [path]
    jobs = [d for d in path.iterdir() if d.is_dir() and is_job(d)]
    if not jobs:
        raise ReportError(
            f"{path} holds no runs: expected job folders (0_.../, 1_.../, ...) with "
            ".hydra/ or metrics.json, as `python train.py -m ...` writes them"
        )
    return sorted(jobs, key=lambda d: sort_key(job_number(d.name)))


PLAN_FILE = "sweep_jobs.yaml"  # {"planned": n, "jobs": [{"job", "folder", "overrides"}]}
NOT_STARTED = "not started"


def load_sweep(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Every job of the sweep (or the single run) at `path`, in job order: each job folder, and
    each job trainkit's sweeper planned that never started (status "not started"); and how
    many jobs the sweep meant to run (an Optuna sweep plans trials it has not asked for yet)."""
    try:
        plan = yaml.safe_load((path / PLAN_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError):
        plan = {}
    try:
        dirs = find_job_dirs(path)
    except ReportError:
        if not plan.get("jobs"):
            raise
        dirs = []
    jobs = [load_job(d) for d in dirs]
    found = {j["job"] for j in jobs}
    for planned in plan.get("jobs") or []:
        if str(planned["job"]) not in found:
            job = load_job(path / str(planned["folder"]))
            job.update(status=NOT_STARTED, error="")
            job["overrides"] = dict(parse_override(str(o)) for o in planned["overrides"])
            jobs.append(job)
    jobs.sort(key=lambda j: sort_key(j["job"]))
    return jobs, max(int(plan.get("planned") or 0), len(jobs))


def job_number(folder_name: str) -> str:
    """ "3_batch_size=64,max_epochs=4" -> "3" (a job folder of a sweep); other names as they are."""
    number, sep, _ = folder_name.partition("_")
    return number if sep and number.isdigit() else folder_name


def load_job(job_dir: Path) -> dict[str, Any]:
    """One job as a flat dict; a job that died before writing metrics.json is "missing"."""
    job: dict[str, Any] = {
        "job": job_number(job_dir.name),
        "dir": str(job_dir),
        "overrides": None,
        "status": "missing",
        "error": "",
        **{s: {} for s in STAGES},
    }
    overrides = job_dir / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        job["overrides"] = dict(
            parse_override(str(o)) for o in yaml.safe_load(overrides.read_text()) or []
        )
    job.update(config_metric(job_dir / ".hydra" / "config.yaml"))
    summary: dict[str, Any] = {}
    try:
        summary = json.loads((job_dir / "metrics.json").read_text())
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
        job["status"] = str(summary.get("status", "ok"))
        job["error"] = " ".join(str(summary.get("error") or "").split())  # one line
    except FileNotFoundError:
        job["error"] = "no metrics.json (the job did not finish)"
    except (OSError, ValueError) as err:
        job["error"] = f"metrics.json unreadable: {err}"
    if job["overrides"] is None and isinstance(summary.get("overrides"), list):
        job["overrides"] = dict(parse_override(str(o)) for o in summary["overrides"])
    plan = summary.get("plan") or {}
    job.update({s: dict(summary.get(s) or {}) for s in STAGES})
    job.update(
        monitor=summary.get("monitor") or job["monitor"],
        best_score=summary.get("best_score"),
        iterations_per_epoch=plan.get("iterations_per_epoch"),
        optimizer_steps=summary.get("global_step"),
        epochs=summary.get("epochs"),
        iterations=summary.get("iterations"),
        fit_seconds=summary.get("fit_seconds"),
    )
    return job


def parse_override(text: str) -> tuple[str, str]:
    """ "+data.batch_size=32" -> ("data.batch_size", "32"); "~key" -> ("key", "(deleted)")."""
    key, sep, value = text.partition("=")
    return key.lstrip("+~"), value if sep else "(deleted)"


def config_metric(config_yaml: Path) -> dict[str, str | None]:
    """optimized_metric, model.monitor and model.monitor_mode of a job's composed config."""
    cfg = OmegaConf.load(config_yaml) if config_yaml.is_file() else OmegaConf.create()
    out: dict[str, str | None] = {}
    for name, key in (
        ("optimized_metric", "optimized_metric"),
        ("monitor", "model.monitor"),
        ("monitor_mode", "model.monitor_mode"),
    ):
        try:  # "${model.monitor}" resolves; "${hydra:...}" cannot outside a Hydra run
            value = OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
        except Exception:  # an unresolvable key is simply unknown
            value = None
        out[name] = value if isinstance(value, str) else None
    return out


def swept_parameters(jobs: list[dict[str, Any]]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Override keys whose values differ across jobs (values sorted), and those that do not."""
    known = [j["overrides"] for j in jobs if j["overrides"] is not None]
    keys = list(dict.fromkeys(k for o in known for k in o))  # first-seen order
    swept, constant = {}, {}
    for key in keys:
        values = {o.get(key, NOT_SET) for o in known}
        if len(values) > 1:
            swept[key] = sorted(values, key=sort_key)
        else:
            constant[key] = values.pop()
    return swept, constant


def number(text: str) -> float | None:
    """The value as a number when it is one ("1e-3" is), else None ("adam", "True", "[1,2]")."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def sort_key(text: str) -> tuple[int, float, str]:
    """Numbers first in numeric order (2 < 10), then the rest alphabetically."""
    value = number(text)
    return (0, value, "") if value is not None else (1, 0.0, str(text))


def label(overrides: dict[str, str] | None, keys: Iterable[str]) -> str:
    """ "batch_size=32, max_epochs=2": short names for the keys that matter (legends, titles)."""
    keys = list(keys)
    names = [k.rpartition(".")[2] for k in keys]
    names = names if len(set(names)) == len(names) else keys  # "lr" twice: say which one
    return ", ".join(
        f"{n}={(overrides or {}).get(k, NOT_SET)}" for n, k in zip(names, keys, strict=True)
    )


def fmt(value: Any) -> str:
    """4 significant digits for floats, '' for absent values, NaN as 'n/a'."""
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def setting(job: dict[str, Any], key: str) -> str:
    """The job's value of a swept key."""
    return (job["overrides"] or {}).get(key, NOT_SET)


def better(report: dict[str, Any]) -> str:
    """Said wherever the metric is shown: val/loss and val/acc read in opposite directions."""
    return "higher is better" if report["mode"] == "max" else "lower is better"


def read_scalars(run_dir: Path) -> dict[str, Series]:
    """Every scalar of a run, merged over its event files: those in its TensorBoard folder
    (logs/tensorboard/..., named in its metrics.json) and any under the run folder itself."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, Series] = defaultdict(list)
    folders = {p.parent for p in run_dir.rglob("events.out.tfevents.*")}
    recorded = tensorboard_dir(run_dir)
    if recorded is not None:
        folders.add(recorded)
    # the HParams session holds copies of points of the curves (trainkit.tensorboard_views)
    for folder in sorted(f for f in folders if f.name != "hparams"):
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            scalars[tag] += [(e.step, e.value) for e in events.Scalars(tag)]
    return {tag: sorted(points, key=lambda p: p[0]) for tag, points in scalars.items()}


def tensorboard_dir(run_dir: Path) -> Path | None:
    """The TensorBoard folder a run wrote its curves to (its metrics.json says), if it exists."""
    try:
        recorded = json.loads((run_dir / "metrics.json").read_text()).get("tensorboard")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(recorded) if recorded and Path(recorded).is_dir() else None


# -- metrics.json ----------------------------------------------------------------------------
def split_metrics(metrics: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """{"train/loss_epoch": t, "val/acc": t} -> {"train": {"loss": ...}, "val": {"acc": ...}}:
    the epoch values of what a module logged as "<stage>/<name>" (step values left out)."""
    out: dict[str, dict[str, float]] = {}
    for key, value in sorted(metrics.items()):
        stage, _, name = key.partition("/")
        if stage not in STAGES or not name or name.endswith("_step"):
            continue
        out.setdefault(stage, {})[name.removesuffix("_epoch")] = float(value)
    return out


def write_metrics(run_dir: str | Path, summary: Mapping[str, Any]) -> Path:
    """Write the run's metrics.json (atomically, see write_json)."""
    return write_json(Path(run_dir) / "metrics.json", summary)


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Write a JSON file atomically (a temporary file renamed over it): a reader never sees a
    half-written file, even if the process is killed while writing."""
    path = Path(path)
    if path.is_dir():
        raise TrainkitError(f"{path} is a folder, not a file: move it away so that the run can "
                            "write its results there.")  # fmt: skip
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a read-only folder: nothing half-written is left
        tmp.unlink(missing_ok=True)
        raise TrainkitError(f"could not write {path} ({err.strerror or err}).") from err
    return path
