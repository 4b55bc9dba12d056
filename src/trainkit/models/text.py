"""A fastText-style text classifier: a weighted sum (or the mean) of the embeddings of a
document's word and hashed bigram ids, then a linear layer.

It takes what the text DataModules give (text.py): `(ids, weights)`, the ids with their TF-IDF
weights (data.weighting=tfidf, the default), or `ids` alone, whose embeddings it averages.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainkit.models.classifier import ClassifierModule


class BagOfNgrams(nn.Module):
    """EmbeddingBag over padded id rows (id 0 = padding, left out), then a linear head."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        num_classes: int,
        hidden: int,
        dropout: float,
        init_std: float | None = 0.01,
    ):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode="sum", padding_idx=0)
        if init_std is not None:
            # torch's N(0, 1) makes every row of a rare word or bigram as large as anything
            # training learns, noise the head then fits; small rows stay near 0 until data
            # moves them
            nn.init.normal_(self.embedding.weight, std=init_std)
            with torch.no_grad():
                self.embedding.weight[0].zero_()
        head: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden > 0:
            head += [nn.Linear(embed_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        head.append(nn.Linear(hidden if hidden > 0 else embed_dim, num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        if isinstance(x, torch.Tensor):  # ids alone: the mean of their embeddings
            ids = x
            real = (ids != 0).float()
            weights = real / real.sum(1, keepdim=True).clamp_min(1)
        else:
            ids, weights = x
        return self.head(self.embedding(ids, per_sample_weights=weights))


class TextClassifier(ClassifierModule):
    """Bag of n-grams classifier. `vocab_size` and `num_classes` come from the DataModule;
    `init_std` is the spread of the initial embeddings (null: torch's N(0, 1))."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 64,
        hidden: int = 0,
        dropout: float = 0.0,
        init_std: float | None = 0.01,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(num_classes)
        self.save_hyperparameters()
        self.net = BagOfNgrams(vocab_size, embed_dim, num_classes, hidden, dropout, init_std)
