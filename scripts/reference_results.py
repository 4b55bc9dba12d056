"""The README's reference results, measured: `python scripts/reference_results.py`.

Runs the README's commands in-process on the bundled data (seed 42, the repo's default configs)
and prints one line each: the CNN on the digits in 5 epochs, linear regression on y = 2x + 1,
and the text model on the synthetic corpus as a bag of words (data.ngrams=1) and as words +
hashed bigrams (the default), plus the stronger text recipe (experiment=text_synthetic).
Each run's folder goes to a temporary directory.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
RUNS = {
    "python train.py model=cnn trainer.max_epochs=5": ["model=cnn", "trainer.max_epochs=5"],
    "python train.py model=regression": ["model=regression"],
    "python train.py model=text data.ngrams=1": ["model=text", "data.ngrams=1"],
    "python train.py model=text": ["model=text"],
    "python train.py experiment=text_synthetic": ["experiment=text_synthetic"],
}


def run(overrides: list[str], out_dir: Path) -> dict:
    from trainkit.cli import compose_config
    from trainkit.training import train

    out_dir.mkdir(parents=True)
    return train(compose_config(ROOT / "conf", [*overrides, *QUIET], out_dir))


def describe(summary: dict) -> str:
    test = summary["test"]
    if "acc" in test:
        return f"test accuracy {test['acc']:.3f} ({summary['epochs']} epochs)"
    report = summary.get("model_report") or {}
    fit = f"test R² {test['r2']:.3f}, RMSE {test['rmse']:.4f}"
    if report.get("weights"):
        return f"slope {report['weights'][0]:.3f}, intercept {report['bias']:.3f}, {fit}"
    return fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only the commands containing this text")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (command, overrides) in enumerate(RUNS.items()):
            if args.only and args.only not in command:
                continue
            summary = run(overrides, Path(tmp) / str(i))
            print(f"{command:55s} {describe(summary)}", flush=True)


if __name__ == "__main__":
    main()
