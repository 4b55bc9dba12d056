"""Startup figures of `python scripts/benchmark.py`: `python train.py --help` and `--cfg job`
against `python -c "import torch"`, and the time from process start to the end of the first
training step of `python train.py` beside a minimal Lightning + Hydra script doing the same run."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], repeats: int, env: dict | None = None) -> float:
    """Median wall time of a command (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# Time from process start to the end of the first training step, printed as the last line.
FIRST_STEP = r"""
import sys, time, runpy
t0 = time.perf_counter()
import lightning.pytorch.callbacks as cb
hit = []
orig = cb.Callback.on_train_batch_end
def mark(self, *a, **k):
    if not hit:
        hit.append(time.perf_counter() - t0)
    return orig(self, *a, **k)
cb.Callback.on_train_batch_end = mark
script, *args = sys.argv[1:]
sys.argv = [script, *args]
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit:
    pass
print(hit[0])
"""

# The same run as `python train.py` (the CNN on the digits) as a minimal Lightning + Hydra app.
MINIMAL_APP = r"""
import hydra, lightning as L, torch
from omegaconf import DictConfig
from sklearn.datasets import load_digits

class CNN(L.LightningModule):
    def __init__(self, hidden: int, lr: float):
        super().__init__()
        self.save_hyperparameters()
        nn = torch.nn
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(256, hidden), nn.ReLU(), nn.Linear(hidden, 10),
        )
    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train/loss", loss)
        return loss
    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg: DictConfig) -> None:
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16
    data = torch.utils.data.TensorDataset(x, torch.tensor(digits.target))
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
    trainer = L.Trainer(max_steps=1, enable_progress_bar=False, default_root_dir="{out}")
    trainer.fit(CNN(128, 1e-3), loader)

main()
"""


def startup(repeats: int) -> dict[str, float]:
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TRAINKIT_LOG_DIR": tmp}
        app = Path(tmp) / "minimal_app.py"
        app.write_text(MINIMAL_APP.replace("{out}", tmp))
        run_args = ["trainer.max_steps=1", "trainer.num_sanity_val_steps=0", "test=false",
                    "trainer.enable_progress_bar=false"]  # fmt: skip
        out = {
            "import_torch_s": timed([py, "-c", "import torch"], repeats),
            "import_torch_lightning_s": timed([py, "-c", "import torch, lightning"], repeats),
            "help_s": timed([py, "train.py", "--help"], repeats, env),
            "cfg_job_s": timed([py, "train.py", "--cfg", "job"], repeats, env),
        }
        for key, cmd in (
            ("first_step_trainkit_s", [py, "-c", FIRST_STEP, "train.py", *run_args]),
            ("first_step_minimal_app_s", [py, "-c", FIRST_STEP, str(app), f"hydra.run.dir={tmp}"]),
        ):
            steps = []
            for _ in range(repeats):
                res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
                if res.returncode:
                    raise RuntimeError(res.stderr[-2000:])
                steps.append(float(res.stdout.strip().splitlines()[-1]))
            out[key] = statistics.median(steps)
    out["help_over_import_torch"] = out["help_s"] / out["import_torch_s"]
    out["cfg_job_over_import_torch"] = out["cfg_job_s"] / out["import_torch_s"]
    return out
