"""Sweep reports: a table, a CSV and one picture per multirun, so that a sweep answers its question.

`python train.py -m data.batch_size=32,128 trainer.max_epochs=1,2` leaves one folder per job.
`sweep_report(sweep_dir)` reads every job (overrides, status, final metrics, iteration counts),
finds the swept parameters (override keys whose values differ) and writes into the sweep folder
report.md, report.csv and heatmap.png (two swept parameters) or line.png (one), which
trainkit.curves draws. Only stdlib, yaml/omegaconf and matplotlib: no torch, it takes a second.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from trainkit.errors import TrainkitError

STAGES = ("train", "val", "test")
NOT_SET = "(not set)"  # the value of a swept key in a job that did not override it
LOWER_IS_BETTER = ("loss", "mse", "mae", "rmse", "err", "perplexity")
SOURCE = (
    "the value each job returned to the sweeper: the best checkpoint's score when the "
    "checkpoint monitors this metric, else the final value"
)


class ReportError(TrainkitError):
    """Nothing to report at the given path (a wrong folder, or a sweep with no jobs yet)."""


def sweep_report(
    sweep_dir: str | Path, metric: str | None = None, mode: str | None = None
) -> dict[str, Any]:
    """Write report.md, report.csv and heatmap.png / line.png into `sweep_dir`; return the facts.

    metric: "val/acc", "test/loss", ...; default: the jobs' `optimized_metric`.
    mode: "max" or "min"; default: `model.monitor_mode` for the monitored metric, else by name.
    Returns {"sweep_dir", "metric", "mode", "swept": {key: sorted values}, "constant": {key:
    value}, "jobs": [job dicts, with "value" and "rank"], "best": job | None, "picture": path |
    None, "files": [paths written]}.
    """
    root = Path(sweep_dir)
    jobs = [load_job(d) for d in find_job_dirs(root)]
    metric = metric or next(
        (j["optimized_metric"] for j in jobs if j["optimized_metric"]), "val/loss"
    )
    mode = mode or next((j["monitor_mode"] for j in jobs if j["monitor"] == metric), None)
    mode = mode or ("min" if any(t in metric.partition("/")[2] for t in LOWER_IS_BETTER) else "max")
    if mode not in ("min", "max"):
        raise ReportError(f"mode must be 'min' or 'max', not {mode!r}")
    for job in jobs:
        job["value"] = objective(job, metric)
    ranked = sorted(
        (j for j in jobs if math.isfinite(j["value"])),
        key=lambda j: j["value"],
        reverse=mode == "max",
    )
    for rank, job in enumerate(ranked, 1):
        job["rank"] = rank
    swept, constant = swept_parameters(jobs)
    report = {
        "sweep_dir": str(root),
        "metric": metric,
        "mode": mode,
        "swept": swept,
        "constant": constant,
        "jobs": jobs,
        "best": ranked[0] if ranked else None,
        "picture": None,
        "why_no_picture": f"{len(swept)} swept parameters; a line plot needs one, a heatmap two",
    }
    keys = list(swept)
    cells = math.prod(len(v) for v in swept.values())
    if len(keys) == 2 and cells > 2 * len(jobs):  # Optuna-like: nearly every value once
        report["why_no_picture"] = (
            f"the swept values do not form a grid: {len(jobs)} jobs for {cells} cells"
        )
    elif len(keys) in (1, 2):
        from trainkit import curves  # all drawing lives there (matplotlib, Agg)

        report["why_no_picture"] = None
        if len(keys) == 2:  # the parameter with more values goes across (ties: the first one)
            cols, rows = keys if len(swept[keys[0]]) >= len(swept[keys[1]]) else keys[::-1]
            report["picture"] = str(curves.heatmap(report, rows, cols, root / "heatmap.png"))
        else:
            report["picture"] = str(curves.line(report, keys[0], root / "line.png"))
    write_csv(report, root / "report.csv")
    (root / "report.md").write_text(markdown(report))
    report["files"] = [str(root / "report.md"), str(root / "report.csv"), report["picture"]]
    report["files"] = [f for f in report["files"] if f]
    return report


def find_job_dirs(path: Path) -> list[Path]:
    """The job folders of a sweep in job order (0, 1, ..., 10), or [path] for a single run."""

    def is_job(d: Path) -> bool:
        return (d / ".hydra" / "overrides.yaml").is_file() or (d / "metrics.json").is_file()

    if not path.is_dir():
        raise ReportError(f"no such folder: {path}")
    if is_job(path):
        return [path]
    jobs = [d for d in path.iterdir() if d.is_dir() and is_job(d)]
    if not jobs:
        raise ReportError(
            f"{path} holds no runs: expected job folders (0/, 1/, ...) with "
            ".hydra/ or metrics.json, as `python train.py -m ...` writes them"
        )
    return sorted(jobs, key=lambda d: sort_key(d.name))


def load_job(job_dir: Path) -> dict[str, Any]:
    """One job as a flat dict; a job that died before writing metrics.json is "missing"."""
    job: dict[str, Any] = {
        "job": job_dir.name,
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


def objective(job: dict[str, Any], metric: str) -> float:
    """Same rule as trainkit.training.optimized_value, so the report agrees with the sweeper."""
    if job["status"] in ("failed", "missing"):
        return math.nan
    if job.get("monitor") == metric and isinstance(job.get("best_score"), (int, float)):
        return float(job["best_score"])
    stage, _, name = metric.partition("/")
    value = job.get(stage, {}).get(name) if stage in STAGES else None
    return float(value) if isinstance(value, (int, float)) else math.nan


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


COUNTS = {
    "iterations_per_epoch": "iters/epoch",
    "optimizer_steps": "optimizer steps",
    "epochs": "epochs",
    "iterations": "iterations",
    "fit_seconds": "fit s",
}


def table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per job, columns in table order; report.csv writes it as is, report.md formats it."""
    jobs = report["jobs"]
    metrics = [f"{s}/{n}" for s in STAGES for n in sorted({n for j in jobs for n in j[s]})]
    return [
        {
            "job": j["job"],
            **{k: setting(j, k) for k in report["swept"]},
            "status": j["status"],
            "rank": j.get("rank"),
            "metric": report["metric"],
            "objective": j["value"],
            **{m: j[m.partition("/")[0]].get(m.partition("/")[2]) for m in metrics},
            **{c: j[c] for c in COUNTS},
            "error": j["error"],
            "overrides": " ".join(f"{k}={v}" for k, v in (j["overrides"] or {}).items()),
            "dir": j["dir"],
        }
        for j in jobs
    ]


def write_csv(report: dict[str, Any], path: Path) -> None:
    """Full precision, '' for absent values: for pandas and spreadsheets."""
    rows = table(report)
    with path.open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        for row in rows:
            out.writerow(
                {
                    k: "" if v is None or (isinstance(v, float) and math.isnan(v)) else v
                    for k, v in row.items()
                }
            )


def markdown(report: dict[str, Any]) -> str:
    """report.md: what was swept, the metric, the best job, the picture, then the table."""
    jobs, swept, metric, best = report["jobs"], report["swept"], report["metric"], report["best"]
    statuses = [j["status"] for j in jobs]
    lines = [
        f"# Sweep report: {Path(report['sweep_dir']).name}",
        "",
        f"`{report['sweep_dir']}`: {len(jobs)} job(s), "
        + ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
        + ".",
        "",
        "Swept: "
        + (
            ", ".join(f"`{k}` ({', '.join(v)})" for k, v in swept.items())
            or "nothing (every job has the same overrides)"
        )
        + ".",
    ]
    if report["constant"]:
        lines.append(
            "Same in every job: "
            + " ".join(f"`{k}={v}`" for k, v in report["constant"].items())
            + "."
        )
    lines += [
        "",
        f"Metric: **{metric}** ({better(report)}); the *objective* column is {SOURCE}.",
        "",
    ]
    if best:
        where = label(best["overrides"], swept) or "no swept parameters"
        lines.append(
            f"**Best job: `{best['job']}`** ({where}): {metric} = {fmt(best['value'])}"
            f", `{best['dir']}`."
        )
    else:
        lines.append(f"**Best job: none** (no job has a value for {metric}).")
    lines.append(
        f"Picture: `{Path(report['picture']).name}` ({metric} by "
        + " and ".join(f"`{k}`" for k in swept)
        + ")."
        if report["picture"]
        else f"Picture: none ({report['why_no_picture']})."
    )
    rows = table(report)
    names = {"objective": "**objective**", **COUNTS}
    columns = [c for c in rows[0] if c not in ("metric", "error", "overrides", "dir")]
    lines += [
        "",
        "| " + " | ".join(names.get(c, c) for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        row["status"] = row["status"] if row["status"] == "ok" else f"**{row['status']}**"
        cells = [fmt(row[c]).replace("|", "\\|") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    if any(s != "ok" for s in statuses):
        lines += ["", "## Jobs that did not finish", ""]
        lines += [
            f"- `{j['job']}` ({label(j['overrides'], swept) or j['dir']}): {j['status']}"
            + (f": {j['error']}" if j["error"] else "")
            for j in jobs
            if j["status"] != "ok"
        ]
    return "\n".join(lines) + "\n"


def setting(job: dict[str, Any], key: str) -> str:
    """The job's value of a swept key."""
    return (job["overrides"] or {}).get(key, NOT_SET)


def better(report: dict[str, Any]) -> str:
    """Said wherever the metric is shown: val/loss and val/acc read in opposite directions."""
    return "higher is better" if report["mode"] == "max" else "lower is better"
