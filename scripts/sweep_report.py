"""Summarise a Hydra multirun: `python scripts/sweep_report.py logs/train/multiruns/<time>`.

Writes report.md (a Markdown table of every job, the swept parameters, the best job),
report.csv, and heatmap.png (two swept parameters) or line.png (one) into the sweep folder;
with `seed` swept, configurations ranked by their mean over seeds and report_by_config.csv.
"""

from __future__ import annotations

import argparse
import sys

from trainkit.reports import sweep_report
from trainkit.run_files import ReportError, fmt, label
from trainkit.seeds import config_label, mean_std


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a multirun folder (logs/train/multiruns/<time>)")
    parser.add_argument(
        "--metric",
        help="metric to compare, e.g. val/acc or test/loss (default: the jobs' optimized_metric)",
    )
    parser.add_argument(
        "--mode",
        choices=("max", "min"),
        help="whether higher or lower is better (default: from the config)",
    )
    args = parser.parse_args(argv)
    try:
        report = sweep_report(args.sweep_dir, metric=args.metric, mode=args.mode)
    except (ReportError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    statuses = [j["status"] for j in report["jobs"]]
    print(
        f"{len(statuses)} job(s): "
        + ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
    )
    best = report["best"]
    if report["best_config"]:  # seeds swept: configurations ranked by their mean
        config = report["best_config"]
        print(f"best by {report['metric']}: {config_label(config)} = {mean_std(config)}")
    elif best:
        where = label(best["overrides"], report["swept"]) or best["dir"]
        print(f"best by {report['metric']}: job {best['job']} ({where}) = {fmt(best['value'])}")
    else:
        print(f"no job has a value for {report['metric']}")
    for path in report["files"]:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
