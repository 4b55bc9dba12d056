"""Finding the checkpoint a user means: a file, or a run directory (its last checkpoint)."""

from __future__ import annotations

from pathlib import Path

from trainkit.errors import ConfigError


def resolve_checkpoint(path: str | None, model=None) -> str | None:
    """Return a checkpoint file for `path`: a .ckpt file, or a run directory -> its last.ckpt."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        candidate = p / "checkpoints" / "last.ckpt"
        if not candidate.is_file():
            raise ConfigError(f"ckpt_path={path} is a directory without checkpoints/last.ckpt.")
        return str(candidate)
    if not p.is_file():
        raise ConfigError(
            f"ckpt_path={path} does not exist (give a .ckpt file or a run directory)."
        )
    return str(p)
