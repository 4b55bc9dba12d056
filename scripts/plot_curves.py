"""Plot training curves: `python scripts/plot_curves.py logs/train/multiruns/<time>` (or a run).

Reads the TensorBoard event files of a run, or of every job of a sweep, and writes
curves_loss_by_iteration.png and curves_by_epoch.png into that folder.
"""

from __future__ import annotations

import argparse
import sys

from trainkit.run_files import ReportError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a run folder, a multirun folder, or a tensorboard folder")
    parser.add_argument(
        "--metric",
        help="headline metric of the epoch plot, e.g. val/acc "
        "(default: the run's optimized_metric)",
    )
    args = parser.parse_args(argv)
    from trainkit.plots import plot_curves  # after argparse: --help stays instant

    try:
        written = plot_curves(args.path, metric=args.metric)
    except (ReportError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
