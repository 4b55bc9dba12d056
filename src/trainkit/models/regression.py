"""An MLP regressor; with no hidden layers it is linear regression."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from trainkit.models.base import TrainkitModule


def build_mlp(in_features: int, hidden: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


class Regressor(TrainkitModule):
    """Trained on the (possibly standardised) target with MSE; MSE, MAE and R2 are reported in
    the target's original units (the DataModule hands over its mean and std)."""

    def __init__(
        self,
        in_features: int,
        hidden: list[int] = (),
        dropout: float = 0.0,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.save_hyperparameters(logger=False)
        self.net = build_mlp(in_features, list(hidden), dropout)
        self.target_mean, self.target_std = target_mean, target_std
        self.val_metrics = self.make_metrics()
        self.test_metrics = self.make_metrics()

    def make_metrics(self) -> MetricCollection:
        return MetricCollection(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()},
            compute_groups=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).squeeze(-1)

    def shared_step(self, batch: tuple[torch.Tensor, torch.Tensor]):
        x, y = batch
        pred = self(x)
        return F.mse_loss(pred, y), pred, y

    def metric_inputs(self, outputs: torch.Tensor, target: torch.Tensor) -> tuple:
        return self.to_original_units(outputs), self.to_original_units(target)

    def train_sums(self, outputs: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"abs_err": (outputs - target).abs().sum()}

    def train_metrics(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, torch.Tensor]:
        # the loss is the MSE on the standardised scale: x std^2 gives the original units
        return {
            "mse": sums["loss"] / count * self.target_std**2,
            "mae": sums["abs_err"] / count * self.target_std,
        }

    def to_original_units(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.target_std + self.target_mean

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self.to_original_units(self(batch[0]))

    def final_report(self) -> dict[str, Any]:
        """For linear regression, the learned weights and bias (slope and intercept)."""
        if len(self.net) != 1:
            return {}
        layer = self.net[0]
        weights = (layer.weight.detach()[0] * self.target_std).tolist()
        bias = float(layer.bias.detach()[0] * self.target_std + self.target_mean)
        return {"weights": weights, "bias": bias}
