"""Evaluate or predict with a checkpoint: `python eval.py ckpt_path=logs/train/runs/<time>`.

Thin on purpose, like train.py: see trainkit.evaluation and conf/eval.yaml.
"""

from __future__ import annotations

import sys

try:  # a Ctrl-C while Python imports (the first second of a run): one line, nothing started
    import math
    from pathlib import Path

    import hydra
    from omegaconf import DictConfig

    from trainkit.cli import run_job, start
except KeyboardInterrupt:
    print("interrupted before the run started: nothing was written", file=sys.stderr)
    sys.exit(130)


def eval_job(cfg: DictConfig) -> float:
    from trainkit.checkpoints import resolve_checkpoint

    path = resolve_checkpoint(cfg.ckpt_path, prefer="best")  # fails before the heavy imports
    from trainkit.evaluation import evaluate

    value = evaluate(cfg, path)["value"]
    return math.nan if value is None else value


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    return run_job(eval_job, cfg, record=None)  # eval.json is written by a finished eval


if __name__ == "__main__":
    start(main, Path(__file__).parent / "conf", "eval")
