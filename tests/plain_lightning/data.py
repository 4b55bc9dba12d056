"""Plain LightningDataModules, written as Lightning's docs write them: setup() and the
*_dataloader() methods, nothing else."""

from __future__ import annotations

import lightning as L
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, IterableDataset, TensorDataset, random_split


def digits() -> TensorDataset:
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    return TensorDataset(x, torch.tensor(data.target))


class DigitsDataModule(L.LightningDataModule):
    """(a) map-style: a TensorDataset split with random_split in setup(); plain DataLoaders."""

    def __init__(self, batch_size: int = 32):
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage: str):
        generator = torch.Generator().manual_seed(0)
        self.train, self.val, self.test = random_split(digits(), [0.7, 0.15, 0.15], generator)

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test, batch_size=self.batch_size)


class Endless(IterableDataset):
    """A stream with no length: the training rows, in a new order each pass."""

    def __init__(self, rows: TensorDataset):
        self.rows = rows
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        order = torch.randperm(len(self.rows), generator=torch.Generator().manual_seed(self.passes))
        for i in order.tolist():
            yield self.rows[i]


class StreamDataModule(DigitsDataModule):
    """(b) a training loader over an IterableDataset without a length."""

    def train_dataloader(self):
        return DataLoader(Endless(self.train), batch_size=self.batch_size)


class LitDataModule(DigitsDataModule):
    """(b) LitData: a StreamingDataset over a folder written by litdata.optimize (make_stream.py)
    and a StreamingDataLoader for training (Lightning saves and restores its position)."""

    def __init__(self, path: str, batch_size: int = 32):
        super().__init__(batch_size)
        self.path = path

    def train_dataloader(self):
        import litdata

        stream = litdata.StreamingDataset(self.path, shuffle=True, seed=0)
        return litdata.StreamingDataLoader(stream, batch_size=self.batch_size)


class Dicts(torch.utils.data.Dataset):
    """Rows as Hugging Face datasets give them: {"image": ..., "label": ...}."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        x, y = self.rows[i]
        return {"image": x.view(1, 8, 8), "label": y}


class DictDataModule(DigitsDataModule):
    """(c) batches that are dicts {"image": (N, 1, 8, 8), "label": (N,)}."""

    def setup(self, stage: str):
        super().setup(stage)
        self.train, self.val, self.test = Dicts(self.train), Dicts(self.val), Dicts(self.test)
