"""The pictures of a sweep report (called by trainkit.reports.sweep_report): the metric by two
swept parameters (heatmap.png) or by one (line.png). With seeds swept, a cell or point is a
configuration: the mean over its seeds, ± one standard deviation, and n (trainkit.seeds).
Drawn on matplotlib's Agg canvas (no display, no pyplot state); no torch."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from trainkit.plots import agg_figure
from trainkit.run_files import better, fmt, label, number, setting
from trainkit.seeds import mean_std, over, summary


def _cell_values(jobs: list[dict[str, Any]]) -> list[float]:
    return [j["value"] for j in jobs if j["status"] == "ok" and math.isfinite(j["value"])]


def heatmap(report: dict[str, Any], rows: str, cols: str, path: Path) -> Path:
    """Metric per (rows, cols) cell, annotated; failed cells grey and marked, best cell framed.
    With seeds swept (report["configs"]), a cell is a configuration: its mean, ± std and n."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle
    from matplotlib.patheffects import withStroke

    rv, cv, up = report["swept"][rows], report["swept"][cols], report["mode"]
    seeds = report.get("configs") is not None
    cells: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for j in report["jobs"]:
        if j["overrides"] is not None:
            cell = (rv.index(setting(j, rows)), cv.index(setting(j, cols)))
            cells.setdefault(cell, []).append(j)
    grid = np.full((len(rv), len(cv)), np.nan)
    texts: dict[tuple[int, int], str] = {}
    for cell, js in cells.items():
        values = _cell_values(js)
        if values and seeds:
            stats = summary(values)
            grid[cell] = stats["mean"]
            texts[cell] = mean_std(stats, n=False).replace(" ± ", "\n± ") + f"\nn={len(values)}"
        elif values:  # several jobs in one cell (a repeated setting): the best of them
            grid[cell] = max(values) if up == "max" else min(values)
            texts[cell] = fmt(float(grid[cell])) + (f"\n({len(js)} jobs)" if len(js) > 1 else "")
    fig = agg_figure(
        max(4.5, 2.2 + 1.3 * len(cv)), max(3.0, 1.6 + (1.0 if seeds else 0.7) * len(rv))
    )
    ax = fig.add_subplot()
    cmap = colormaps["viridis" if up == "max" else "viridis_r"].with_extremes(bad="0.85")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto")
    what = report["metric"] + (f" (mean over {over(report['repeats'])})" if seeds else "")
    fig.colorbar(image, ax=ax, label=f"{what} ({better(report)})")
    halo = [withStroke(linewidth=3, foreground="white")]  # black text readable on any colour
    for (r, c), value in np.ndenumerate(grid):
        js = cells.get((r, c), [])
        status = js[0]["status"] if js else "no job"
        ax.text(
            c,
            r,
            texts[r, c] if math.isfinite(value) else status,
            ha="center",
            va="center",
            path_effects=halo,
            fontweight="normal" if math.isfinite(value) else "bold",
            color="firebrick" if not math.isfinite(value) and status == "failed" else "black",
        )
    best = _best_settings(report)
    if best:
        corner = (cv.index(best[cols]) - 0.5, rv.index(best[rows]) - 0.5)
        ax.add_patch(Rectangle(corner, 1, 1, fill=False, edgecolor="red", linewidth=3))
    ax.set_xticks(range(len(cv)), cv)
    ax.set_yticks(range(len(rv)), rv)
    ax.set(xlabel=cols, ylabel=rows)
    ax.set_title(f"{what} by {rows} and {cols}" + _best_title(report, [rows, cols]), fontsize=10)
    fig.savefig(path, dpi=120)
    return path


def _best_settings(report: dict[str, Any]) -> dict[str, str] | None:
    """The swept settings of the best job, or of the best configuration when seeds are swept."""
    if report.get("configs") is not None:
        return report["best_config"]["settings"] if report["best_config"] else None
    best = report["best"]
    return best["overrides"] if best and best["overrides"] is not None else None


def _best_title(report: dict[str, Any], keys: list[str]) -> str:
    if report.get("configs") is not None and report["best_config"]:
        config = report["best_config"]
        return f"\nbest (red): {label(config['settings'], keys)}, {mean_std(config)}"
    if report.get("configs") is None and report["best"]:
        best = report["best"]
        return f"\nbest (red frame): job {best['job']}, {label(best['overrides'], keys)}"
    return ""


def line(report: dict[str, Any], key: str, path: Path) -> Path:
    """Metric against the one swept parameter; numeric axis when numeric, failed jobs marked.
    With seeds swept: the mean over the seeds, with ± one standard deviation as error bars."""
    values = report["swept"][key]
    xs = [number(v) for v in values]
    numeric = None not in xs
    position = dict(zip(values, xs if numeric else range(len(values)), strict=True))

    def x_of(job: dict[str, Any]) -> float:
        return position[setting(job, key)]

    jobs = [j for j in report["jobs"] if j["overrides"] is not None]
    fig = agg_figure(6.4, 4.0)
    ax = fig.add_subplot()
    if report.get("configs") is not None:
        points = []
        for v in values:
            stats = summary(_cell_values([j for j in jobs if setting(j, key) == v]))
            if stats["n"]:
                std = 0.0 if math.isnan(stats["std"]) else stats["std"]
                points.append((position[v], stats["mean"], std))
                ax.annotate(f"n={stats['n']}", (position[v], stats["mean"]), fontsize=8,
                            xytext=(6, -12), textcoords="offset points")  # fmt: skip
        ax.margins(x=0.12)  # room for the n= labels
        if points:
            x, mean, std = zip(*points, strict=True)
            ax.errorbar(
                x, mean, yerr=std, fmt="o-", capsize=4, label=f"{report['metric']} (mean ± std)"
            )
        bad = [v for v in values if not _cell_values([j for j in jobs if setting(j, key) == v])]
        bad_x = [position[v] for v in bad]
    else:
        ok = sorted((j for j in jobs if _cell_values([j])), key=x_of)
        ax.plot([x_of(j) for j in ok], [j["value"] for j in ok], "o-", label=report["metric"])
        bad_x = [x_of(j) for j in jobs if not _cell_values([j])]
    if bad_x:  # at the bottom edge: they have no value to plot
        ax.plot(
            bad_x,
            [0.03] * len(bad_x),
            "x",
            color="firebrick",
            ms=10,
            mew=2,
            transform=ax.get_xaxis_transform(),
            label="failed / no value",
        )
    best = _best_settings(report)
    if best:
        x = position[best[key]]
        y = (
            report["best_config"]["mean"]
            if report.get("configs") is not None
            else report["best"]["value"]
        )
        who = "best" if report.get("configs") is not None else f"best: job {report['best']['job']}"
        ax.plot([x], [y], "*", color="red", ms=16, label=who)
    if numeric and min(xs) > 0 and max(xs) / min(xs) >= 100:  # learning rates, weight decays
        ax.set_xscale("log")
    ax.set_xticks(list(position.values()), values)
    ax.set(xlabel=key, ylabel=report["metric"])
    mean = f", mean ± std over the {over(report['repeats'])}" if report.get("configs") else ""
    ax.set_title(f"{report['metric']} by {key}{mean} ({better(report)})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    return path
