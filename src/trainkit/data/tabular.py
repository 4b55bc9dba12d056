"""Regression data: the synthetic line of the classic iterations-vs-epochs example and the
bundled diabetes table. Both work offline."""

from __future__ import annotations

import torch

from trainkit.data.base import InMemoryDataModule, split_indices


class TabularRegressionDataModule(InMemoryDataModule):
    """Features (N, F) and a target (N,), split by seed, optionally standardised.

    Standardisation uses the mean and std of the training split only. The target's mean and std
    are handed to the model (see `dims`), which reports MSE/MAE in the target's original units.
    """

    def __init__(self, standardize: bool = True, standardize_target: bool = True, **loader) -> None:
        super().__init__(**loader)
        self.standardize = standardize
        self.standardize_target = standardize_target
        self.target_mean, self.target_std = 0.0, 1.0

    def load_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return features (N, F) float32 and target (N,) float32."""
        raise NotImplementedError

    def load_splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        x, y = self.load_arrays()
        idx = split_indices(len(y), self.val_fraction, self.test_fraction, self.seed)
        xt, yt = x[idx["train"]], y[idx["train"]]
        if self.standardize:
            mean, std = xt.mean(0), xt.std(0).clamp_min(1e-12)
            x = (x - mean) / std
        if self.standardize_target:
            self.target_mean, self.target_std = yt.mean().item(), max(yt.std().item(), 1e-12)
            y = (y - self.target_mean) / self.target_std
        return {name: (x[i], y[i]) for name, i in idx.items()}

    @property
    def dims(self) -> dict:
        self.setup()
        return {
            "in_features": self.splits["train"][0].shape[1],
            "target_mean": self.target_mean,
            "target_std": self.target_std,
        }


class LinearDataModule(TabularRegressionDataModule):
    """y = slope * x + intercept + noise * N(0, 1), with x ~ U(-1, 1). Not standardised, so a
    linear model's weight and bias are directly the slope and the intercept."""

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

    def load_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        from sklearn.datasets import load_diabetes

        data = load_diabetes(scaled=False)
        return (
            torch.tensor(data.data, dtype=torch.float32),
            torch.tensor(data.target, dtype=torch.float32),
        )
