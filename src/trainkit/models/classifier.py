"""What trainkit's two classifiers share: cross-entropy, accuracy and Lightning's usual steps.

A plain LightningModule: read it as you would Lightning's own examples. A subclass builds
`self.net`, which maps a batch of inputs to `num_classes` logits, and saves its arguments
(`optimizer` and `scheduler` among them) with `self.save_hyperparameters()`: see cnn.py.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from trainkit.models.optim import configure_optimizers

ADAM = {"_target_": "torch.optim.Adam", "lr": 1e-3}


class ClassifierModule(L.LightningModule):
    """Logs `train/loss`, `train/acc`, `val/loss`, `val/acc`, `test/loss` and `test/acc`."""

    net: torch.nn.Module

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        # one accuracy per stage: torchmetrics keeps their states apart (and reduces them over
        # the processes under DDP)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.train_acc(logits, y)
        # sync_dist: the epoch's value is the mean over every process's samples under DDP
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.log("val/loss", F.cross_entropy(logits, y), prog_bar=True, sync_dist=True)
        self.log("val/acc", self.val_acc, prog_bar=True)
        return logits  # callbacks see it as `outputs` (the confusion matrix does)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        logits = self(x)
        self.test_acc(logits, y)
        self.log("test/loss", F.cross_entropy(logits, y), sync_dist=True)
        self.log("test/acc", self.test_acc)
        return logits

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self(batch[0]).softmax(-1)  # class probabilities

    def configure_optimizers(self):
        # the subclass saved its `optimizer` and `scheduler` arguments with save_hyperparameters()
        return configure_optimizers(self, self.hparams.optimizer or ADAM, self.hparams.scheduler)
