"""Shared step of the classifiers (CNN, text): cross-entropy; accuracy from torchmetrics for
validation and test, and from a running count of correct predictions while training."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from trainkit.models.base import TrainkitModule


class ClassifierModule(TrainkitModule):
    """Subclasses set `self.net`, mapping a batch of inputs to `num_classes` logits."""

    def __init__(self, num_classes: int, **base) -> None:
        super().__init__(**base)
        self.num_classes = num_classes
        self.val_metrics = self.make_metrics()
        self.test_metrics = self.make_metrics()

    def make_metrics(self) -> MetricCollection:
        return MetricCollection({"acc": MulticlassAccuracy(self.num_classes, average="micro")})

    def shared_step(self, batch: tuple[torch.Tensor, torch.Tensor]):
        x, y = batch
        logits = self(x)
        return F.cross_entropy(logits, y), logits, y

    def train_sums(self, outputs: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"correct": (outputs.argmax(-1) == target).sum()}

    def train_metrics(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, torch.Tensor]:
        return {"acc": sums["correct"].float() / count}

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0]).softmax(-1)
