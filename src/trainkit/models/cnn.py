"""A small CNN image classifier that adapts to the input's channels, height and width."""

from __future__ import annotations

from typing import Any

from torch import nn

from trainkit.models.classifier import ClassifierModule


def conv_block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers = [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def build_cnn(
    input_shape: list[int], num_classes: int, channels: list[int], hidden: int, dropout: float
) -> nn.Sequential:
    """Conv blocks (each halving height and width while they are at least 2), then an MLP head.

    8x8 digits -> 2x2 after two blocks; 28x28 MNIST -> 7x7; 32x32 CIFAR -> 8x8.
    """
    c, h, w = input_shape
    blocks = []
    for c_out in channels:
        pool = h >= 2 and w >= 2
        blocks.append(conv_block(c, c_out, pool))
        c, h, w = c_out, (h // 2 if pool else h), (w // 2 if pool else w)
    return nn.Sequential(
        *blocks,
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(c * h * w, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


class ImageClassifier(ClassifierModule):
    """CNN classifier. `input_shape` (C, H, W) and `num_classes` come from the DataModule;
    `optimizer` and `scheduler` from conf/optimizer/ and conf/scheduler/ (see optim.py)."""

    def __init__(
        self,
        input_shape: list[int],
        num_classes: int,
        channels: list[int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.25,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(num_classes)
        self.save_hyperparameters()
        self.net = build_cnn(list(input_shape), num_classes, list(channels), hidden, dropout)
