"""Train a model: `python train.py model=cnn trainer.max_epochs=5` (see conf/train.yaml).

Thin on purpose: Hydra composes the config, trainkit.training.train(cfg) does the work. torch
and Lightning are imported only once a run starts, so `--help` and `--cfg job` answer at once.
"""

from __future__ import annotations

import sys

try:  # a Ctrl-C while Python imports (the first second of a run): one line, nothing started
    from pathlib import Path

    import hydra
    from omegaconf import DictConfig

    from trainkit.cli import run_job, start
except KeyboardInterrupt:
    print("interrupted before the run started: nothing was written", file=sys.stderr)
    sys.exit(130)


def train_job(cfg: DictConfig) -> float:
    from trainkit.training import optimized_value, train

    return optimized_value(train(cfg), cfg.optimized_metric)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Returns the value of cfg.optimized_metric (NaN when the job failed) for sweepers."""
    return run_job(train_job, cfg)


if __name__ == "__main__":
    start(main, Path(__file__).parent / "conf", "train")
