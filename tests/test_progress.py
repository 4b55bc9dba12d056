"""trainkit's progress bar: redrawn at most every min_interval, but always at an epoch's end."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import TQDMProgressBar

from trainkit.callbacks.progress import ProgressBar


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.net(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        # 5 batches per epoch: the first draw, then each epoch's last batch
        ({"max_epochs": 2}, [(0, 0), (0, 4), (1, 4)]),
        # max_steps ends the 3rd epoch after 2 of its 5 batches: that batch is drawn too
        ({"max_epochs": -1, "max_steps": 12}, [(0, 0), (0, 4), (1, 4), (2, 1)]),
        # accumulating 2: epoch 0 steps 3 times (its odd last batch steps too), so the 4th
        # and last step takes 2 iterations of epoch 1
        (
            {"max_epochs": -1, "max_steps": 4, "accumulate_grad_batches": 2},
            [(0, 0), (0, 4), (1, 1)],
        ),
    ],
)
def test_draws_are_throttled_but_each_epochs_last_batch_is_shown(monkeypatch, limits, expected):
    drawn: list[tuple[int, int]] = []

    def draw(self, trainer, pl_module, outputs, batch, batch_idx):
        drawn.append((trainer.current_epoch, batch_idx))

    monkeypatch.setattr(TQDMProgressBar, "on_train_batch_end", draw)
    data = torch.utils.data.TensorDataset(torch.randn(10, 2))
    trainer = L.Trainer(
        callbacks=[ProgressBar(min_interval=3600)],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        **limits,
    )
    trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=2))
    assert drawn == expected
