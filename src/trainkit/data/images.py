"""Image classification data. The default, the digits, ships with scikit-learn and works offline."""

from __future__ import annotations

import torch

from trainkit.data.base import InMemoryDataModule, split_indices


class ImageDataModule(InMemoryDataModule):
    """Images held as one float tensor (N, C, H, W), normalised with train-split statistics."""

    num_classes: int

    @property
    def dims(self) -> dict:
        self.setup()
        x = self.splits["train"][0]
        return {"input_shape": list(x.shape[1:]), "num_classes": self.num_classes}


class DigitsDataModule(ImageDataModule):
    """scikit-learn's handwritten digits: 1,797 real 8x8 grey images of 0-9 (UCI, bundled).

    Split train/val/test stratified by class and seeded; pixels scaled to [0, 1] then standardised
    with the mean and std of the training split.
    """

    num_classes = 10

    def load_splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.tensor(digits.target, dtype=torch.long)
        idx = split_indices(len(y), self.val_fraction, self.test_fraction, self.seed, y.tolist())
        mean, std = x[idx["train"]].mean(), x[idx["train"]].std()
        return {name: ((x[i] - mean) / std, y[i]) for name, i in idx.items()}
