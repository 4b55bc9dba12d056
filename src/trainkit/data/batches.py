"""How an in-memory DataModule batches: whole batches of indices sliced from tensors, in an
order that depends only on (seed, epoch), sharded across processes, and the check that a
mid-epoch resume cuts its epoch into the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler

from trainkit.budget import num_batches
from trainkit.errors import DataError


class TensorBatches(Dataset):
    """Tensors indexed a whole batch at a time: `ds[idx]` returns `(t[idx] for t in tensors)`."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        sizes = {len(t) for t in tensors}
        if len(sizes) != 1:
            raise ValueError(f"tensors of different lengths: {sorted(sizes)}")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # index_select copies whole rows; t[idx] copies element by element (100x slower on images)
        return tuple(t.index_select(0, idx) for t in self.tensors)


class BatchIndexSampler(DistributedSampler[torch.Tensor]):
    """Yields one index tensor per batch; the order of epoch `e` depends only on (seed, e).

    Under a distributed strategy it behaves like DistributedSampler + BatchSampler: each of the
    `world_size` processes takes every `world_size`-th index of the same permutation, then cuts
    its share into batches. Training shares are padded by wrapping around to ceil(n / world_size)
    each (DDP needs the same number of iterations on every process); evaluation shares are not
    (`pad=False`): every sample is evaluated exactly once, as on one device.

    It is a DistributedSampler (one that shards itself) so that Lightning, whose
    `use_distributed_sampler=True` wraps any other sampler, leaves it alone: wrapped, it was
    sharded twice and each of 2 processes saw a quarter of the data.
    """

    def __init__(
        self, n: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int = 0
    ) -> None:
        super().__init__(range(n), num_replicas=1, rank=0, shuffle=shuffle, seed=seed)
        self.n, self.batch_size, self.drop_last = n, batch_size, drop_last
        self.pad = True
        self.skip = 0  # batches to leave out of the next epoch (a resume mid-epoch)

    def set_distributed(self, rank: int, world_size: int, pad: bool = True) -> None:
        """This process's share: rank `rank` of `world_size`; `pad=False` for evaluation (a
        share too small to be non-empty everywhere is still padded: every process must log)."""
        self.rank, self.num_replicas = rank, world_size
        self.pad = pad or self.n < world_size

    @property
    def world_size(self) -> int:
        return self.num_replicas

    @property
    def samples_per_rank(self) -> int:
        if self.pad:
            return math.ceil(self.n / self.world_size)
        return len(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return num_batches(self.samples_per_rank, self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        if self.world_size > 1:
            padded = self.samples_per_rank * self.world_size if self.pad else self.n
            order = order.repeat(math.ceil(padded / self.n))[:padded][self.rank :: self.world_size]
        batches = order[: len(self) * self.batch_size].split(self.batch_size)
        skip, self.skip = self.skip, 0
        yield from batches[skip:]


def check_position(position: dict[str, int], batch_size: int, world_size: int) -> None:
    """A checkpoint written mid-epoch goes on after the batches it had done, which are the same
    samples only in batches of the same size on as many processes: else one sentence. (Lightning
    counts the epoch's batches done, so going on from the exact sample in batches of another size
    would leave its counts wrong; a checkpoint of before sizes were recorded is not checked.)"""
    old_size, old_world = position.get("batch_size"), position.get("world_size")
    size_changed = old_size is not None and old_size != batch_size
    world_changed = old_world is not None and old_world != world_size
    if not (size_changed or world_changed):
        return
    done = f"{position['batches_done']} batches of {old_size}"
    if old_world not in (None, 1):
        done += f" on each of {old_world} processes"
    now = [f"data.batch_size is {batch_size}"] if size_changed else []
    now += [f"it runs on {world_size} process{'es' if world_size != 1 else ''}"] * world_changed
    on = f" on {old_world} process{'es' if old_world != 1 else ''}" if world_changed else ""
    raise DataError(
        f"the checkpoint was written in the middle of an epoch ({done}, "
        f"{position.get('samples_done', '?')} samples done), but {' and '.join(now)} now, which "
        f"would cut the rest of that epoch into other batches and skip or repeat samples: resume "
        f"with data.batch_size={old_size}{on}, or from a checkpoint written at the end of an epoch."
    )
