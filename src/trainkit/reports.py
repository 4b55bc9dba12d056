"""Sweep reports: a table, a CSV and one picture per multirun, so that a sweep answers its question.

`python train.py -m data.batch_size=32,128 trainer.max_epochs=1,2` leaves one folder per job.
`sweep_report(sweep_dir)` reads every job (overrides, status, final metrics, iteration counts),
finds the swept parameters (override keys whose values differ) and writes into the sweep folder
report.md (trainkit.report_markdown), report.csv and heatmap.png (two swept parameters) or
line.png (one), which trainkit.plots draws. A swept `seed` is a dimension of its own
(trainkit.seeds): configurations are ranked by their mean over seeds, report_by_config.csv has
one row each, and the pictures show mean ± std. Jobs a sweep planned but never started are
rows too. Only stdlib, yaml/omegaconf and matplotlib: no torch, it takes a second.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from trainkit.run_files import (
    NOT_STARTED,
    STAGES,
    ReportError,
    find_job_dirs,
    load_sweep,
    setting,
    swept_parameters,
)
from trainkit.seeds import REPEATS, config_label, configurations, repeat_keys, stage_stats

__all__ = ["ReportError", "find_job_dirs", "objective", "sweep_report"]

LOWER_IS_BETTER = ("loss", "mse", "mae", "rmse", "err", "perplexity")
SOURCE = (
    "the value each job returned to the sweeper: the best checkpoint's score when the "
    "checkpoint monitors this metric, else the final value"
)


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
    jobs, planned = load_sweep(root)
    metric = metric or next(
        (j["optimized_metric"] for j in jobs if j["optimized_metric"]), "val/loss"
    )
    mode = mode or next((j["monitor_mode"] for j in jobs if j["monitor"] == metric), None)
    mode = mode or ("min" if any(t in metric.partition("/")[2] for t in LOWER_IS_BETTER) else "max")
    if mode not in ("min", "max"):
        raise ReportError(f"mode must be 'min' or 'max', not {mode!r}")
    for job in jobs:
        job["value"] = objective(job, metric)
    ranked = sorted(  # pruned and interrupted jobs show their value but are not ranked
        (j for j in jobs if j["status"] == "ok" and math.isfinite(j["value"])),
        key=lambda j: j["value"],
        reverse=mode == "max",
    )
    for rank, job in enumerate(ranked, 1):
        job["rank"] = rank
    swept, constant = swept_parameters(jobs)
    configs = configurations(jobs, swept, mode)
    report = {
        "sweep_dir": str(root),
        "metric": metric,
        "mode": mode,
        "swept": swept,
        "constant": constant,
        "jobs": jobs,
        "planned": planned,
        "best": ranked[0] if ranked else None,
        "configs": configs,
        "best_config": configs[0] if configs and configs[0]["rank"] else None,
        "picture": None,
    }
    keys = [k for k in swept if configs is None or k not in REPEATS]  # these: mean ± std
    report["axes"], report["repeats"] = keys, repeat_keys(swept)
    besides = " and ".join(f"the {k}" for k in report["repeats"])
    report["why_no_picture"] = (
        f"{len(keys)} swept parameters{f' besides {besides}' if configs else ''}; a line plot "
        "needs one, a heatmap two"
    )
    cells = math.prod(len(swept[k]) for k in keys)
    if len(keys) == 2 and configs is None and cells > 2 * len(jobs):  # Optuna: values once
        report["why_no_picture"] = (
            f"the swept values do not form a grid: {len(jobs)} jobs for {cells} cells"
        )
    elif len(keys) in (1, 2):
        from trainkit import sweep_plots as plots  # matplotlib, Agg

        report["why_no_picture"] = None
        if len(keys) == 2:  # the parameter with more values goes across (ties: the first one)
            cols, rows = keys if len(swept[keys[0]]) >= len(swept[keys[1]]) else keys[::-1]
            report["picture"] = str(plots.heatmap(report, rows, cols, root / "heatmap.png"))
        else:
            report["picture"] = str(plots.line(report, keys[0], root / "line.png"))
    from trainkit.report_markdown import markdown

    files = [root / "report.md", root / "report.csv"]
    write_csv(table(report), files[1])
    if configs is not None:
        files.append(root / "report_by_config.csv")
        write_csv(config_table(report), files[-1])
    write_text(files[0], markdown(report))
    report["files"] = [str(f) for f in files] + ([report["picture"]] if report["picture"] else [])
    return report


def objective(job: dict[str, Any], metric: str) -> float:
    """Same rule as trainkit.training.optimized_value, so the report agrees with the sweeper."""
    if job["status"] in ("failed", "missing", NOT_STARTED):
        return math.nan
    if job.get("monitor") == metric and isinstance(job.get("best_score"), (int, float)):
        return float(job["best_score"])
    stage, _, name = metric.partition("/")
    value = job.get(stage, {}).get(name) if stage in STAGES else None
    return float(value) if isinstance(value, (int, float)) else math.nan


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


def config_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per configuration (the jobs that differ only in their seed or fold), best first:
    mean, std and n of the objective and of each test metric; report_by_config.csv."""
    jobs = report["jobs"]
    tests = [f"test/{n}" for n in sorted({n for j in jobs for n in j["test"]})]
    rows = []
    for config in report["configs"]:
        row = {"rank": config["rank"], **config["settings"], "configuration": config_label(config)}
        row.update(n=config["n"], jobs=len(config["jobs"]), metric=report["metric"])
        row.update(objective_mean=config["mean"], objective_std=config["std"])
        for metric in tests:
            stats = stage_stats(jobs, config, metric)
            row.update({f"{metric}_mean": stats["mean"], f"{metric}_std": stats["std"]})
        row.update(job_numbers=" ".join(config["jobs"]), seeds=" ".join(config["seeds"]))
        rows.append(row)
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Full precision, '' for absent values: for pandas and spreadsheets."""
    with path.open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        out.writeheader()
        for row in rows:
            out.writerow(
                {
                    k: "" if v is None or (isinstance(v, float) and math.isnan(v)) else v
                    for k, v in row.items()
                }
            )


def write_text(path: Path, text: str) -> None:
    """Replace `path` at once (a report interrupted while written leaves the previous one)."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
