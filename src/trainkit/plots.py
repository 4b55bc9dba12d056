"""Pictures as PNG files: training curves of a run or a sweep, and a sweep report's pictures.

TensorBoard is the place to explore; a PNG is what goes into a report, an issue or a paper, and
it shows the runs of a sweep side by side with the swept settings in the legend. `plot_curves`
reads the TensorBoard event files (every point: size_guidance 0, nothing subsampled) and draws
the training loss by iteration (`train/loss`, with `val/loss` where validation ran) and the
train/val loss and headline metric by epoch (`epoch/*`: the epoch's training mean and its last
validation, the rule of the TensorBoard curves), where runs with different batch sizes
line up. `heatmap` and `line` draw a sweep's metric against its swept parameters.
All drawing uses matplotlib's Agg canvas (no display); no torch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from trainkit.run_files import (
    ReportError,
    better,
    config_metric,
    find_job_dirs,
    fmt,
    label,
    load_job,
    number,
    read_scalars,
    setting,
    swept_parameters,
)


def agg_figure(width: float, height: float) -> Any:
    """A Figure on the Agg canvas: no display, no pyplot global state (safe in a Hydra callback)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def load_runs(path: str | Path) -> list[dict[str, Any]]:
    """The runs under `path` (a sweep folder, a run folder or a bare event folder), labelled by
    their swept overrides; runs without event files are left out."""
    root = Path(path)
    try:
        dirs = find_job_dirs(root)
    except ReportError:
        if not root.is_dir():
            raise
        if not any(root.glob("events.out.tfevents.*")):
            raise ReportError(
                f"{root} holds no runs (job folders with .hydra/) and no TensorBoard event files"
            ) from None
        dirs = [root]  # <run>/tensorboard itself
    jobs = [load_job(d) for d in dirs]
    swept, _ = swept_parameters(jobs)
    runs = [
        {
            "name": j["job"],
            "dir": Path(j["dir"]),
            "label": label(j["overrides"], swept) or j["job"],
            "status": j["status"],
            "scalars": read_scalars(Path(j["dir"])),
        }
        for j in jobs
    ]
    runs = [r for r in runs if r["scalars"]]
    if not runs:
        raise ReportError(
            f"no TensorBoard event files under {root}: is the logger on "
            "(logger=tensorboard) and did the run start?"
        )
    return runs


def plot_curves(path: str | Path, metric: str | None = None) -> list[Path]:
    """Write curves_loss_by_iteration.png and curves_by_epoch.png into `path`; return them.

    metric: the headline metric for the epoch plot ("val/acc" or "acc"); default: the runs'
    `optimized_metric`, or their first non-loss metric when that is a loss.
    """
    root = Path(path)
    runs = load_runs(root)
    if metric is None:
        metric = config_metric(runs[0]["dir"] / ".hydra" / "config.yaml")["optimized_metric"]
    written = []
    if any("train/loss" in r["scalars"] for r in runs):
        written.append(loss_by_iteration(runs, root / "curves_loss_by_iteration.png"))
    if any(t.startswith("epoch/") for r in runs for t in r["scalars"]):
        written.append(by_epoch(runs, headline(runs, metric), root / "curves_by_epoch.png"))
    if not written:
        raise ReportError(
            f"the event files under {root} have neither train/loss nor epoch/* curves"
        )
    return written


def headline(runs: list[dict[str, Any]], metric: str | None) -> str | None:
    """The metric of the right panel: "acc" for val/acc; for a loss (regression) "r2" or so."""
    names = sorted(
        {
            t.partition("_")[2]
            for r in runs
            for t in r["scalars"]
            if t.startswith(("epoch/train_", "epoch/val_"))
        }
        - {"loss"}
    )
    wanted = (metric or "").rpartition("/")[2]
    if wanted in names:
        return wanted
    return next((n for n in ("acc", "r2", "mse") if n in names), names[0] if names else None)


MARKERS = "osD^vPX<>h"


def _styles(n: int) -> list[dict[str, Any]]:
    """A colour, marker and width per run; earlier runs are drawn wider, so runs that share a
    start (same seed, e.g. max_epochs=1 and 2) stay visible underneath the later ones."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if n <= 10 else colormaps["viridis"].resampled(n)
    return [
        {
            "color": cmap(i),
            "marker": MARKERS[i % len(MARKERS)],
            "lw": 1.4 + 2.4 * (n - 1 - i) / max(n - 1, 1),
            "ms": 4 + 5 * (n - 1 - i) / max(n - 1, 1),
        }
        for i in range(n)
    ]


def _legend(
    fig: Any, runs: list[dict[str, Any]], styles: list[dict[str, Any]], kinds: dict[str, str]
) -> None:
    """One legend for the figure: a colour and marker per run (its overrides), a line style per
    kind of curve (train solid, val dashed)."""
    from matplotlib.lines import Line2D

    handles = []
    if len(runs) > 1:
        for run, style in zip(runs, styles, strict=True):
            note = "" if run["status"] == "ok" else f" ({run['status']})"
            handles.append(
                Line2D(
                    [],
                    [],
                    color=style["color"],
                    marker=style["marker"],
                    lw=2,
                    label=run["label"] + note,
                )
            )
    handles += [Line2D([], [], color="0.2", ls=ls, label=name) for name, ls in kinds.items()]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)


def _log_if_wide(ax: Any, values: list[float]) -> None:
    """Losses fall by orders of magnitude: a log axis shows the late part of training too."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if positive and len(positive) == len(values) and max(positive) / min(positive) > 20:
        from matplotlib.ticker import FuncFormatter

        def plain(v: float, _: int) -> str:  # "0.3", not "3x10^-1"; minor ticks 2, 3, 5 only
            return f"{v:g}" if round(v / 10 ** math.floor(math.log10(v))) in (1, 2, 3, 5) else ""

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(plain))
        ax.yaxis.set_minor_formatter(FuncFormatter(plain))


def loss_by_iteration(runs: list[dict[str, Any]], path: Path) -> Path:
    """Training loss against iterations (batches); validation loss as points where it ran."""
    fig = agg_figure(8.5, 4.5)
    ax = fig.add_subplot()
    styles = _styles(len(runs))
    seen: list[float] = []
    for run, style in zip(runs, styles, strict=True):
        for tag, ls, marked in (("train/loss", "-", False), ("val/loss", "--", True)):
            points = run["scalars"].get(tag, [])
            if points:  # validation as points: they show where (how often) it ran
                ax.plot(
                    *zip(*points, strict=True), ls=ls, **style, markevery=None if marked else []
                )
                seen += [v for _, v in points]
    _log_if_wide(ax, seen)
    ax.set(xlabel="iteration (training batches)", ylabel="loss")
    ax.set_title(f"Loss by iteration: {path.parent.name}", fontsize=10)
    ax.grid(alpha=0.3)
    _legend(fig, runs, styles, {"train/loss": "-", "val/loss (points: validations)": "--"})
    fig.savefig(path, dpi=120)
    return path


def by_epoch(runs: list[dict[str, Any]], metric: str | None, path: Path) -> Path:
    """Train (solid) and val (dashed) loss, and the headline metric, against completed epochs."""
    from matplotlib.ticker import MaxNLocator

    names = ["loss"] + ([metric] if metric else [])
    fig = agg_figure(5.5 + 4.0 * len(names), 4.5)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    styles = _styles(len(runs))
    for ax, name in zip(axes, names, strict=True):
        seen: list[float] = []
        for run, style in zip(runs, styles, strict=True):
            for stage, ls in (("train", "-"), ("val", "--")):
                points = run["scalars"].get(f"epoch/{stage}_{name}", [])
                if points:
                    ax.plot(*zip(*points, strict=True), ls=ls, **style)
                    seen += [v for _, v in points]
        if name == "loss":
            _log_if_wide(ax, seen)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="epoch", ylabel=name)
        ax.set_title(f"{name} by epoch", fontsize=10)
        ax.grid(alpha=0.3)
    _legend(fig, runs, styles, {"train: epoch mean": "-", "val: epoch's last validation": "--"})
    fig.suptitle(f"By epoch: {path.parent.name}", fontsize=10)
    fig.savefig(path, dpi=120)
    return path


# -- The pictures of a sweep report (called by trainkit.reports.sweep_report) ----------------


def heatmap(report: dict[str, Any], rows: str, cols: str, path: Path) -> Path:
    """Metric per (rows, cols) cell, annotated; failed cells grey and marked, best cell framed."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle
    from matplotlib.patheffects import withStroke

    rv, cv, best, up = report["swept"][rows], report["swept"][cols], report["best"], report["mode"]
    cells: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for j in report["jobs"]:
        if j["overrides"] is not None:
            cell = (rv.index(setting(j, rows)), cv.index(setting(j, cols)))
            cells.setdefault(cell, []).append(j)
    grid = np.full((len(rv), len(cv)), np.nan)
    for cell, js in cells.items():
        values = [j["value"] for j in js if math.isfinite(j["value"])]
        if values:  # several jobs in one cell (a repeated setting): the best of them
            grid[cell] = max(values) if up == "max" else min(values)
    fig = agg_figure(max(4.5, 2.2 + 1.2 * len(cv)), max(3.0, 1.6 + 0.7 * len(rv)))
    ax = fig.add_subplot()
    cmap = colormaps["viridis" if up == "max" else "viridis_r"].with_extremes(bad="0.85")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto")
    fig.colorbar(image, ax=ax, label=f"{report['metric']} ({better(report)})")
    halo = [withStroke(linewidth=3, foreground="white")]  # black text readable on any colour
    for (r, c), value in np.ndenumerate(grid):
        js = cells.get((r, c), [])
        text = fmt(float(value)) + (f"\n({len(js)} jobs)" if len(js) > 1 else "")
        status = js[0]["status"] if js else "no job"
        ax.text(
            c,
            r,
            text if math.isfinite(value) else status,
            ha="center",
            va="center",
            path_effects=halo,
            fontweight="normal" if math.isfinite(value) else "bold",
            color="firebrick" if not math.isfinite(value) and status == "failed" else "black",
        )
    if best and best["overrides"] is not None:
        corner = (cv.index(setting(best, cols)) - 0.5, rv.index(setting(best, rows)) - 0.5)
        ax.add_patch(Rectangle(corner, 1, 1, fill=False, edgecolor="red", linewidth=3))
    ax.set_xticks(range(len(cv)), cv)
    ax.set_yticks(range(len(rv)), rv)
    ax.set(xlabel=cols, ylabel=rows)
    ax.set_title(
        f"{report['metric']} by {rows} and {cols}"
        + (
            f"\nbest (red frame): job {best['job']}, {label(best['overrides'], [rows, cols])}"
            if best
            else ""
        ),
        fontsize=10,
    )
    fig.savefig(path, dpi=120)
    return path


def line(report: dict[str, Any], key: str, path: Path) -> Path:
    """Metric against the one swept parameter; numeric axis when numeric, failed jobs marked."""
    values, best = report["swept"][key], report["best"]
    xs = [number(v) for v in values]
    numeric = None not in xs
    position = dict(zip(values, xs if numeric else range(len(values)), strict=True))

    def x_of(job: dict[str, Any]) -> float:
        return position[setting(job, key)]

    jobs = [j for j in report["jobs"] if j["overrides"] is not None]
    ok = sorted((j for j in jobs if math.isfinite(j["value"])), key=lambda j: x_of(j))
    bad = [j for j in jobs if not math.isfinite(j["value"])]
    fig = agg_figure(6.4, 4.0)
    ax = fig.add_subplot()
    ax.plot([x_of(j) for j in ok], [j["value"] for j in ok], "o-", label=report["metric"])
    if bad:  # at the bottom edge: they have no value to plot
        ax.plot(
            [x_of(j) for j in bad],
            [0.03] * len(bad),
            "x",
            color="firebrick",
            ms=10,
            mew=2,
            transform=ax.get_xaxis_transform(),
            label="failed / no value",
        )
    if best and best["overrides"] is not None:
        ax.plot(
            [x_of(best)], [best["value"]], "*", color="red", ms=16, label=f"best: job {best['job']}"
        )
    if numeric and min(xs) > 0 and max(xs) / min(xs) >= 100:  # learning rates, weight decays
        ax.set_xscale("log")
    ax.set_xticks(list(position.values()), values)
    ax.set(xlabel=key, ylabel=report["metric"])
    ax.set_title(f"{report['metric']} by {key} ({better(report)})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    return path
