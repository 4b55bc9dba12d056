"""Pictures as PNG files: training curves of a run or a sweep, and a sweep report's pictures.

TensorBoard is the place to explore; a PNG is what goes into a report, an issue or a paper, and
it shows the runs of a sweep side by side with the swept settings in the legend. `plot_curves`
reads the TensorBoard event files (every point: size_guidance 0, nothing subsampled) and draws
the training loss by iteration (`train/loss`, a regression's `train/mse`, with the validation
loss where validation ran) and the train/val loss and headline metric by epoch (`epoch/*`: the
epoch's training mean and its last validation, the rule of the TensorBoard curves), where runs
with different batch sizes line up. With seeds swept, each configuration is one curve: the mean
over its seeds, with a band of ± one standard deviation. (A sweep report's heatmap and line
plot: trainkit.sweep_plots.) All drawing uses matplotlib's Agg canvas (no display); no torch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from trainkit.run_files import (
    ReportError,
    config_metric,
    find_job_dirs,
    label,
    load_job,
    read_scalars,
    setting,
    swept_parameters,
)
from trainkit.seeds import over, repeat_keys, summary


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
            "overrides": j["overrides"],
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
    return by_configuration(runs, swept) if repeat_keys(swept) else runs


def by_configuration(runs: list[dict[str, Any]], swept: dict[str, list[str]]) -> list[dict]:
    """One curve per configuration (the runs that differ only in their seed or fold): at each
    step the mean over the runs that logged it, and ("bands") their standard deviation."""
    repeats = repeat_keys(swept)
    keys = [k for k in swept if k not in repeats]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(tuple(setting(run, k) for k in keys), []).append(run)
    merged = []
    for members in groups.values():
        scalars, bands = {}, {}
        for tag in sorted({t for r in members for t in r["scalars"]}):
            at: dict[int, list[float]] = {}
            for run in members:
                for x, value in run["scalars"].get(tag, []):
                    at.setdefault(x, []).append(value)
            stats = {x: summary(at[x]) for x in sorted(at)}
            scalars[tag] = [(x, s["mean"]) for x, s in stats.items()]
            bands[tag] = [(x, 0.0 if math.isnan(s["std"]) else s["std"]) for x, s in stats.items()]
        first = members[0]
        statuses = {r["status"] for r in members}
        merged.append(
            {
                **first,
                "name": ",".join(r["name"] for r in members),
                "label": (label(first["overrides"], keys) or "every job")
                + f" (mean ± std of {len(members)} {over(repeats)})",
                "status": "ok" if statuses == {"ok"} else "/".join(sorted(statuses)),
                "scalars": scalars,
                "bands": bands,
            }
        )
    return merged


def _plot(
    ax: Any, run: dict[str, Any], tag: str, ls: str, style: dict[str, Any], **kw: Any
) -> list:
    """One curve of a run (with its ± std band for a configuration of seeds); its values."""
    points = run["scalars"].get(tag, [])
    if not points:
        return []
    xs, ys = zip(*points, strict=True)
    ax.plot(xs, ys, ls=ls, **style, **kw)
    band = dict(run.get("bands", {}).get(tag, []))
    if band:
        low = [y - band[x] for x, y in points]
        high = [y + band[x] for x, y in points]
        ax.fill_between(xs, low, high, color=style["color"], alpha=0.18, lw=0)
    return list(ys)


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
    loss = loss_name(runs)
    if loss is not None:
        written.append(loss_by_iteration(runs, loss, root / "curves_loss_by_iteration.png"))
    if any(t.startswith("epoch/") for r in runs for t in r["scalars"]):
        picture = root / "curves_by_epoch.png"
        written.append(by_epoch(runs, loss or "loss", headline(runs, metric), picture))
    if not written:
        raise ReportError(
            f"the event files under {root} have neither train/loss (train/mse) nor epoch/* curves"
        )
    return written


def loss_name(runs: list[dict[str, Any]]) -> str | None:
    """The name the runs log their training loss under: "loss", or a regression's "mse"."""
    return next((n for n in LOSSES if any(f"train/{n}" in r["scalars"] for r in runs)), None)


LOSSES = ("loss", "mse")


def headline(runs: list[dict[str, Any]], metric: str | None) -> str | None:
    """The metric of the right panel: "acc" for val/acc; for a regression "r2" or so."""
    names = sorted(
        {
            t.partition("_")[2]
            for r in runs
            for t in r["scalars"]
            if t.startswith(("epoch/train_", "epoch/val_"))
        }
        - set(LOSSES)
    )
    wanted = (metric or "").rpartition("/")[2]
    if wanted in names:
        return wanted
    return next((n for n in ("acc", "r2") if n in names), names[0] if names else None)


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


def loss_by_iteration(runs: list[dict[str, Any]], loss: str, path: Path) -> Path:
    """Training loss (logged as `loss`, a regression's as `mse`) against iterations (batches);
    validation loss as points where it ran."""
    fig = agg_figure(8.5, 4.5)
    ax = fig.add_subplot()
    styles = _styles(len(runs))
    seen: list[float] = []
    for run, style in zip(runs, styles, strict=True):
        for tag, ls, marked in ((f"train/{loss}", "-", False), (f"val/{loss}", "--", True)):
            # validation as points: they show where (how often) it ran
            seen += _plot(ax, run, tag, ls, style, markevery=None if marked else [])
    _log_if_wide(ax, seen)
    ax.set(xlabel="iteration (training batches)", ylabel=loss)
    ax.set_title(f"Loss by iteration: {path.parent.name}", fontsize=10)
    ax.grid(alpha=0.3)
    _legend(fig, runs, styles, {f"train/{loss}": "-", f"val/{loss} (points: validations)": "--"})
    fig.savefig(path, dpi=120)
    return path


def by_epoch(runs: list[dict[str, Any]], loss: str, metric: str | None, path: Path) -> Path:
    """Train (solid) and val (dashed) loss, and the headline metric, against completed epochs."""
    from matplotlib.ticker import MaxNLocator

    names = [loss] + ([metric] if metric else [])
    fig = agg_figure(5.5 + 4.0 * len(names), 4.5)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    styles = _styles(len(runs))
    for ax, name in zip(axes, names, strict=True):
        seen: list[float] = []
        for run, style in zip(runs, styles, strict=True):
            for stage, ls in (("train", "-"), ("val", "--")):
                seen += _plot(ax, run, f"epoch/{stage}_{name}", ls, style)
        if name == loss:
            _log_if_wide(ax, seen)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="epoch", ylabel=name)
        ax.set_title(f"{name} by epoch", fontsize=10)
        ax.grid(alpha=0.3)
    _legend(fig, runs, styles, {"train: epoch mean": "-", "val: epoch's last validation": "--"})
    fig.suptitle(f"By epoch: {path.parent.name}", fontsize=10)
    fig.savefig(path, dpi=120)
    return path
