"""The default image data: scikit-learn's digits ship with it and work offline."""

from __future__ import annotations

import torch

from trainkit.data.base import InMemoryDataModule
from trainkit.data.split_record import tensor_keys


class DigitsDataModule(InMemoryDataModule):
    """scikit-learn's handwritten digits: 1,797 real 8x8 grey images of 0-9 (UCI, bundled).

    Split train/val/test stratified by class and seeded; pixels scaled to [0, 1] then standardised
    with the mean and std of the training split.
    """

    class_names = [str(d) for d in range(10)]
    config = "digits"
    unit = "images"

    def source(self) -> dict:
        import sklearn

        return {
            "dataset": "scikit-learn's digits",
            "version": f"scikit-learn {sklearn.__version__}",
        }

    def load_splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.tensor(digits.target, dtype=torch.long)
        idx = self.carve_indices(len(y), self.val_fraction, self.test_fraction, y.tolist())
        keys = tensor_keys(x, y)
        self.record_splits({name: keys[i] for name, i in idx.items()})
        if "mean" not in self.fitted:
            train = x[idx["train"]]
            self.fitted.update(mean=float(train.mean()), std=float(train.std()))
        mean, std = self.fitted["mean"], self.fitted["std"]
        return {name: ((x[i] - mean) / std, y[i]) for name, i in idx.items()}

    @property
    def dims(self) -> dict:
        self.setup()
        return {"input_shape": list(self.splits["train"][0].shape[1:]), "num_classes": 10}
