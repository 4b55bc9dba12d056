"""Seeds (and cross-validation folds) as a dimension of a sweep: the jobs that differ only in
their `seed` or `data.fold` are one configuration, reported as the mean ± standard deviation over
its seeds (folds), with n.

`python train.py -m data.batch_size=32,128 seed=1,2,3` is two configurations of three seeds; the
report ranks configurations by their mean (trainkit.reports), its heatmap and line plot show
mean ± std per cell (trainkit.plots), and the curve plots draw each configuration's mean curve
with a band of ± one standard deviation.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from trainkit.run_files import fmt, label, setting

SEED = "seed"
REPEATS = (SEED, "data.fold")  # keys whose values repeat a configuration rather than change it
WORDS = {SEED: "seeds", "data.fold": "folds"}


def repeat_keys(swept: dict[str, list[str]]) -> list[str]:
    """The swept keys that repeat a configuration: `seed`, `data.fold` (k-fold validation)."""
    return [k for k in REPEATS if k in swept]


def over(keys: list[str]) -> str:
    """What a configuration's mean is over: "seeds", "folds" or "seeds and folds"."""
    return " and ".join(WORDS[k] for k in keys)


def configurations(
    jobs: list[dict[str, Any]], swept: dict[str, list[str]], mode: str
) -> list[dict[str, Any]] | None:
    """The jobs grouped by every swept key but `seed` and `data.fold`, best mean first; None
    when neither is swept. Each: {"settings": {key: value}, "jobs": [job numbers], "seeds" (each
    job's seed, or fold, or "seed/fold"), "n" (jobs with a value), "mean", "std" (sample
    standard deviation; NaN below 2 values), "rank"}."""
    repeats = repeat_keys(swept)
    if not repeats:
        return None
    keys = [k for k in swept if k not in repeats]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for job in jobs:
        if job["overrides"] is not None:
            groups.setdefault(tuple(setting(job, k) for k in keys), []).append(job)
    configs = []
    for values, members in groups.items():
        scores = [j["value"] for j in members if j["status"] == "ok" and math.isfinite(j["value"])]
        configs.append(
            {
                "settings": dict(zip(keys, values, strict=True)),
                "jobs": [j["job"] for j in members],
                "seeds": ["/".join(setting(j, k) for k in repeats) for j in members],
                **summary(scores),
                "rank": None,
            }
        )
    ranked = sorted((c for c in configs if c["n"]), key=lambda c: c["mean"], reverse=mode == "max")
    for rank, config in enumerate(ranked, 1):
        config["rank"] = rank
    return ranked + [c for c in configs if not c["n"]]


def summary(values: list[float]) -> dict[str, Any]:
    """n, mean and sample standard deviation of `values` (NaN where undefined)."""
    return {
        "n": len(values),
        "mean": statistics.fmean(values) if values else math.nan,
        "std": statistics.stdev(values) if len(values) > 1 else math.nan,
    }


def mean_std(stats: dict[str, Any], n: bool = True) -> str:
    """ "0.9123 ± 0.0042 (n=3)"; one value: "0.9123 (n=1)"; none: "n/a"."""
    if not stats["n"]:
        return "n/a"
    text = fmt(stats["mean"])
    if stats["n"] > 1:
        text += f" ± {fmt(stats['std'])}"
    return text + (f" (n={stats['n']})" if n else "")


def config_label(config: dict[str, Any]) -> str:
    """ "batch_size=32" (the configuration's settings), or "every job" when only the seed
    varies."""
    return label(config["settings"], config["settings"]) or "every job"


def stage_stats(jobs: list[dict[str, Any]], config: dict[str, Any], metric: str) -> dict[str, Any]:
    """Mean, std and n of `metric` ("test/acc") over the configuration's finished jobs."""
    stage, _, name = metric.partition("/")
    values = [
        float(j[stage][name])
        for j in jobs
        if j["job"] in config["jobs"] and j["status"] == "ok" and name in j.get(stage, {})
    ]
    return summary(values)
