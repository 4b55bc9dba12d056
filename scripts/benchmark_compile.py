"""compile=true against eager, measured through trainkit's training path on the CNN at the MNIST
size (28x28 images, batches of 128; synthetic images in the real MNIST files).

Used by `python scripts/benchmark.py --compile` (this CPU) and `python scripts/gpu_check.py` (a
GPU, bf16-mixed). Rounds alternate (eager, compiled); before each compiled round Dynamo forgets
what it compiled, so every round compiles again: the first from an empty Inductor cache (the
callers point TORCHINDUCTOR_CACHE_DIR at a new folder), as a user's first compiled run; the later
ones with the cache the first filled, as a user's later runs of the same model. Per round, from
the per-iteration clock:

- warm-up seconds: the first `warmup` iterations (a compiled round compiles there);
- steady samples/s: the iterations after them;
- the break-even point: the compilation's extra seconds over what each iteration saves, in
  iterations (none when compiled iterations are not faster).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmark import NO_VALIDATION, setup_run, write_mnist_files


def step_clock():
    """A Lightning callback: the time at the end of each training iteration, and its samples."""
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.utilities.data import extract_batch_size

    class StepClock(Callback):
        def __init__(self) -> None:
            self.start, self.ends, self.samples = 0.0, [], []

        def on_train_start(self, trainer, pl_module):
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.ends.append(time.perf_counter())
            self.samples.append(extract_batch_size(batch))

    return StepClock()


def timed_fit(
    extra: list[str],
    iterations: int,
    warmup: int,
    compiled: bool,
    out_dir: Path,
    workload: str = "mnist_cnn",
) -> dict[str, float]:
    """One fit of `iterations` iterations of trainkit's training path (validation off)."""
    import torch

    from trainkit.compiling import compile_network
    from trainkit.training import build_trainer

    run = ["trainer.max_epochs=-1", f"trainer.max_steps={iterations}", *NO_VALIDATION]
    run += ["callbacks.model_checkpoint=null", "callbacks.early_stopping=null", *extra]
    cfg, dm, model = setup_run(workload, run, out_dir)
    if compiled:
        torch._dynamo.reset()  # compile this round from scratch
        compile_network(model)
    trainer, _, _ = build_trainer(cfg)
    clock = step_clock()
    trainer.callbacks.append(clock)
    trainer.fit(model, datamodule=dm)
    ends = clock.ends
    steady = sum(clock.samples[warmup:]) / (ends[-1] - ends[warmup - 1])
    return {"warmup_s": ends[warmup - 1] - clock.start, "samples_per_s": steady}


def compare(
    extra: list[str],
    iterations: int,
    warmup: int,
    rounds: int,
    out_dir: Path,
    workload: str = "mnist_cnn",
    batch: int = 128,
) -> dict[str, float]:
    """Medians over alternating rounds: eager and compiled figures, their ratio, the break-even."""
    eager, compiled = [], []
    for r in range(rounds):
        for runs, on in ((eager, False), (compiled, True)):
            runs.append(timed_fit(extra, iterations, warmup, on, out_dir / f"{on}{r}", workload))
    med = {
        f"{name}_{key}": statistics.median(run[key] for run in runs)
        for name, runs in (("eager", eager), ("compiled", compiled))
        for key in ("warmup_s", "samples_per_s")
    }
    med["compiled_first_warmup_s"] = compiled[0]["warmup_s"]  # from an empty cache
    if len(compiled) > 1:  # the later rounds: with Inductor's cache
        med["compiled_cached_warmup_s"] = statistics.median(c["warmup_s"] for c in compiled[1:])
    med["compiled_over_eager"] = statistics.median(
        c["samples_per_s"] / e["samples_per_s"] for e, c in zip(eager, compiled, strict=True)
    )
    saved = batch / med["eager_samples_per_s"] - batch / med["compiled_samples_per_s"]
    for cache in ("first", "cached"):
        if f"compiled_{cache}_warmup_s" in med:
            extra_s = max(0.0, med[f"compiled_{cache}_warmup_s"] - med["eager_warmup_s"])
            even = extra_s / saved if saved > 0 else float("inf")
            med[f"break_even_{cache}_iterations"] = even
    return med


def table(result: dict[str, float], where: str, epoch: int = 469) -> str:
    """The comparison as a small Markdown table and one line."""
    rows = [
        f"| {where} | warm-up (s) | steady samples/s |",
        "|---|---|---|",
        f"| eager | {result['eager_warmup_s']:.1f} | {result['eager_samples_per_s']:,.0f} |",
    ]
    steady = f"{result['compiled_samples_per_s']:,.0f}"
    rows.append(f"| compiled, empty cache | {result['compiled_first_warmup_s']:.1f} | {steady} |")
    if "compiled_cached_warmup_s" in result:
        warm = result["compiled_cached_warmup_s"]
        rows.append(f"| compiled, Inductor's cache | {warm:.1f} | {steady} |")
    pays = []
    for cache, label in (("first", "with an empty cache"), ("cached", "with the cache")):
        even = result.get(f"break_even_{cache}_iterations")
        if even is None:
            continue
        pays.append(
            f"{label}: pays off after {even:,.0f} iterations ({even / epoch:.1f} epochs of {epoch})"
            if even != float("inf")
            else f"{label}: never pays off (compiled iterations are not faster)"
        )
    ratio = f"compiled / eager: {result['compiled_over_eager']:.2f} (steady samples/s)"
    return "\n".join(rows) + "\n" + "; ".join([ratio, *pays])


def compile_section(iterations: int, rounds: int) -> dict:
    """compile=true against eager in alternating rounds: the MNIST-size CNN (batches of 128,
    469 iterations an epoch on MNIST) and the CNN on the 8x8 digits (batches of 32, 40 an epoch)."""
    warmup = min(20, iterations // 3)
    print(f"compile: {rounds} alternating rounds of {iterations} iterations ({warmup} warm-up)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("TRAINKIT_DATA_DIR", str(Path(tmp) / "data"))
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")  # empty at first
        write_mnist_files(Path(os.environ["TRAINKIT_DATA_DIR"]))
        quiet = ["trainer.enable_progress_bar=false", "logger=none"]
        for name, batch, epoch, where in (
            ("mnist_cnn", 128, 469, "CNN, MNIST size, this CPU"),
            ("cnn", 32, 40, "CNN, 8x8 digits, this CPU"),
        ):
            out = Path(tmp) / name
            results[name] = compare(quiet, iterations, warmup, rounds, out, name, batch)
            print(table(results[name], where, epoch), flush=True)
    return results
