"""Framework tax and startup, measured side by side: `python scripts/benchmark.py`.

1. Training throughput: trainkit's training path (its Trainer config, default callbacks and
   TensorBoard logging) against a hand-written PyTorch loop on the same network, data tensors,
   optimizer, batch size and number of iterations, for the CNN, the text and the regression
   model. Rounds alternate (loop, trainkit, loop, ...) in one process; the median ratio of
   samples/s (trainkit / loop) is reported. Both time the same window: from the first training
   batch to the end of the last. Validation is off in both (limit_val_batches=0), so the two
   callbacks that need a validation metric (best checkpoint, early stopping) are dropped;
   last.ckpt is still written at every epoch's end, and everything else is trainkit's default.
   Two more contenders give the floor: stock Lightning with everything off (no callbacks, no
   logger, no progress bar) running the same LightningModule, i.e. the cost of Lightning's
   training loop alone, once with Lightning's own hook dispatch and once with trainkit's
   (trainkit.fast_hooks); the last row is the ratio of those two.
2. Startup: `python train.py --help` and `--cfg job` against `python -c "import torch"`, and the
   time to the first training step against the import time of torch + Lightning.

Prints a table; `--json FILE` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("cnn", "text", "regression")  # each at its data config's default batch size


def compose(overrides: list[str], out_dir: Path):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = hydra_compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


class BatchTimer:
    """A Lightning callback timing the first training batch's start to the last one's end."""

    def __new__(cls):
        from lightning.pytorch.callbacks import Callback

        class _Timer(Callback):
            start = end = None

            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                if self.start is None:
                    self.start = time.perf_counter()

            def on_train_end(self, trainer, pl_module):
                self.end = time.perf_counter()

        return _Timer()


def setup_run(model_name: str, overrides: list[str], out_dir: Path):
    """(config, DataModule set up for fit, LightningModule) of a model, seeded alike each time."""
    import lightning as L
    from hydra.utils import instantiate

    from trainkit.training import build_model

    cfg = compose([f"model={model_name}", *overrides], out_dir)
    L.seed_everything(0, verbose=False)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    return cfg, dm, build_model(cfg, dm)


def timed_fit(trainer, model, dm) -> float:
    """Samples/s from the first training batch to the end of training."""
    timer = BatchTimer()
    trainer.callbacks.append(timer)
    trainer.fit(model, datamodule=dm)
    return model.samples_seen / (timer.end - timer.start)


def trainkit_round(model_name: str, iterations: int, out_dir: Path) -> float:
    """Samples/s of trainkit's training path for `iterations` iterations."""
    from trainkit.training import build_trainer

    overrides = [
        "trainer.max_epochs=-1",
        f"trainer.max_steps={iterations}",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "callbacks.model_checkpoint=null",
        "callbacks.early_stopping=null",
        "test=false",
    ]
    cfg, dm, model = setup_run(model_name, overrides, out_dir)
    trainer, _, _ = build_trainer(cfg)
    return timed_fit(trainer, model, dm)


def lightning_floor_round(
    model_name: str, iterations: int, out_dir: Path, fast_dispatch: bool = False
) -> float:
    """Samples/s of a stock Lightning Trainer with nothing on, on the same module and data;
    `fast_dispatch`: with trainkit's hook dispatch (trainkit.fast_hooks) instead of Lightning's."""
    import lightning as L
    from trainkit.profiler import NullProfiler

    from trainkit import fast_hooks

    _, dm, model = setup_run(model_name, [], out_dir)
    # trainkit's next round installs its dispatch again
    fast_hooks.install() if fast_dispatch else fast_hooks.uninstall()
    trainer = L.Trainer(
        max_epochs=-1,
        max_steps=iterations,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out_dir,
        profiler=NullProfiler() if fast_dispatch else None,
    )
    return timed_fit(trainer, model, dm)


def loop_round(model_name: str, iterations: int, out_dir: Path) -> float:
    """The same network, data, optimizer, batch size and iterations, in plain PyTorch."""
    import torch
    from hydra.utils import get_class

    cfg, dm, model = setup_run(model_name, [], out_dir)
    net = model.net
    opt_cfg = dict(cfg.optimizer)
    optimizer = get_class(opt_cfg.pop("_target_"))(net.parameters(), **opt_cfg)
    loss_fn = (
        torch.nn.functional.mse_loss
        if model_name == "regression"
        else torch.nn.functional.cross_entropy
    )
    dataset = dm.make_dataset("train")
    sampler = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(range(len(dataset))), dm.batch_size, drop_last=False
    )
    net.train()
    done = samples = 0
    start = time.perf_counter()
    while done < iterations:
        for idx in sampler:
            x, y = dataset[torch.tensor(idx)]
            out = net(x)
            loss = loss_fn(out.squeeze(-1) if model_name == "regression" else out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done, samples = done + 1, samples + len(y)
            if done == iterations:
                break
    return samples / (time.perf_counter() - start)


def throughput(iterations: int, rounds: int) -> dict[str, dict]:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            loop_round(name, 20, Path(tmp) / "warm")  # warm up kernels and caches
            trainkit_round(name, 20, Path(tmp) / "warm")
            lightning_floor_round(name, 20, Path(tmp) / "warm")
            lightning_floor_round(name, 20, Path(tmp) / "warm", True)
            ratios, floor, fast_floor, tk, hand = [], [], [], [], []
            for r in range(rounds):
                out = Path(tmp) / f"{name}{r}"
                loop_sps = loop_round(name, iterations, out / "loop")
                tk_sps = trainkit_round(name, iterations, out / "trainkit")
                floor_sps = lightning_floor_round(name, iterations, out / "bare")
                fast_sps = lightning_floor_round(name, iterations, out / "fast", True)
                hand.append(loop_sps)
                tk.append(tk_sps)
                ratios.append(tk_sps / loop_sps)
                floor.append(floor_sps / loop_sps)
                fast_floor.append(fast_sps / floor_sps)
            results[name] = {
                "loop_samples_per_s": statistics.median(hand),
                "trainkit_samples_per_s": statistics.median(tk),
                "ratio_median": statistics.median(ratios),
                "ratios": ratios,
                "bare_lightning_over_loop_median": statistics.median(floor),
                "bare_lightning_over_loop": floor,
                "fast_dispatch_over_lightning_dispatch_median": statistics.median(fast_floor),
                "fast_dispatch_over_lightning_dispatch": fast_floor,
            }
            rows = (
                ("trainkit / hand loop", ratios),
                ("bare Lightning / hand loop", floor),
                ("bare Lightning, trainkit's / Lightning's hook dispatch", fast_floor),
            )
            for label, values in rows:
                print(
                    f"  {name:10s} {label:55s} {statistics.median(values):.3f}  "
                    f"(rounds: {', '.join(f'{v:.2f}' for v in values)})",
                    flush=True,
                )
    return results


def timed(cmd: list[str], repeats: int) -> float:
    """Median wall time of a command (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def startup(repeats: int) -> dict[str, float]:
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        env_log = f"paths.log_dir={tmp}"
        first_step = [py, "-c", FIRST_STEP, env_log]
        out = {
            "import_torch_s": timed([py, "-c", "import torch"], repeats),
            "import_torch_lightning_s": timed([py, "-c", "import torch, lightning"], repeats),
            "help_s": timed([py, "train.py", "--help"], repeats),
            "cfg_job_s": timed([py, "train.py", "--cfg", "job"], repeats),
        }
        steps = []
        for _ in range(repeats):
            res = subprocess.run(first_step, cwd=ROOT, capture_output=True, text=True, check=True)
            steps.append(float(res.stdout.strip().splitlines()[-1]))
        out["first_step_s"] = statistics.median(steps)
    out["help_over_import_torch"] = out["help_s"] / out["import_torch_s"]
    out["cfg_job_over_import_torch"] = out["cfg_job_s"] / out["import_torch_s"]
    out["first_step_minus_imports_s"] = out["first_step_s"] - out["import_torch_lightning_s"]
    return out


# Time from process start to the end of the first training step of `python train.py`.
FIRST_STEP = r"""
import sys, time, runpy
t0 = time.perf_counter()
import lightning.pytorch.callbacks as cb
hit = []
orig = cb.Callback.on_train_batch_end
def mark(self, *a, **k):
    if not hit:
        hit.append(time.perf_counter() - t0)
    return orig(self, *a, **k)
cb.Callback.on_train_batch_end = mark
sys.argv = ["train.py", "trainer.max_steps=1", "trainer.num_sanity_val_steps=0", "test=false",
            "trainer.enable_progress_bar=false", sys.argv[1]]
try:
    runpy.run_path("train.py", run_name="__main__")
except SystemExit:
    pass
print(hit[0])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--startup-repeats", type=int, default=5)
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads for the throughput rounds (default: torch's own choice); on a "
        "shared machine 1 thread is much less noisy",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    results = {}
    if not args.skip_throughput:
        print(f"throughput: {args.rounds} alternating rounds of {args.iterations} iterations")
        results["throughput"] = throughput(args.iterations, args.rounds)
    if not args.skip_startup:
        results["startup"] = startup(args.startup_repeats)
        s = results["startup"]
        print(
            f"  import torch {s['import_torch_s']:.2f}s, torch+lightning "
            f"{s['import_torch_lightning_s']:.2f}s"
        )
        for name, key in (("--help", "help"), ("--cfg job", "cfg_job")):
            ratio = s[f"{key}_over_import_torch"]
            print(f"  train.py {name} {s[f'{key}_s']:.2f}s = {ratio:.2f} x import torch")
        print(
            f"  first training step after {s['first_step_s']:.2f}s = imports + "
            f"{s['first_step_minus_imports_s']:.2f}s"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
