"""What trainkit adds to every checkpoint, beside Lightning's own state:

- the run's composed config (as it trained: the drawn seed, the finders' learning rate and batch
  size), so that `eval.py` rebuilds the model and its data from the checkpoint alone, and the
  folders its own code was imported from (trainkit.code_folders);
- the random generators of torch, numpy and Python, so that a resumed run draws the same
  dropout masks and augmentations as an uninterrupted one (the data order needs no generator
  state: it depends only on seed and epoch, see trainkit.data.base).

The DataModule's own state (class names, vocabulary, normalisation, the position in the epoch) is
Lightning's `LightningDataModule.state_dict`, saved by Lightning itself.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from trainkit.checkpoints import KEY
from trainkit.code_folders import code_folders


class RunState(Callback):
    """Saves the run config into `checkpoint["trainkit"]` and the RNG states as its own state."""

    def __init__(self, run_config: dict[str, Any]) -> None:
        self.run_config = run_config
        self.code_folders = code_folders(run_config)  # where its own classes were imported from

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        model = type(pl_module)
        checkpoint[KEY] = {
            "model_target": f"{model.__module__}.{model.__qualname__}",
            "config": self.run_config,
            "code_folders": self.code_folders,
        }

    def state_dict(self) -> dict[str, Any]:
        """torch, numpy and Python random states, as types a weights-only torch.load accepts."""
        name, keys, pos, has_gauss, gauss = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": random.getstate(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        torch.set_rng_state(state_dict["torch"])
        if state_dict.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
        name, keys, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        random.setstate(state_dict["python"])


def restore_data_state(datamodule: L.LightningDataModule, checkpoint: dict[str, Any]) -> None:
    """Give the DataModule its state from `checkpoint` before it is set up (Lightning restores it
    only once fit starts, after trainkit has already built the model from the data)."""
    state = checkpoint.get(type(datamodule).__qualname__)
    if state:
        datamodule.load_state_dict(state)
