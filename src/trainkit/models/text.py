"""A fastText-style text classifier: mean of word (and hashed bigram) embeddings -> linear."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainkit.models.classifier import ClassifierModule


class BagOfNgrams(nn.Module):
    """EmbeddingBag over padded id rows (id 0 = padding, left out of the mean)."""

    def __init__(
        self, vocab_size: int, embed_dim: int, num_classes: int, hidden: int, dropout: float
    ):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean", padding_idx=0)
        head: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden > 0:
            head += [nn.Linear(embed_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        head.append(nn.Linear(hidden if hidden > 0 else embed_dim, num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(ids))


class TextClassifier(ClassifierModule):
    """Bag of n-grams classifier. `vocab_size` and `num_classes` come from the DataModule."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 64,
        hidden: int = 0,
        dropout: float = 0.0,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(num_classes)
        self.save_hyperparameters()
        self.net = BagOfNgrams(vocab_size, embed_dim, num_classes, hidden, dropout)
