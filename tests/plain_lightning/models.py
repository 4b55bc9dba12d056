"""Plain LightningModules that take their sizes as arguments (no data hands them over)."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy


class Classifier(L.LightningModule):
    """Reads (x, y) batches, or {"x": ..., "y": ...} as LitData's format returns them."""

    def __init__(self, input_size: int, num_classes: int, hidden: int = 64, lr: float = 0.01):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(input_size, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )
        self.val_acc = MulticlassAccuracy(num_classes)
        self.test_acc = MulticlassAccuracy(num_classes)

    def forward(self, x):
        return self.net(x)

    def unpack(self, batch):
        return (batch["x"], batch["y"]) if isinstance(batch, dict) else batch

    def training_step(self, batch, batch_idx):
        x, y = self.unpack(batch)
        loss = F.cross_entropy(self(x), y)
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = self.unpack(batch)
        logits = self(x)
        self.val_acc(logits, y)
        self.log("val/loss", F.cross_entropy(logits, y))
        self.log("val/acc", self.val_acc)
        return logits

    def test_step(self, batch, batch_idx):
        x, y = self.unpack(batch)
        self.test_acc(self(x), y)
        self.log("test/acc", self.test_acc)

    def predict_step(self, batch, batch_idx):
        return self(self.unpack(batch)[0]).softmax(-1)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


class DictClassifier(Classifier):
    """Reads dict batches as Hugging Face datasets give them: {"image": ..., "label": ...}."""

    def unpack(self, batch):
        return batch["image"], batch["label"]
