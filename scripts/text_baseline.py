"""TF-IDF + logistic regression on exactly the split trainkit uses, beside trainkit's text model.

    python scripts/text_baseline.py model=text data=text_csv data.path=reviews.csv --train
    python scripts/text_baseline.py model=text data=sentiment_sentences --seeds 42 0 1 --train

The arguments are train.py's overrides. For each seed (the split follows it) the config is
composed as train.py composes it, the DataModule gives its train and test texts, and scikit-learn's
TfidfVectorizer(sublinear_tf=True) + LogisticRegression(C=10) is fitted on the training texts
alone, once on words and once on words + bigrams; the test accuracies are printed. With --train,
trainkit trains on the same config in-process (run folders in a temporary directory, or --out) and
its test accuracy is printed beside them, per seed and as means over the seeds.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
BASELINES = {"LR words": (1, 1), "LR words+bigrams": (1, 2)}


def compose(overrides: list[str], out_dir: Path | None = None):
    """The config `python train.py <overrides>` runs, with its run folder at `out_dir`."""
    from trainkit.cli import compose_config

    return compose_config(ROOT / "conf", overrides, out_dir)


def train_trainkit(overrides: list[str], out_dir: Path) -> dict[str, Any]:
    """trainkit's run of `overrides` (metrics.json's contents), in `out_dir`."""
    from trainkit.training import train

    out_dir.mkdir(parents=True, exist_ok=True)
    return train(compose([*overrides, *QUIET], out_dir))


def datamodule(overrides: list[str]):
    from hydra.utils import instantiate

    return instantiate(compose(overrides).data)


def baseline_accuracies(overrides: list[str]) -> dict[str, float]:
    """Test accuracy of TF-IDF + logistic regression, fitted on the training split's texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from trainkit.data.text import TextDataModule

    dm = datamodule(overrides)
    if not isinstance(dm, TextDataModule):
        raise SystemExit(
            f"error: {type(dm).__name__} is not a text dataset; use data=text_csv, "
            "sentiment_sentences, synthetic_text or imdb (scripts/regression_baseline.py compares "
            "regressions)."
        )
    splits = dm.split_texts()
    (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
    out = {}
    for name, ngram_range in BASELINES.items():
        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=ngram_range)
        classifier = LogisticRegression(C=10, max_iter=1000)
        classifier.fit(vectorizer.fit_transform(train_x), train_y)
        out[name] = float(classifier.score(vectorizer.transform(test_x), test_y))
    return out


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows under their column names, then the means of the numeric columns over the rows."""
    cells = [columns] + [[r[c] for c in columns] for r in rows]
    if len(rows) > 1:
        numeric = [not isinstance(rows[0][c], str) for c in columns]
        means = [
            statistics.fmean(r[c] for r in rows) if n else ""
            for c, n in zip(columns, numeric, strict=True)
        ]
        cells.append([f"mean ({len(rows)})", *means[1:]])
    text = [[v if isinstance(v, str) else f"{v:.4f}" for v in row] for row in cells]
    widths = [max(len(row[i]) for row in text) for i in range(len(columns))]
    return "\n".join(
        "  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in text
    )


def compare(
    argv: list[str] | None,
    description: str,
    baseline: Callable[[list[str]], dict[str, Any]],
    trainkit_figures: Callable[[dict[str, Any]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Per seed: trainkit's figures (with --train) and the baseline's, as one table row."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="train.py's overrides, e.g. data=text_csv")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the config's)")
    parser.add_argument("--train", action="store_true", help="also train trainkit's model")
    parser.add_argument("--out", type=Path, help="keep trainkit's run folders here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    seeds = args.seeds or [compose(args.overrides).seed]
    if None in seeds:
        raise SystemExit("error: seed=null draws a seed per run; give the seeds with --seeds.")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            overrides = [*args.overrides, f"seed={seed}"]
            row: dict[str, Any] = {"seed": str(seed)}
            if args.train:
                summary = train_trainkit(overrides, (args.out or Path(tmp)) / f"seed{seed}")
                row.update(trainkit_figures(summary))
            row.update(baseline(overrides))
            rows.append(row)
    print("test figures on trainkit's split of", " ".join(args.overrides) or "the defaults")
    print(table(rows, list(rows[0])))
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    return compare(argv, __doc__, baseline_accuracies, lambda s: {"trainkit": s["test"]["acc"]})


if __name__ == "__main__":
    main()
