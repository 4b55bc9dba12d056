"""Shared step of the classifiers (CNN, text): cross-entropy, accuracy from torchmetrics."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from trainkit.models.base import TrainkitModule


class ClassifierModule(TrainkitModule):
    """Subclasses set `self.net`, mapping a batch of inputs to `num_classes` logits."""

    def __init__(self, num_classes: int, **base) -> None:
        super().__init__(**base)
        self.num_classes = num_classes
        # one metric object per stage: their states must not mix
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def compute_loss(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        acc = getattr(self, f"{stage}_acc")
        acc.update(logits.detach(), y)
        self.log_stage(stage, {"loss": loss, "acc": acc}, batch_size=len(y))
        return loss

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0]).softmax(-1)
