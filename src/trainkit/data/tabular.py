"""Regression data: the synthetic line of the classic iterations-vs-epochs example and the
bundled diabetes table. Both work offline."""

from __future__ import annotations

from typing import Any

import torch

from trainkit.data.base import InMemoryDataModule
from trainkit.data.split_record import tensor_keys
from trainkit.errors import DataError


class TabularRegressionDataModule(InMemoryDataModule):
    """Features (N, F) and a target (N,), split by seed, optionally standardised.

    Standardisation uses the mean and std of the training split only. The target's mean and std
    are handed to the model (see `dims`), which reports MSE/MAE in the target's original units.
    """

    def __init__(self, standardize: bool = True, standardize_target: bool = True, **loader) -> None:
        super().__init__(**loader)
        self.standardize = standardize
        self.standardize_target = standardize_target

    def load_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return features (N, F) and target (N,), float32 or float64 (load_splits returns
        float32, what the model computes in, after standardising)."""
        raise NotImplementedError

    def load_splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        x, y = self.load_arrays()
        idx = self.carve_indices(len(y), self.val_fraction, self.test_fraction)
        keys = self.sample_keys(x, y)
        self.record_splits({name: keys[i] for name, i in idx.items()})
        if "target_mean" not in self.fitted:  # else: the checkpoint's statistics
            self.fitted.update(self.training_statistics(x[idx["train"]], y[idx["train"]]))
        f = self.fitted
        if len(f["feature_mean"]) != x.shape[1]:
            raise DataError(
                f"the data has {x.shape[1]} features, but the checkpoint's model was trained "
                f"on {len(f['feature_mean'])}: use the data it was trained on."
            )
        x = (x - torch.tensor(f["feature_mean"])) / torch.tensor(f["feature_std"])
        y = (y - f["target_mean"]) / f["target_std"]
        return {name: (x[i].float(), y[i].float()) for name, i in idx.items()}

    def sample_keys(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample hashes for the split record (split_record.py): of the values, by default."""
        return tensor_keys(x, y)

    def training_statistics(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        """Mean and std of the training split's features and target (0 and 1 for what is not
        standardised)."""
        n = x.shape[1]
        mean, std = [0.0] * n, [1.0] * n
        if self.standardize:
            mean, std = x.mean(0).tolist(), x.std(0).clamp_min(1e-12).tolist()
        y_mean, y_std = 0.0, 1.0
        if self.standardize_target:
            y_mean, y_std = y.mean().item(), max(y.std().item(), 1e-12)
        return {
            "feature_mean": mean,
            "feature_std": std,
            "target_mean": y_mean,
            "target_std": y_std,
        }

    def to_target_units(self, y: torch.Tensor) -> torch.Tensor:
        """Targets as the loaders give them (standardised) back in the data's own units."""
        return y * self.fitted["target_std"] + self.fitted["target_mean"]

    @property
    def dims(self) -> dict:
        self.setup()
        return {
            "in_features": self.splits["train"][0].shape[1],
            "target_mean": self.fitted["target_mean"],
            "target_std": self.fitted["target_std"],
        }


class LinearDataModule(TabularRegressionDataModule):
    """y = slope * x + intercept + noise * N(0, 1), with x ~ U(-1, 1). Not standardised, so a
    linear model's weight and bias are directly the slope and the intercept."""

    config = "linear"

    def __init__(
        self,
        n_samples: int = 1000,
        slope: float = 2.0,
        intercept: float = 1.0,
        noise: float = 0.1,
        **loader,
    ) -> None:
        super().__init__(standardize=False, standardize_target=False, **loader)
        self.n_samples, self.slope, self.intercept, self.noise = n_samples, slope, intercept, noise

    def source(self) -> dict:
        """Generated from the seed (recorded beside it) and these parameters."""
        names = ("n_samples", "slope", "intercept", "noise")
        return {"dataset": "linear (generated)", **{k: getattr(self, k) for k in names}}

    def load_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        x = torch.rand(self.n_samples, 1, generator=g) * 2 - 1
        y = (
            self.slope * x[:, 0]
            + self.intercept
            + self.noise * torch.randn(self.n_samples, generator=g)
        )
        return x, y


class DiabetesDataModule(TabularRegressionDataModule):
    """scikit-learn's diabetes table (Efron et al. 2004): 442 patients, 10 baseline features,
    a quantitative measure of disease progression one year later. Bundled with scikit-learn."""

    config = "diabetes"

    def source(self) -> dict:
        import sklearn

        return {
            "dataset": "scikit-learn's diabetes",
            "version": f"scikit-learn {sklearn.__version__}",
        }

    def load_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        from sklearn.datasets import load_diabetes

        data = load_diabetes(scaled=False)
        return (
            torch.tensor(data.data, dtype=torch.float32),
            torch.tensor(data.target, dtype=torch.float32),
        )
