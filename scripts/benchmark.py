"""What trainkit costs, measured side by side in one process: `python scripts/benchmark.py`.

1. Throughput of trainkit's training path (its Trainer config, default callbacks, TensorBoard
   logging, progress bar, last.ckpt) against bare Lightning (the same LightningModule, data and
   number of iterations on a Trainer with no callbacks, no logger and no progress bar) and
   against a hand-written PyTorch loop (the same network, data tensors, optimizer and batch
   size), for the CNN on digits and the text model at their default batch sizes, the linear
   regression, and MNIST-size work: the CNN on 28x28 images in batches of 128 (synthetic images
   in the real MNIST files, read by trainkit's MNIST DataModule). Rounds alternate (loop,
   trainkit, bare, loop, ...); every contender times the same window, from the first training
   batch to the end of the last; validation is off (limit_val_batches=0), so the best
   checkpoint and early stopping, which need a validation metric, are dropped. Reported: the
   median over rounds of each round's samples/s ratio.
2. With --compile: compile=true against eager on the MNIST-size CNN (benchmark_compile.py):
   warm-up seconds, steady samples/s, their ratio and the break-even point.
3. Startup (benchmark_startup.py): `python train.py --help` and `--cfg job` against
   `python -c "import torch"`, and the time from process start to the end of the first training
   step of `python train.py` beside a minimal Lightning + Hydra script doing the same run (the
   same CNN and digits, a plain Trainer, no callbacks of trainkit's).

Prints a table; `--json FILE` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (label, overrides): each model at its data config's default batch size, and MNIST-size work
WORKLOADS = {
    "cnn": ["model=cnn"],
    "text": ["model=text"],
    "regression": ["model=regression"],
    "mnist_cnn": ["model=cnn", "data=mnist", "data.batch_size=128"],
}


def compose(overrides: list[str], out_dir: Path):
    from trainkit.cli import compose_config

    return compose_config(ROOT / "conf", overrides, out_dir)


def write_mnist_files(root: Path, n_train: int = 6000, n_test: int = 1000) -> None:
    """Random 28x28 images in the four real IDX files, where torchvision reads them."""
    import numpy as np

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            (2051).to_bytes(4, "big")
            + n.to_bytes(4, "big")
            + bytes([0, 0, 0, 28] * 2)
            + images.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            (2049).to_bytes(4, "big") + n.to_bytes(4, "big") + labels.tobytes()
        )


class Timed:
    """A Lightning callback: samples and seconds from the first training batch to the end."""

    def __new__(cls):
        from lightning.pytorch.callbacks import Callback
        from lightning.pytorch.utilities.data import extract_batch_size

        class _Timed(Callback):
            start = end = None
            samples = 0

            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                if self.start is None:
                    self.start = time.perf_counter()

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                self.samples += extract_batch_size(batch)

            def on_train_end(self, trainer, pl_module):
                self.end = time.perf_counter()

        return _Timed()


def setup_run(workload: str, extra: list[str], out_dir: Path):
    """(config, DataModule set up for fit, LightningModule), seeded alike each time."""
    import lightning as L
    from hydra.utils import instantiate

    from trainkit.training import build_model

    cfg = compose([*WORKLOADS[workload], *extra], out_dir)
    L.seed_everything(0, verbose=False)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    return cfg, dm, build_model(cfg, dm)


NO_VALIDATION = ["trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0", "test=false"]


def trainkit_round(workload: str, iterations: int, out_dir: Path) -> float:
    """Samples/s of trainkit's training path for `iterations` iterations."""
    from trainkit.training import build_trainer

    extra = ["trainer.max_epochs=-1", f"trainer.max_steps={iterations}", *NO_VALIDATION]
    extra += ["callbacks.model_checkpoint=null", "callbacks.early_stopping=null"]
    cfg, dm, model = setup_run(workload, extra, out_dir)
    trainer, _, _ = build_trainer(cfg)
    timer = Timed()
    trainer.callbacks.append(timer)
    trainer.fit(model, datamodule=dm)
    return timer.samples / (timer.end - timer.start)


def bare_round(workload: str, iterations: int, out_dir: Path) -> float:
    """Samples/s of a stock Lightning Trainer with nothing on, on the same module and data."""
    import lightning as L

    _, dm, model = setup_run(workload, [], out_dir)
    timer = Timed()
    trainer = L.Trainer(
        max_epochs=-1,
        max_steps=iterations,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out_dir,
    )
    trainer.fit(model, datamodule=dm)
    return timer.samples / (timer.end - timer.start)


def loop_round(workload: str, iterations: int, out_dir: Path) -> float:
    """The same network, data, optimizer, batch size and iterations, in plain PyTorch (with the
    DataModule's batch-wise preprocessing where it has one: uint8 MNIST -> normalised float)."""
    import torch
    import torch.nn.functional as F

    _, dm, model = setup_run(workload, [], out_dir)
    net, regression = model.net, workload == "regression"
    optimizer = model.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    dataset = dm.make_dataset("train")
    preprocess = getattr(dm, "preprocess", None)
    batches = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(range(len(dataset))), dm.batch_size, drop_last=False
    )
    net.train()
    done = samples = 0
    start = time.perf_counter()
    while done < iterations:
        for idx in batches:
            x, y = dataset[torch.tensor(idx)]
            if preprocess is not None:
                x = preprocess(x, train=True)
            out = net(x)
            loss = F.mse_loss(out.squeeze(-1), y) if regression else F.cross_entropy(out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done, samples = done + 1, samples + len(y)
            if done == iterations:
                break
    return samples / (time.perf_counter() - start)


def throughput(workloads: list[str], iterations: dict[str, int], rounds: int) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("TRAINKIT_DATA_DIR", str(Path(tmp) / "data"))
        write_mnist_files(Path(os.environ["TRAINKIT_DATA_DIR"]))
        for name in workloads:
            n = iterations[name]
            for warm in (loop_round, trainkit_round, bare_round):  # kernels, caches, imports
                warm(name, 5, Path(tmp) / "warm")
            loop, tk, bare = [], [], []
            for r in range(rounds):
                out = Path(tmp) / f"{name}{r}"
                loop.append(loop_round(name, n, out / "loop"))
                tk.append(trainkit_round(name, n, out / "trainkit"))
                bare.append(bare_round(name, n, out / "bare"))
            ratios = {
                "trainkit / bare Lightning": [t / b for t, b in zip(tk, bare, strict=True)],
                "trainkit / hand loop": [t / h for t, h in zip(tk, loop, strict=True)],
                "bare Lightning / hand loop": [b / h for b, h in zip(bare, loop, strict=True)],
            }
            results[name] = {
                "iterations": n,
                "samples_per_s": {
                    "hand_loop": statistics.median(loop),
                    "trainkit": statistics.median(tk),
                    "bare_lightning": statistics.median(bare),
                },
                "ratios": {
                    k: {"median": statistics.median(v), "rounds": v} for k, v in ratios.items()
                },
            }
            for label, values in ratios.items():
                print(
                    f"  {name:10s} {label:28s} {statistics.median(values):.3f}  "
                    f"(rounds: {', '.join(f'{v:.2f}' for v in values)})",
                    flush=True,
                )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300, help="per round (small models)")
    parser.add_argument("--mnist-iterations", type=int, default=30, help="per round (MNIST CNN)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--startup-repeats", type=int, default=5)
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also compiled vs eager (MNIST CNN)")
    parser.add_argument("--compile-iterations", type=int, default=150, help="per compile round")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    results: dict = {}
    if not args.skip_throughput:
        iterations = {w: args.iterations for w in WORKLOADS} | {"mnist_cnn": args.mnist_iterations}
        print(f"throughput: {args.rounds} alternating rounds")
        results["throughput"] = throughput(args.workloads, iterations, args.rounds)
    if args.compile:
        from benchmark_compile import compile_section

        results["compile"] = compile_section(args.compile_iterations, args.rounds)
    if not args.skip_startup:
        from benchmark_startup import startup

        s = results["startup"] = startup(args.startup_repeats)
        print(
            f"  import torch {s['import_torch_s']:.2f}s, torch+lightning "
            f"{s['import_torch_lightning_s']:.2f}s"
        )
        for name, key in (("--help", "help"), ("--cfg job", "cfg_job")):
            ratio = s[f"{key}_over_import_torch"]
            print(f"  train.py {name} {s[f'{key}_s']:.2f}s = {ratio:.2f} x import torch")
        print(
            f"  first training step: train.py {s['first_step_trainkit_s']:.2f}s, a minimal "
            f"Lightning + Hydra script {s['first_step_minimal_app_s']:.2f}s"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
