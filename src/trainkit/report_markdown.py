"""report.md of a sweep (trainkit.reports.sweep_report builds the facts, this writes them):
what was swept, the metric, the best job (or configuration, when seeds are swept), the picture,
the configurations' mean ± std, every job, and what did not finish."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainkit.run_files import NOT_STARTED, better, fmt, label
from trainkit.seeds import config_label, mean_std, over, stage_stats

HIDDEN = ("metric", "error", "overrides", "dir")  # in report.csv only


def markdown(report: dict[str, Any]) -> str:
    """report.md: what was swept, the metric, the best job, the picture, then the tables."""
    from trainkit.reports import COUNTS, SOURCE, table

    jobs, swept, metric, best = report["jobs"], report["swept"], report["metric"], report["best"]
    statuses = [j["status"] for j in jobs]
    unasked = report["planned"] - len(jobs)  # an Optuna sweep stopped before asking them
    lines = [
        f"# Sweep report: {Path(report['sweep_dir']).name}",
        "",
        f"`{report['sweep_dir']}`: {len(jobs)} job(s), "
        + ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
        + (f"; {unasked} more planned, not started" if unasked > 0 else "")
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
    if report["configs"] is not None:
        lines += headline_by_seeds(report)
    elif best:
        where = label(best["overrides"], swept) or "no swept parameters"
        lines.append(
            f"**Best job: `{best['job']}`** ({where}): {metric} = {fmt(best['value'])}"
            f", `{best['dir']}`."
        )
    else:
        lines.append(f"**Best job: none** (no job has a value for {metric}).")
    axes = report["axes"]
    lines.append(
        f"Picture: `{Path(report['picture']).name}` ({metric} by "
        + " and ".join(f"`{k}`" for k in axes)
        + (f", mean ± std over the {over(report['repeats'])}" if report["configs"] else "")
        + ")."
        if report["picture"]
        else f"Picture: none ({report['why_no_picture']})."
    )
    rows = table(report)
    names = {"objective": "**objective**", **COUNTS}
    columns = [c for c in rows[0] if c not in HIDDEN]
    lines += ["", "## Jobs", ""] if report["configs"] is not None else [""]
    lines += [
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
            if j["status"] not in ("ok", NOT_STARTED)
        ]
        waiting = [j["job"] for j in jobs if j["status"] == NOT_STARTED]
        if waiting:
            lines.append(
                f"- not started: {', '.join(f'`{n}`' for n in waiting)} (the same command "
                f"with `hydra.sweep.dir={report['sweep_dir']}` runs them)"
            )
    return "\n".join(lines) + "\n"


def headline_by_seeds(report: dict[str, Any]) -> list[str]:
    """The best configuration and the configurations ranked by their mean over seeds."""
    metric, jobs, configs = report["metric"], report["jobs"], report["configs"]
    best = report["best_config"]
    if best:
        lines = [
            f"**Best configuration: {config_label(best)}**: {metric} = {mean_std(best)} "
            f"over the {over(report['repeats'])} "
            f"(jobs {', '.join(f'`{n}`' for n in best['jobs'])}).",
        ]
    else:
        lines = [f"**Best configuration: none** (no job has a value for {metric})."]
    test = f"test/{metric.partition('/')[2]}"
    show_test = test != metric and any(metric.partition("/")[2] in j["test"] for j in jobs)
    keys = list(configs[0]["settings"]) if configs else []
    header = ["rank", *keys, f"**{metric}** (mean ± std)"]
    header += [f"{test} (mean ± std)"] if show_test else []
    header += ["n", "/".join(report["repeats"])]
    lines += [
        "",
        f"## Configurations, ranked by their mean over {over(report['repeats'])} "
        f"({better(report)})",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for config in configs:
        cells = [fmt(config["rank"]), *config["settings"].values(), mean_std(config, n=False)]
        if show_test:
            cells.append(mean_std(stage_stats(jobs, config, test), n=False))
        cells += [f"{config['n']} of {len(config['jobs'])}", ", ".join(config["seeds"])]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    return lines
