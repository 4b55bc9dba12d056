"""Checkpoint files: which one a `ckpt_path` means, reading one with a clear error, checking that
it fits the model being built, and writing them atomically (optionally in the background).

`ckpt_path` may be a .ckpt file, a run directory (its last checkpoint to resume, its best one to
evaluate), or "last" (the last checkpoint of the newest run of this task).

Writes are atomic: a checkpoint goes to `<name>.tmp-<pid>` in the same folder, is flushed to disk
(fsync) and renamed over the target. A crash or `kill -9` at any moment leaves the previous
complete file or the new complete file, never a half-written one; a temporary file left by a
killed process is removed the next time that folder is resumed from.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from typing import Any

from trainkit.errors import ConfigError, TrainkitError

KEY = "trainkit"  # where trainkit stores the run's config inside a Lightning checkpoint
_TEMP = re.compile(r".+\.tmp-(\d+)$")


class CheckpointWriteError(TrainkitError):
    """A checkpoint could not be written (disk full, permissions)."""


# -- finding ---------------------------------------------------------------------------------
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
    best = sorted(ckpts.glob("best*.ckpt"), key=lambda p: p.stat().st_mtime)
    recorded = read_metrics(run_dir).get("best_model_path") or ""
    if prefer == "best":
        # the folder's own file of that name: a copied or moved run folder is evaluated from
        # its own checkpoints, never from the folder it was copied from
        if recorded and (ckpts / Path(recorded).name).is_file():
            return ckpts / Path(recorded).name
        if best:
            return best[-1]
    if (ckpts / "last.ckpt").is_file():
        return ckpts / "last.ckpt"
    if recorded and Path(recorded).is_file() and Path(recorded).parent != ckpts:
        raise ConfigError(
            f"ckpt_path={run_dir} has no checkpoint in {ckpts}; its metrics.json names "
            f"{recorded}, in another folder (the run this one was copied from?): give that "
            "file as ckpt_path to use it."
        )
    if best:  # resuming: never a silent switch to another state than the latest
        raise ConfigError(
            f"ckpt_path={run_dir} has no last.ckpt (the run ended before writing it); its best "
            f"checkpoint is {best[-1]}: give that file as ckpt_path to continue from it."
        )
    raise ConfigError(f"ckpt_path={run_dir} is a directory with no checkpoint in {ckpts}.")


def newest_last_checkpoint(runs_dir: str | Path | None) -> Path:
    """last.ckpt of the newest run of this task that did not finish (a finished run has nothing
    left to train: ckpt_path=<its run dir> with a higher trainer.max_epochs continues it)."""
    if runs_dir is None or not Path(runs_dir).is_dir():
        raise ConfigError(f"ckpt_path=last: there are no runs in {runs_dir} to resume.")
    found = sorted(Path(runs_dir).glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ConfigError(f"ckpt_path=last: no run in {runs_dir} has a checkpoints/last.ckpt.")
    unfinished = [p for p in found if read_metrics(p.parent.parent).get("status") != "ok"]
    if not unfinished:
        raise ConfigError(
            f"ckpt_path=last: every run in {runs_dir} finished (the newest is "
            f"{found[-1].parent.parent}); to train one further, give ckpt_path=<its run dir> "
            "with a higher trainer.max_epochs."
        )
    return unfinished[-1]


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """A run's metrics.json, or {} when it is missing or unreadable."""
    try:
        data = json.loads((Path(run_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove `*.tmp-<pid>` files of processes that no longer run (a `kill -9` mid-write)."""
    removed = []
    for path in Path(folder).glob("*.tmp-*"):
        match = _TEMP.fullmatch(path.name)
        if match and not pid_alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with this id runs (a held lock, a write under way)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- reading and checking --------------------------------------------------------------------
def read_checkpoint(path: str) -> dict[str, Any]:
    """The checkpoint's contents (on the CPU), or a clear error for a file that is not one."""
    import torch  # here, not at the top: resolving a path must not cost the torch import

    try:  # memory-mapped: the tensors are read only if touched (fit and eval load it again)
        ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as err:  # a truncated or foreign file: pickle, zip or EOF errors
        raise ConfigError(
            f"ckpt_path={path} is not a readable checkpoint ({type(err).__name__})."
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ConfigError(
            f"ckpt_path={path} is not a Lightning checkpoint (a plain torch.save file?): give a "
            "checkpoint that trainkit wrote (checkpoints/last.ckpt or best-*.ckpt of a run)."
        )
    if KEY not in ckpt:
        raise ConfigError(
            f"ckpt_path={path} is a Lightning checkpoint that trainkit did not write (it holds "
            "no run config): resume or evaluate a checkpoint of a trainkit run."
        )
    return ckpt


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


def check_same_network(checkpoint: dict[str, Any], path: str, state: dict[str, Any]) -> None:
    """A resume continues the same network: another architecture (a changed model.hidden) is
    one sentence, not a state_dict mismatch inside fit. `state`: the model's state_dict."""
    saved = checkpoint.get("state_dict", {})
    changed = [k for k in state if k not in saved or tuple(saved[k].shape) != tuple(state[k].shape)]
    changed += [k for k in saved if k not in state]
    if changed:
        key = changed[0]
        was = tuple(saved[key].shape) if key in saved else "absent"
        now = tuple(state[key].shape) if key in state else "absent"
        more = f"; {len(changed) - 1} more" if len(changed) > 1 else ""
        raise ConfigError(
            f"{path} holds another network than this run builds ({key}: {was} in the "
            f"checkpoint, {now} now{more}): resume with the model settings it was trained with "
            "(its run folder's .hydra/overrides.yaml), or start a new run."
        )


def check_same_optimizer(checkpoint: dict[str, Any], path: str, targets: dict[str, Any]) -> None:
    """A resume goes on with the optimizer and schedule whose state the checkpoint holds:
    another one (`targets`: the `_target_` of this run's optimizer and scheduler configs) is one
    sentence, not a KeyError inside fit."""
    recorded = (checkpoint.get(KEY) or {}).get("config") or {}
    for group, now in targets.items():
        was = (recorded.get(group) or {}).get("_target_")
        if was != now:
            raise ConfigError(
                f"{path} was trained with the {group} {was or 'none'}, this run asks for "
                f"{now or 'none'}: its state cannot go on in another one; resume with the "
                f"{group} it was trained with, or start a new run."
            )


def check_not_finished(checkpoint: dict[str, Any], path: str, trainer_cfg: Any) -> None:
    """A resume that would train nothing is a mistake: say so instead of finishing 'ok'."""
    epochs, steps = checkpoint.get("epoch", 0), checkpoint.get("global_step", 0)
    done_epoch = checkpoint.get("loops", {}).get("fit_loop", {})
    done_epoch = done_epoch.get("epoch_progress", {}).get("current", {}).get("completed", epochs)
    max_epochs, max_steps = trainer_cfg.get("max_epochs"), trainer_cfg.get("max_steps", -1)
    if max_epochs not in (None, -1) and done_epoch >= max_epochs:
        raise ConfigError(
            f"{path} has already trained {done_epoch} epoch(s); to continue, set "
            f"trainer.max_epochs above {done_epoch} (it is {max_epochs})."
        )
    if max_steps not in (None, -1) and steps >= max_steps:
        raise ConfigError(
            f"{path} has already made {steps} optimizer steps; to continue, set "
            f"trainer.max_steps above {steps} (it is {max_steps})."
        )


# -- writing ---------------------------------------------------------------------------------
def atomic_save(checkpoint: dict[str, Any], path: str | Path) -> None:
    """torch.save into a temporary file beside `path`, fsync, then rename over `path`."""
    import torch

    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
            fd = os.open(path.parent, os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except (OSError, RuntimeError) as err:  # torch reports a full disk as a RuntimeError
        raise CheckpointWriteError(_write_error(path, err)) from err
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_error(path: Path, err: BaseException) -> str:
    """One sentence: why a checkpoint could not be written, and that nothing older was lost."""
    code = getattr(err, "errno", None)
    full = code == errno.ENOSPC or "No space left" in str(err)
    if not full and isinstance(err, RuntimeError):  # torch's zip writer hides the errno
        try:
            full = os.statvfs(path.parent).f_bavail == 0
        except OSError:
            full = False
    if full:
        why, what = "the disk is full", "free space"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        why, what = f"no permission to write in {path.parent}", "fix the folder's permissions"
    elif path.parent.exists() and not path.parent.is_dir():
        why, what = f"{path.parent} is a file, not a folder", "move that file away"
    else:
        why, what = " ".join(str(err).split())[:160], "fix the cause"
    return (
        f"could not write the checkpoint {path} ({why}); the checkpoints written before are "
        f"intact: {what}, then resume with ckpt_path={path.parent.parent}."
    )
