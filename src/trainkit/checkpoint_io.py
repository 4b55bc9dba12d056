"""`AtomicCheckpointIO`, the Trainer plugin through which every checkpoint of a run is written:
atomically (trainkit.checkpoints.atomic_save) and, by default, in a background thread.

Apart from trainkit.checkpoints because that module stays free of torch and Lightning imports:
resolving a `ckpt_path` must not cost them.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning_utilities.core.apply_func import apply_to_collection

from trainkit.checkpoints import atomic_save


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO: atomic writes, optionally in a background thread.

    In the background, the tensors are copied on the training thread (a memcpy), then pickled
    and written by one worker thread while training goes on. Writes and removals run in
    submission order; `teardown` (end of fit, or an exception) waits for them, so trainer.test
    and a resume always see finished files, and a failed write is raised on the training thread.
    """

    def __init__(self, background: bool = True) -> None:
        super().__init__()
        self.background = background
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if not self.background:
            atomic_save(checkpoint, path)
            return
        # a point-in-time copy: training goes on changing the live tensors
        snapshot = apply_to_collection(checkpoint, torch.Tensor, lambda t: t.detach().clone())
        self._submit(atomic_save, snapshot, path)

    def remove_checkpoint(self, path: str | Path) -> None:
        if self.background:  # after the writes submitted before it
            self._submit(super().remove_checkpoint, path)
        else:
            super().remove_checkpoint(path)

    def _submit(self, fn: Any, *args: Any) -> None:
        self._raise_failed()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._pending.append(self._executor.submit(fn, *args))

    def _raise_failed(self) -> None:
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for future in done:
            future.result()  # re-raises a failed write (disk full, permissions) here

    def wait(self) -> None:
        """Block until every submitted write has finished; re-raise the first failure."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def teardown(self) -> None:
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
