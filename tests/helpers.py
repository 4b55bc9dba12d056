"""Helpers shared by the tests (fixtures are in conftest.py): compose the real Hydra config,
run an entry point as a user does, fit one batch with a bare Trainer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Keep test runs quiet and small: no progress bars, no sanity check.
QUIET = ["trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0"]
ADAM = {"_target_": "torch.optim.Adam", "lr": 1e-3}


def run_script(
    args: list[str],
    tmp_path: Path,
    script: str = "train.py",
    timeout: float = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """`python <script> <args>` from the project root, as a user runs it, with its logs and
    data under tmp_path (and the variables of `env` added to the environment)."""
    env = {
        **os.environ,
        "TRAINKIT_LOG_DIR": str(tmp_path / "logs"),
        "TRAINKIT_DATA_DIR": str(tmp_path / "data"),
        "HYDRA_FULL_ERROR": "0",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fit_one_batch(model, datamodule, **trainer_kwargs):
    """One training, validation and test batch with a bare Trainer; returns the Trainer."""
    import lightning as L

    trainer = L.Trainer(
        fast_dev_run=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    trainer.fit(model, datamodule=datamodule)
    return trainer


def make_cfg(overrides: list[str], output_dir: Path, config_name: str = "train") -> DictConfig:
    """Compose conf/<config_name>.yaml as `python train.py <overrides>` would, with the run
    directory set to `output_dir` and the log folder (TensorBoard's runs, MLflow's store) beside
    it, unless the overrides set one."""
    from omegaconf import open_dict

    from trainkit.cli import compose_config

    output_dir.mkdir(parents=True, exist_ok=True)
    cfg = compose_config(CONF, overrides, output_dir, config_name)
    if not any(o.startswith("paths.log_dir=") for o in overrides):
        with open_dict(cfg):
            cfg.paths.log_dir = str(output_dir.parent / "logs")
    return cfg


def tb_dir(run_dir: Path) -> Path:
    """The TensorBoard folder of a run (logs/tensorboard/<task>/<run name>), as its metrics.json
    names it."""
    import json

    return Path(json.loads((run_dir / "metrics.json").read_text())["tensorboard"])
