"""compile=true against eager on a GPU, as trainkit trains: `python scripts/gpu_check.py`.

The CNN at the MNIST size (60,000 synthetic 28x28 images in the real MNIST files, batches of
128) on one GPU with `trainer.precision=bf16-mixed`, through trainkit's training path, eager and
compiled in alternating rounds (see benchmark_compile.py); prints one small table: warm-up
seconds (compiling happens there), steady samples/s, their ratio and where compiling pays off.
About 3 minutes on one GPU. `--device cpu --tiny` runs the same code small on the CPU (for the
tests; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchmark import write_mnist_files
from benchmark_compile import compare, table

DEVICES = {
    "gpu": [
        "trainer.accelerator=gpu",
        "trainer.devices=1",
        "trainer.precision=bf16-mixed",
        "data.pin_memory=true",
    ],  # fmt: skip
    "cpu": ["trainer.accelerator=cpu", "trainer.devices=1"],
}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=list(DEVICES), default="gpu")
    parser.add_argument("--tiny", action="store_true", help="a few iterations on little data")
    parser.add_argument("--iterations", type=int, default=400, help="per round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    iterations, warmup, rounds = (12, 4, 1) if args.tiny else (args.iterations, 20, args.rounds)
    n_train = 1000 if args.tiny else 60_000
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRAINKIT_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")  # empty at first
        write_mnist_files(Path(tmp) / "data", n_train=n_train, n_test=200)
        extra = [*DEVICES[args.device], "trainer.enable_progress_bar=false", "logger=none"]
        result = compare(extra, iterations, warmup, rounds, Path(tmp) / "runs")
    text = table(result, f"CNN, MNIST size, {args.device}")
    print(text)
    return text


if __name__ == "__main__":
    main()
