"""Train a model: `python train.py model=cnn trainer.max_epochs=5` (see conf/train.yaml).

Thin on purpose: Hydra composes the config, trainkit.training.train(cfg) does the work. torch
and Lightning are imported only once a run starts, so `--help` and `--cfg job` answer at once.
"""

from __future__ import annotations

import math
import sys

import hydra
from omegaconf import DictConfig

from trainkit.errors import TrainkitError


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from trainkit.config import check_config

    try:
        check_config(cfg)
        from trainkit.training import optimized_value, train

        summary = train(cfg)
    except TrainkitError as err:
        sys.exit(f"error: {err}")
    return (
        optimized_value(summary, cfg.optimized_metric) if cfg.get("optimized_metric") else math.nan
    )


if __name__ == "__main__":
    main()
