"""Image-folder throughput: data=image_folder (streaming and cached) vs torchvision's ImageFolder.

    python scripts/benchmark_image_folder.py                       # 20,000 JPEGs of 64x64
    python scripts/benchmark_image_folder.py --n-images 5000 --workers 2 --out /tmp/jpegs

A seeded folder of JPEG files (10 classes; smooth random images with some noise, so they compress
like photos) is written to a temporary directory, or to --out (kept, and reused when it already
holds the same number of files). Then, in this process, each pipeline produces normalised float
batches of 64 on the CPU, with the same number of DataLoader workers:

- torchvision: `ImageFolder(root, Compose([Resize, ToTensor, Normalize]))` + `DataLoader(
  batch_size=64, num_workers=W, shuffle=True)`: one PIL image and one transform call per file;
- streaming: `ImageFolderDataModule(max_memory_gb=0)`: the workers decode a whole batch of files
  into one uint8 tensor, the main process normalises it (`preprocess`, as on the device in
  training);
- cached: `ImageFolderDataModule` with the images in memory: its first epoch includes decoding
  every file into the cache (the set-up), later epochs only slice and normalise.

Images/s = images of an epoch / seconds for it. The DataModules train on every image here
(val_fraction = test_fraction = 0) so that an epoch covers the same files as torchvision's. For
torchvision and streaming the best of --epochs epochs counts (other processes on a shared machine
only ever slow an epoch down); the DataModule's set-up (every file decoded once to check it and
for the training statistics) is shown in its own column.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

CLASSES = 10


def write_jpegs(root: Path, n: int, size: int, seed: int = 0) -> None:
    """n seeded JPEG files of size x size in CLASSES class folders (skipped if already there)."""
    import numpy as np
    from PIL import Image

    if len(list(root.glob("*/*.jpg"))) == n:
        return
    rng = np.random.default_rng(seed)
    for c in range(CLASSES):
        (root / f"class_{c}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), dtype=np.int16)
        pixels = np.clip(smooth + rng.integers(-12, 13, smooth.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"class_{i % CLASSES}" / f"{i:06d}.jpg", quality=90)


def torchvision_pipeline(root: Path, size: int, workers: int, epochs: int):
    from benchmark_loader import timed_epochs  # scripts/ is on sys.path
    from torch.utils.data import DataLoader
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    start = time.perf_counter()
    transform = transforms.Compose(
        [
            transforms.Resize((size, size)),
            transforms.ToTensor(),
            transforms.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]),
        ]
    )
    dataset = ImageFolder(str(root), transform=transform)
    loader = DataLoader(dataset, batch_size=64, num_workers=workers, shuffle=True)
    return time.perf_counter() - start, timed_epochs(loader, epochs)


def datamodule_pipeline(root: Path, size: int, workers: int, epochs: int, streaming: bool):
    from benchmark_loader import timed_epochs

    from trainkit.data.image_folder import ImageFolderDataModule

    start = time.perf_counter()
    dm = ImageFolderDataModule(
        path=str(root),
        image_size=size,
        max_memory_gb=0 if streaming else 1e6,
        batch_size=64,
        num_workers=workers,
        val_fraction=0.0,
        test_fraction=0.0,
    )
    dm.setup("fit")
    assert dm.streaming is streaming
    loader = dm.train_dataloader()
    return time.perf_counter() - start, timed_epochs(loader, epochs, dm.preprocess)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-images", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=64, help="image width and height")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers, every pipeline")
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed per pipeline (>= 2)")
    parser.add_argument("--out", type=Path, help="folder for the JPEG files (default: temporary)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of the main process, where the DataModules normalise their batches "
        "(default 1: a small op per batch, which more threads only slow down on a busy machine)",
    )
    args = parser.parse_args()
    epochs = max(2, args.epochs)

    import PIL
    import torch
    import torchvision

    torch.set_num_threads(args.threads)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"machine: {platform.machine()}, {cores} cores usable ({os.cpu_count()} in all), "
        f"load average {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), torchvision "
        f"{torchvision.__version__}, Pillow {PIL.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp) / "jpegs"
        start = time.perf_counter()
        write_jpegs(root, args.n_images, args.size)
        print(
            f"data: {args.n_images} JPEG files of {args.size}x{args.size} in {CLASSES} classes "
            f"in {root} ({time.perf_counter() - start:.1f} s to write or find); batches of 64, "
            f"{args.workers} DataLoader workers, {epochs} epochs each\n"
        )
        tv_setup, tv = torchvision_pipeline(root, args.size, args.workers, epochs)
        st_setup, st = datamodule_pipeline(root, args.size, args.workers, epochs, True)
        ca_setup, ca = datamodule_pipeline(root, args.size, args.workers, epochs, False)

    def best(times: list[tuple[int, float]]) -> tuple[int, float]:
        return max(times, key=lambda t: t[0] / t[1])

    first = (ca[0][0], ca_setup + ca[0][1])  # decoding into the cache is the first epoch's work
    rows = [
        ("torchvision ImageFolder + DataLoader (best epoch)", tv_setup, best(tv)),
        ("image_folder streaming (best epoch)", st_setup, best(st)),
        ("image_folder cached, epoch 1 (= set-up + epoch)", ca_setup, first),
        ("image_folder cached, epoch 2+ (best)", None, best(ca[1:])),
    ]
    base = best(tv)[0] / best(tv)[1]
    ratios = [images / seconds / base for _, _, (images, seconds) in rows]
    print(f"| {'pipeline':50s} | {'set-up s':>8s} | {'epoch s':>7s} | {'images/s':>9s} | vs tv |")
    print(f"|{'-' * 52}|{'-' * 10}|{'-' * 9}|{'-' * 11}|-------|")
    for (name, setup, (images, seconds)), ratio in zip(rows, ratios, strict=True):
        setup_s = "" if setup is None else f"{setup:.2f}"
        print(
            f"| {name:50s} | {setup_s:>8s} | {seconds:7.2f} | {images / seconds:9.0f} "
            f"| {ratio:4.1f}x |"
        )
    print(
        f"\nclaims: streaming >= 1.0x: {ratios[1]:.2f}x; cached from its second epoch >= 5x: "
        f"{ratios[3]:.1f}x"
    )
    for name, times in (("torchvision", tv), ("streaming", st), ("cached", ca)):
        print(f"{name} images/s by epoch: " + ", ".join(f"{n / s:.0f}" for n, s in times))


if __name__ == "__main__":
    main()
