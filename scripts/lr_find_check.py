"""Does `tune.lr_find=true` cost accuracy? `python scripts/lr_find_check.py`.

Trains each default model (the README's commands: the CNN for 5 epochs on the digits, the
linear regression, the text model) with and without the LR finder, for each seed, in-process,
and prints the learning rate each run trained with and its test figure (accuracy; R² for the
regression), then the means over the seeds. Run folders go to a temporary directory.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "logger=none"]
MODELS = {
    "cnn": ["model=cnn", "trainer.max_epochs=5"],
    "regression": ["model=regression"],
    "text": ["model=text"],
}


def run(overrides: list[str], out_dir: Path) -> tuple[float, float]:
    """(the learning rate the run trained with, its test accuracy or R²)."""
    from trainkit.cli import compose_config
    from trainkit.training import train

    out_dir.mkdir(parents=True)
    summary = train(compose_config(ROOT / "conf", [*overrides, *QUIET], out_dir))
    lr = (summary.get("tuned") or {}).get("lr", summary.get("config", {}).get("lr"))
    test = summary["test"]
    return lr, test.get("acc", test.get("r2"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 0, 1])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    print(f"{'model':10s} {'seed':>4s}  {'lr':>9s} {'test':>6s}  {'lr_find lr':>10s} {'test':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            plain, tuned = [], []
            for seed in args.seeds:
                base = [*MODELS[model], f"seed={seed}"]
                _, without = run(base, Path(tmp) / f"{model}{seed}")
                lr, with_finder = run([*base, "tune.lr_find=true"], Path(tmp) / f"{model}{seed}f")
                plain.append(without)
                tuned.append(with_finder)
                print(f"{model:10s} {seed:4d}  {'config':>9s} {without:6.4f}  {lr:10.3g} "
                      f"{with_finder:6.4f}", flush=True)  # fmt: skip
            print(f"{model:10s} mean  {'':9s} {statistics.fmean(plain):6.4f}  {'':10s} "
                  f"{statistics.fmean(tuned):6.4f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
