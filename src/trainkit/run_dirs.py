"""Run folders that never collide, and the state a sweep reads from a job's folder.

A run claims its folder before Hydra writes anything into it (trainkit.hydra_callbacks): a
default, dated folder is created with `os.mkdir` (atomic: of two runs started in the same
microsecond, the second gets `<time>_1`); a folder given on the command line
(`hydra.run.dir=...`) is locked with a file created by `O_CREAT | O_EXCL`, so of two runs started
together one runs and the other stops with one sentence. A folder that already holds a run
(`.hydra/`, `metrics.json` or `checkpoints/`) is refused too, unless this run resumes it on
purpose (`ckpt_path` inside it). `metrics.json` is the finished-run marker (status "ok").

A sweep locks its folder the same way (trainkit's sweepers): a resumed sweep writes into its own
job folders on purpose, and no second sweep may do it at the same time. Nothing here imports torch.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from trainkit.checkpoints import pid_alive, read_metrics
from trainkit.errors import TrainkitError

LOCK = ".trainkit.lock"  # "<pid> <host> <start time>" of the process that holds the folder
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


class FolderInUse(TrainkitError):
    """The folder is held by another live run or sweep, or already holds a run."""


def secondary_process() -> bool:
    """A DDP worker (or a node other than the first): it writes into its main process's run
    folder, which that process has claimed."""
    return any(os.environ.get(name, "0") != "0" for name in RANK_VARIABLES)


def fresh_folder(path: Path) -> Path:
    """Create `path`, or `path_1`, `path_2`, ... if it exists: `os.mkdir` fails for all but one
    of the processes that ask for the same name, so each gets its own folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        candidate = path if n == 0 else path.with_name(f"{path.name}_{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise FolderInUse(f"could not create a new folder beside {path} (1000 exist)")


@dataclass
class Lock:
    """A lock file this process created; `release()` removes it if it is still this one."""

    path: Path
    text: str

    def release(self) -> None:
        with contextlib.suppress(OSError):
            if self.path.read_text() == self.text:
                self.path.unlink()


def lock_folder(folder: Path, what: str, setting: str) -> Lock:
    """Create `folder/.trainkit.lock` atomically; a lock left by a dead process on this host is
    taken over. `what` ("run", "sweep") and `setting` ("hydra.run.dir") word the refusal."""
    path = folder / LOCK
    text = f"{os.getpid()} {socket.gethostname()} {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
    for _ in range(10):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is None:  # a dead process's lock: move it away (one process wins)
                with contextlib.suppress(FileNotFoundError):
                    os.rename(path, path.with_name(f"{LOCK}.stale-{os.getpid()}"))
                    os.unlink(path.with_name(f"{LOCK}.stale-{os.getpid()}"))
                continue
            raise FolderInUse(
                f"{folder} is in use by another {what} ({holder}): wait for it to end, or "
                f"choose another {setting}. If no such process runs any more, delete {path}."
            ) from None
        with os.fdopen(fd, "w") as f:
            f.write(text)
        lock = Lock(path, text)
        atexit.register(lock.release)
        return lock
    raise FolderInUse(f"could not lock {folder}: another process keeps taking it")


def _holder(path: Path) -> str | None:
    """Who holds the lock ("pid 123 on host, since ..."), or None when that process is gone."""
    try:
        pid, host, since = path.read_text().split(" ", 2)
    except (OSError, ValueError):  # being written right now, or unreadable: assume held
        return "a process that is starting"
    if host == socket.gethostname() and not pid_alive(int(pid)):
        return None
    return f"pid {pid} on {host}, since {since.strip()}"

    return True


def holds_run(folder: Path) -> str | None:
    """What run `folder` holds ("a finished run", "an interrupted run", ...), or None."""
    if not any((folder / name).exists() for name in (".hydra", "metrics.json", "checkpoints")):
        return None
    status = read_metrics(folder).get("status")
    return {
        "ok": "a finished run",
        "failed": "a failed run",
        "interrupted": "an interrupted run",
        "pruned": "a pruned run",
        None: "a run that did not finish",
    }.get(status, f"a run ({status})")


def claim_run_folder(folder: Path, dated: bool, resume_from: str | None) -> tuple[Path, Lock]:
    """The folder a single run writes into, created or locked for it.

    dated: the folder name comes from the time (the default): a new one is made, `_1` added if
    another run took that name. Otherwise the folder is locked, and refused when it holds a run
    that this one does not resume (`resume_from`: the run's ckpt_path)."""
    if dated:
        folder = fresh_folder(folder)
        return folder, lock_folder(folder, "run", "hydra.run.dir")
    folder.mkdir(parents=True, exist_ok=True)
    lock = lock_folder(folder, "run", "hydra.run.dir")
    held = holds_run(folder)
    if held and not _inside(resume_from, folder):
        lock.release()
        raise FolderInUse(
            f"the run directory {folder} already holds {held}; nothing was changed in it: "
            f"choose another hydra.run.dir, or continue that run with ckpt_path={folder}."
        )
    return folder, lock


def _inside(path: str | None, folder: Path) -> bool:
    if not path or path == "last":
        return False
    resolved, root = Path(path).resolve(), folder.resolve()
    return resolved == root or root in resolved.parents


# -- the state of a sweep's job folder ------------------------------------------------------
DONE = ("ok", "pruned")  # finished: a resumed sweep does not run it again


def job_state(folder: Path) -> str:
    """ "new" (no folder or nothing in it), "done" (metrics.json: ok or pruned), "interrupted"
    (a last.ckpt to resume from: status interrupted, or no metrics.json at all after a kill),
    or "failed" (anything else: it runs again)."""
    if not folder.is_dir() or holds_run(folder) is None:
        return "new"
    status = read_metrics(folder).get("status")
    if status in DONE:
        return "done"
    if status in ("interrupted", None) and (folder / "checkpoints" / "last.ckpt").is_file():
        return "interrupted"
    return "failed"
