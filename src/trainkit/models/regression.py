"""An MLP regressor; with no hidden layers it is linear regression."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from trainkit.models.optim import configure_optimizers

SGD = {"_target_": "torch.optim.SGD", "lr": 0.01, "momentum": 0.9}  # conf/optimizer/sgd.yaml


def build_mlp(in_features: int, hidden: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


class Regressor(L.LightningModule):
    """Trained with MSE on the target as the DataModule hands it over (standardised with the
    training split's mean and std, or not: see its `standardize_target`), logged as `mse` (not
    `loss`: in a log folder with classifiers, a cross-entropy and an MSE never share a chart).
    RMSE, MAE and R2 are in the target's own units: the DataModule passes its `target_mean` and
    `target_std`, and `forward` returns predictions on the training scale."""

    def __init__(
        self,
        in_features: int,
        hidden: list[int] = (),
        dropout: float = 0.0,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = build_mlp(in_features, list(hidden), dropout)
        metrics = MetricCollection(
            {"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError(), "r2": R2Score()},
            compute_groups=False,
        )
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train/mse", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch, stage: str, metrics: MetricCollection) -> None:
        x, y = batch
        pred = self(x)
        self.log(f"{stage}/mse", F.mse_loss(pred, y), prog_bar=stage == "val", sync_dist=True)
        metrics(self.to_target_units(pred), self.to_target_units(y))
        self.log_dict(metrics)

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self.to_target_units(self(batch[0]))

    def to_target_units(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.hparams.target_std + self.hparams.target_mean

    def configure_optimizers(self):
        return configure_optimizers(self, self.hparams.optimizer or SGD, self.hparams.scheduler)

    def final_report(self) -> dict[str, Any]:
        """For metrics.json: the learned weights and bias of linear regression (no hidden
        layer), in the target's units (the slope and intercept on the default data)."""
        if len(self.net) != 1:
            return {}
        layer, std = self.net[0], self.hparams.target_std
        weights = (layer.weight.detach()[0] * std).tolist()
        return {
            "weights": weights,
            "bias": float(layer.bias.detach()[0] * std + self.hparams.target_mean),
        }
