"""Finding the checkpoint a user means, and checking that it fits the model being built.

`ckpt_path` may be a .ckpt file, a run directory (its last checkpoint to resume, its best one to
evaluate), or "last" (the last checkpoint of the newest run of this task).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainkit.errors import ConfigError

KEY = "trainkit"  # where trainkit stores the run's config inside a Lightning checkpoint


def resolve_checkpoint(
    path: str | None, prefer: str = "last", runs_dir: str | Path | None = None
) -> str | None:
    """A checkpoint file for `path`; `prefer` ("last" or "best") picks one in a run directory."""
    if path is None:
        return None
    if str(path) == "last":
        return str(newest_last_checkpoint(runs_dir))
    p = Path(path)
    if p.is_dir():
        return str(checkpoint_in_run_dir(p, prefer))
    if not p.is_file():
        raise ConfigError(
            f"ckpt_path={path} does not exist (give a .ckpt file or a run directory)."
        )
    return str(p)


def checkpoint_in_run_dir(run_dir: Path, prefer: str) -> Path:
    ckpts = run_dir / "checkpoints"
    if prefer == "best":
        metrics = run_dir / "metrics.json"
        if metrics.is_file():
            best = json.loads(metrics.read_text()).get("best_model_path")
            if best and Path(best).is_file():
                return Path(best)
        candidates = sorted(ckpts.glob("best*.ckpt"), key=lambda p: p.stat().st_mtime)
        if candidates:
            return candidates[-1]
    if (ckpts / "last.ckpt").is_file():
        return ckpts / "last.ckpt"
    raise ConfigError(f"ckpt_path={run_dir} is a directory with no checkpoint in {ckpts}.")


def newest_last_checkpoint(runs_dir: str | Path | None) -> Path:
    if runs_dir is None or not Path(runs_dir).is_dir():
        raise ConfigError(f"ckpt_path=last: there are no runs in {runs_dir} to resume.")
    found = sorted(Path(runs_dir).glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ConfigError(f"ckpt_path=last: no run in {runs_dir} has a checkpoints/last.ckpt.")
    return found[-1]


def read_checkpoint(path: str) -> dict[str, Any]:
    """The checkpoint's contents (on the CPU), or a clear error for a file that is not one."""
    import torch  # here, not at the top: resolving a path must not cost the torch import

    try:  # memory-mapped: the tensors are read only if touched (fit and eval load it again)
        return torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as err:  # a truncated or foreign file: pickle, zip or EOF errors
        raise ConfigError(
            f"ckpt_path={path} is not a readable checkpoint ({type(err).__name__})."
        ) from err


def check_compatible(ckpt: dict[str, Any], path: str, model_target: str, dims: dict) -> None:
    """Refuse a checkpoint of another model or of data with other dimensions."""
    saved = ckpt.get(KEY, {})
    saved_target = saved.get("model_target")
    if saved_target and saved_target != model_target:
        raise ConfigError(
            f"{path} is a checkpoint of {saved_target.rsplit('.', 1)[-1]}, but this run builds "
            f"{model_target.rsplit('.', 1)[-1]}: choose the matching model=... or another "
            "checkpoint."
        )
    hparams = ckpt.get("hyper_parameters", {})
    differ = {k: (hparams[k], v) for k, v in dims.items() if k in hparams and hparams[k] != v}
    if differ:
        detail = ", ".join(f"{k}: checkpoint {a}, data {b}" for k, (a, b) in differ.items())
        raise ConfigError(f"{path} was trained on data of other dimensions ({detail}).")
