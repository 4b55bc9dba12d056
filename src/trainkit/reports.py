"""Sweep reports: a table, a CSV and one picture per multirun, so that a sweep answers its question.

`python train.py -m data.batch_size=32,128 trainer.max_epochs=1,2` leaves one folder per job.
`sweep_report(sweep_dir)` reads every job (overrides, status, final metrics, iteration counts),
finds the swept parameters (override keys whose values differ) and writes into the sweep folder
report.md, report.csv and heatmap.png (two swept parameters) or line.png (one), which
trainkit.plots draws. Only stdlib, yaml/omegaconf and matplotlib: no torch, it takes a second.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from trainkit.run_files import (
    STAGES,
    ReportError,
    better,
    find_job_dirs,
    fmt,
    label,
    load_job,
    setting,
    swept_parameters,
)

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
        from trainkit import plots  # all drawing lives there (matplotlib, Agg)

        report["why_no_picture"] = None
        if len(keys) == 2:  # the parameter with more values goes across (ties: the first one)
            cols, rows = keys if len(swept[keys[0]]) >= len(swept[keys[1]]) else keys[::-1]
            report["picture"] = str(plots.heatmap(report, rows, cols, root / "heatmap.png"))
        else:
            report["picture"] = str(plots.line(report, keys[0], root / "line.png"))
    write_csv(report, root / "report.csv")
    (root / "report.md").write_text(markdown(report))
    report["files"] = [str(root / "report.md"), str(root / "report.csv"), report["picture"]]
    report["files"] = [f for f in report["files"] if f]
    return report


def objective(job: dict[str, Any], metric: str) -> float:
    """Same rule as trainkit.training.optimized_value, so the report agrees with the sweeper."""
    if job["status"] in ("failed", "missing"):
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
