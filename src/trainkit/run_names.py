"""A run's name as the loggers show it, with what tells runs apart first: the model and the
data, then the run folder's name (a single run: its start time, `cnn·digits 2026-12-02_10-24-57
_701856`) or a sweep job's number and swept values and the sweep's folder (`cnn·digits
3_batch_size=64,max_epochs=4 2026-12-02_13-16-13_506473`). Unique as the run folder is; the
spaces let TensorBoard's run list wrap the name where it matters. The resolver `${run_name:}`
(registered by trainkit.cli) gives it to the logger configs; TensorBoard's folder is named so."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

SEPARATOR = "·"


def run_name() -> str:
    if not HydraConfig.initialized():
        return "run"
    hc = HydraConfig.get()
    choices = hc.runtime.choices
    what = SEPARATOR.join(str(choices.get(g) or g) for g in ("model", "data"))
    folder = Path(hc.runtime.output_dir)
    if hc.mode == RunMode.MULTIRUN:
        return f"{what} {folder.name} {folder.parent.name}"
    return f"{what} {folder.name}"
