"""SIGTERM in a sweep's own process: it ends the sweep with exit code 143 wherever it lands.

Lightning handles SIGTERM only while a Trainer fits or tests (it stops at the end of the
iteration, with last.ckpt written, see trainkit.callbacks.checkpointing); everywhere else in a
sweep (composing the next job, between two jobs, loading data, writing the report) the signal
would be lost or kill the process without a word. Jobs in worker processes (hydra/launcher=joblib)
get the signal passed on, so that each saves its last.ckpt before the sweep ends.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

WORKER_GRACE_S = 60.0  # for a job in a worker process to save its last.ckpt after SIGTERM


class SweepInterrupted(SystemExit):
    """SIGTERM outside a Trainer's fit or test: ends the sweep with exit code 143."""

    def __init__(self) -> None:
        super().__init__(143)


def _on_sigterm(signum: int, frame: Any) -> None:
    if _in_trainer_run(frame):
        return
    # jobs in worker processes (hydra/launcher=joblib): each saves its last.ckpt and stops too
    children = multiprocessing.active_children()
    for child in children:
        with contextlib.suppress(OSError):
            os.kill(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + WORKER_GRACE_S
    for child in children:
        child.join(timeout=max(0.0, deadline - time.monotonic()))
    raise SweepInterrupted


def _in_trainer_run(frame: Any) -> bool:
    """Whether the signal came while a Lightning Trainer fits or tests: its own SIGTERM handler
    (which calls this one too) then stops it at the end of the iteration, with last.ckpt
    written. Told from the stack, as Lightning has no public flag for it and leaves its handler
    installed after a fit."""
    while frame is not None:
        if frame.f_code.co_name == "_run_stage" and "lightning" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the sweep with exit code 143 wherever it lands (between jobs, composing, in
    the report), not only during a fit, where Lightning handles it."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        yield
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
