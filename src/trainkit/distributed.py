"""DDP under Hydra: start each job's worker processes with that job's own command.

With `strategy=ddp` Lightning runs the script again for the processes of rank 1..N-1
(`_SubprocessScriptLauncher`). Under Hydra, Lightning 2.6 builds their command from the original
`sys.argv` plus `hydra.run.dir=<hydra.run.dir>`: in a multirun that is `-m` and the whole sweep
again, in a directory that is not the job's. `install_hydra_ddp_fix()` makes every worker run
exactly the job that started it:

    python train.py <the job's overrides> hydra.mode=RUN hydra.run.dir=<the job's directory>
        hydra.output_subdir=null

(no .hydra/ of its own; metrics.json, TensorBoard and checkpoints are written by rank 0 only).
Between the jobs of a multirun it also ends the previous job's workers, process group and launcher
environment, so that the next job starts its own workers instead of reusing dead ones.

Not involved when a cluster starts the processes itself (SLURM, torchrun): Lightning then
launches nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_original_cwd, to_absolute_path

from trainkit.command_line import quote_value

log = logging.getLogger(__name__)

# Variables Lightning's launcher sets in the main process; left there, the next job of a multirun
# would believe its workers already exist (LOCAL_RANK) and reuse the old port and thread count.
LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
THREADS_ENV = "OMP_NUM_THREADS"

# Hydra overrides that place a run; the worker gets the job's values instead.
_PLACEMENT = re.compile(r"^hydra\.(mode|run|sweep|output_subdir)(\.|$)")
# Command-line flags that choose the config; a worker needs them too.
_CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")

# How long the main process gets to fail by itself after a worker failed, before it is killed: a
# collective whose peer died raises at once with gloo (CPU), but NCCL may block for the process
# group's timeout (30 minutes).
FAILURE_GRACE_S = 30.0
# How long the workers get to end by themselves when the main process exits.
EXIT_GRACE_S = 30.0


def config_flags(argv: Sequence[str]) -> list[str]:
    """The --config-path/--config-name/--config-dir flags of a command line (and nothing else:
    no -m, no overrides)."""
    flags: list[str] = []
    args = list(argv)
    for i, arg in enumerate(args):
        name = arg.split("=", 1)[0]
        if name not in _CONFIG_FLAGS:
            continue
        if "=" in arg:
            flags.append(arg)
        elif i + 1 < len(args):
            flags += [arg, args[i + 1]]
    return flags


def worker_overrides(
    task_overrides: Sequence[str], hydra_overrides: Sequence[str], output_dir: str
) -> list[str]:
    """The overrides of a worker: the job's own (not the sweep's), its Hydra settings except
    where it runs, then a single run in the job's directory that writes no .hydra/ there."""
    parser = OverridesParser.create()
    kept = [
        o for o in hydra_overrides if not _PLACEMENT.match(parser.parse_override(o).key_or_group)
    ]
    return [
        *task_overrides,
        *kept,
        "hydra.mode=RUN",
        f"hydra.run.dir={quote_value(output_dir)}",
        "hydra.output_subdir=null",
    ]


def hydra_subprocess_cmd(local_rank: int) -> tuple[list[str], str]:
    """Replaces Lightning's `_hydra_subprocess_cmd`: (command, cwd) of the worker of
    `local_rank`, built from the current job's HydraConfig."""
    import __main__  # at call time, as Lightning does (its issue #15218)

    hc = HydraConfig.get()
    if __main__.__spec__ is None:  # python train.py
        command = [sys.executable, to_absolute_path(sys.argv[0])]
    else:  # python -m package.module
        command = [sys.executable, "-m", __main__.__spec__.name]
    command += config_flags(sys.argv[1:])
    command += worker_overrides(hc.overrides.task, hc.overrides.hydra, hc.runtime.output_dir)
    log.debug("starting the worker of local rank %d: %s", local_rank, command)
    return command, get_original_cwd()


class _Launches:
    """What this process launched for its current job, and the environment from before."""

    def __init__(self) -> None:
        self.workers: list[subprocess.Popen] = []
        self.observer: WorkerObserver | None = None
        self.env: dict[str, str | None] = {}
        self.threads = 0
        self.exit_hook = False


_launches = _Launches()


class WorkerObserver(threading.Thread):
    """Replaces Lightning's child-process observer: a worker that fails ends the run instead of
    leaving it hanging. Its siblings are killed at once. The main process is killed at once too
    while it waits for the workers to connect (it would wait for the process group's timeout);
    once connected, it gets FAILURE_GRACE_S seconds to fail by itself (a collective whose peer
    died raises), so that a multirun records the failed job and goes on to the next, whose
    start stops this observer. Lightning's own observer killed the main process in every case,
    which in a multirun also cancelled every job after the failed one."""

    def __init__(self, workers: list[subprocess.Popen], poll_s: float = 0.2) -> None:
        super().__init__(daemon=True, name="trainkit-worker-observer")
        self.workers, self.poll_s = workers, poll_s
        self._ended = threading.Event()

    def stop(self) -> None:
        self._ended.set()

    def run(self) -> None:
        while not self._ended.wait(self.poll_s):
            if all(p.poll() == 0 for p in self.workers):
                return
            failed = [(i + 1, p) for i, p in enumerate(self.workers) if p.returncode]
            if failed:
                self._fail(*failed[0])
                return

    def _fail(self, rank: int, proc: subprocess.Popen) -> None:
        log.error(
            "DDP worker of local rank %d (pid %d) failed with exit code %s (its error is above); "
            "stopping the other processes of this run",
            rank,
            proc.pid,
            proc.returncode,
        )
        _kill(self.workers)
        if _process_group_ready() and self._ended.wait(FAILURE_GRACE_S):
            return
        log.error("ending the main process (it cannot go on without its workers)")
        _end_main_process()


def _end_main_process() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # it may be stuck in C code, where no signal is handled


def _process_group_ready() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def observe_workers(child_processes: list[subprocess.Popen]) -> None:
    """Replaces Lightning's `_launch_process_observer`: watch this job's workers."""
    _launches.workers = list(child_processes)
    _launches.observer = WorkerObserver(_launches.workers)
    _launches.observer.start()
    if not _launches.exit_hook:  # a main process that ends (even by an error) ends its workers
        atexit.register(_end_workers_at_exit)
        _launches.exit_hook = True


def _end_workers_at_exit() -> None:
    """The main process is ending: its workers end by themselves right after it when the run
    went well, so give them EXIT_GRACE_S seconds before they are killed; the observer stops
    first, so that a worker ended here is not reported as failed."""
    if _launches.observer is not None:
        _launches.observer.stop()
    deadline = time.monotonic() + EXIT_GRACE_S
    for proc in _launches.workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    _kill(_launches.workers)


def _kill(workers: list[subprocess.Popen]) -> None:
    for proc in workers:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def end_previous_job() -> None:
    """After a job that started workers (the previous job of a multirun): stop its observer,
    end its workers and its process group, and restore the launcher's environment variables.
    Before any: remember that environment."""
    if _launches.observer is None:
        _launches.env = {k: os.environ.get(k) for k in (*LAUNCHER_ENV, THREADS_ENV)}
        _launches.threads = torch.get_num_threads()
        return
    _launches.observer.stop()
    _launches.observer.join()
    _kill(_launches.workers)
    if _process_group_ready():
        torch.distributed.destroy_process_group()
    for key, value in _launches.env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    torch.set_num_threads(_launches.threads)  # Lightning set 1 thread per worker
    _launches.workers, _launches.observer = [], None


def install_hydra_ddp_fix() -> None:
    """Call at the start of every job, before its Trainer is built: ends the previous job's
    workers (multirun) and makes Lightning start this job's workers with the job's command."""
    from lightning.pytorch.strategies.launchers import subprocess_script

    end_previous_job()
    subprocess_script._hydra_subprocess_cmd = hydra_subprocess_cmd
    subprocess_script._launch_process_observer = observe_workers
