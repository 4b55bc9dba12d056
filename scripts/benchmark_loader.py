"""Training-loader throughput: trainkit's MNIST DataModule vs torchvision's standard pipeline.

    python scripts/benchmark_loader.py                      # synthetic IDX files (no download)
    python scripts/benchmark_loader.py --data-dir data      # real files in data/MNIST/raw/

Both read the same IDX files and produce normalised float batches:

- torchvision: `MNIST(root, transform=Compose([ToTensor(), Normalize(...)]))` + `DataLoader(
  batch_size, shuffle=True)`: one PIL image, one transform call per sample, then collation;
- trainkit: `MNISTDataModule` slices a whole batch out of a uint8 tensor, then `preprocess`
  (what `on_after_batch_transfer` does in training) normalises the batch in one operation.

Throughput = training samples of one epoch / seconds for that epoch, the best of --repeats
epochs (other processes on a shared machine only ever slow an epoch down); set-up is timed
separately.
Without --data-dir, 60,000 + 10,000 random images are written in the real IDX format to a
temporary directory: the pipelines' work does not depend on the pixel values.
"""

from __future__ import annotations

import argparse
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_synthetic_mnist(root: Path, n_train: int = 60_000, n_test: int = 10_000) -> None:
    """Random digits in MNIST's files and format: root/MNIST/raw/*-idx?-ubyte, uncompressed."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        header = struct.pack(">4I", 2051, n, 28, 28)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        header = struct.pack(">2I", 2049, n)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels.tobytes())


def timed_epochs(loader, epochs: int, prepare=None) -> list[tuple[int, float]]:
    """(samples, seconds) of each of `epochs` passes over `loader`, ending in float batches
    (also used by benchmark_image_folder.py)."""
    times = []
    for epoch in range(epochs):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        samples, start = 0, time.perf_counter()
        for x, y in loader:
            if prepare is not None:
                x = prepare(x)
            assert x.dtype == torch.float32
            samples += len(y)
        times.append((samples, time.perf_counter() - start))
    return times


def fastest(times: list[tuple[int, float]]) -> tuple[int, float]:
    return min(times, key=lambda t: t[1])


def torchvision_pipeline(
    root: Path, batch_size: int, workers: int, repeats: int
) -> tuple[float, int, float]:
    from torch.utils.data import DataLoader
    from torchvision import transforms
    from torchvision.datasets import MNIST

    start = time.perf_counter()
    normalize = transforms.Normalize((0.1307,), (0.3081,))
    transform = transforms.Compose([transforms.ToTensor(), normalize])
    dataset = MNIST(str(root), train=True, transform=transform)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)
    setup = time.perf_counter() - start
    return (setup, *fastest(timed_epochs(loader, repeats)))


def trainkit_pipeline(
    root: Path, batch_size: int, workers: int, repeats: int, augment: bool
) -> tuple[float, int, float]:
    from trainkit.data.torchvision_datasets import MNISTDataModule

    start = time.perf_counter()
    dm = MNISTDataModule(
        data_dir=str(root),
        batch_size=batch_size,
        num_workers=workers,
        augment=augment,
        shift_pixels=2,
    )
    dm.setup("fit")
    loader = dm.train_dataloader()
    setup = time.perf_counter() - start
    return (setup, *fastest(timed_epochs(loader, repeats, lambda x: dm.preprocess(x, train=True))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, help="directory holding MNIST/raw/ (real files)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers, both")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed; the best counts")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: torch's choice); "
        "1 gives steadier figures on a machine shared with other processes",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        if args.data_dir is None:
            root = Path(tmp)
            write_synthetic_mnist(root)
            print(
                f"data: SYNTHETIC IDX files in the real MNIST format (60,000 + 10,000 random "
                f"images) in {root}; pass --data-dir to measure on real MNIST"
            )
        else:
            root = args.data_dir
            print(f"data: {root / 'MNIST' / 'raw'}")
        print(
            f"batch size {args.batch_size}, num_workers {args.num_workers}, torch threads "
            f"{torch.get_num_threads()}, best of {args.repeats} epochs of training batches\n"
        )
        common = (root, args.batch_size, args.num_workers, args.repeats)
        rows = [
            ("torchvision MNIST + ToTensor/Normalize + DataLoader", torchvision_pipeline(*common)),
            (
                "trainkit MNISTDataModule, batch normalisation",
                trainkit_pipeline(*common, augment=False),
            ),
            (
                "trainkit MNISTDataModule, + random shifts (augment)",
                trainkit_pipeline(*common, augment=True),
            ),
        ]
    print(f"{'pipeline':54s} {'set-up s':>9s} {'samples':>8s} {'epoch s':>8s} {'samples/s':>10s}")
    for name, (setup, samples, seconds) in rows:
        print(f"{name:54s} {setup:9.2f} {samples:8d} {seconds:8.2f} {samples / seconds:10.0f}")
    base = rows[0][1][1] / rows[0][1][2]
    ours = rows[1][1][1] / rows[1][1][2]
    print(f"\nratio trainkit / torchvision (samples/s, normalisation only): {ours / base:.1f}x")
    print("(trainkit's training split is 54,000 images: 10% is held out for validation)")


if __name__ == "__main__":
    main()
