"""Multi-process training (issue 6, part 5): trainer=ddp_cpu / ddp configs, sharding of the
in-memory data, the workers' command under Hydra (trainkit.distributed) and, marked slow, real
2-process runs: a single run, a multirun, and workers that fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers import make_cfg, tb_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import open_dict, read_write

from trainkit import distributed
from trainkit.budget import plan
from trainkit.command_line import quote_value
from trainkit.data.base import BatchIndexSampler
from trainkit.data.digits import DigitsDataModule
from trainkit.distributed import (
    config_flags,
    end_previous_job,
    hydra_subprocess_cmd,
    install_hydra_ddp_fix,
    worker_overrides,
)

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false"]


@pytest.fixture(autouse=True)
def _fresh_launch_state(monkeypatch):
    """Each test starts with a process that launched nothing, and leaves the environment as
    it found it (the launcher sets LOCAL_RANK, MASTER_PORT, ...)."""
    monkeypatch.setattr(distributed, "_launches", distributed._Launches())
    env, threads = dict(os.environ), torch.get_num_threads()
    yield
    os.environ.clear()
    os.environ.update(env)
    torch.set_num_threads(threads)


# -- the configs --------------------------------------------------------------------------------
def test_ddp_cpu_config_builds_a_two_process_gloo_trainer(tmp_path):
    from hydra.utils import instantiate
    from lightning.pytorch.strategies import DDPStrategy

    cfg = make_cfg(["trainer=ddp_cpu"], tmp_path)
    assert cfg.trainer.accelerator == "cpu" and cfg.trainer.devices == 2
    assert cfg.trainer.max_epochs == 10  # the defaults of conf/trainer/default.yaml are kept
    trainer = instantiate(cfg.trainer)  # builds, launches nothing until fit
    assert isinstance(trainer.strategy, DDPStrategy)
    assert trainer.world_size == 2 and trainer.num_nodes == 1
    assert trainer.strategy._get_process_group_backend() == "gloo"


def test_ddp_gpu_config_composes_also_for_a_slurm_cluster(tmp_path):
    cfg = make_cfg(["trainer=ddp"], tmp_path)
    assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.strategy) == (
        "gpu",
        "auto",
        "ddp",
    )
    assert cfg.trainer.num_nodes == 1 and cfg.trainer.sync_batchnorm is False
    cfg = make_cfg(
        [
            "trainer=ddp",
            "trainer.num_nodes=2",
            "trainer.devices=4",
            "hydra/launcher=submitit_slurm",
            "hydra.launcher.nodes=2",
            "hydra.launcher.tasks_per_node=4",
            "hydra.launcher.gpus_per_node=4",
        ],
        tmp_path / "slurm",
    )
    launcher = cfg.hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node) == (cfg.trainer.num_nodes, cfg.trainer.devices)


# -- sharding -----------------------------------------------------------------------------------
def fake_trainer(world_size: int, rank: int) -> SimpleNamespace:
    """What the DataModule reads of the Trainer it is attached to."""
    return SimpleNamespace(world_size=world_size, global_rank=rank, limit_train_batches=None)


def shards(dm: DigitsDataModule, split: str, world_size: int, epoch: int = 0) -> list[list[int]]:
    """The sample indices of each rank's loader in one epoch of `split` (its sampler yields the
    index batches that the loader slices the data with)."""
    out = []
    for rank in range(world_size):
        dm.trainer = fake_trainer(world_size, rank)
        loader = dm.train_dataloader() if split == "train" else dm.loader(split)
        dm.trainer = None
        loader.sampler.set_epoch(epoch)
        out.append([i for batch in loader.sampler for i in batch.tolist()])
    return out


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    dm = DigitsDataModule(batch_size=32, seed=42)
    dm.setup()
    return dm


def test_training_shards_are_disjoint_padded_and_match_the_budget(digits):
    ranks = shards(digits, "train", 2)
    n = digits.num_train_samples
    assert n == 1257
    assert [len(r) for r in ranks] == [629, 629]  # ceil(1257 / 2): one sample seen twice
    assert set(ranks[0]) | set(ranks[1]) == set(range(n))
    assert len(set(ranks[0]) & set(ranks[1])) == 1
    digits.trainer = fake_trainer(2, 1)
    iterations = len(digits.train_dataloader())
    digits.trainer = None
    planned = plan(train_samples=n, batch_size=32, world_size=2).iterations_per_epoch
    assert iterations == planned == 20


def test_shuffle_order_of_every_rank_depends_only_on_seed_and_epoch(digits):
    again = DigitsDataModule(batch_size=32, seed=42)
    again.setup()
    assert shards(digits, "train", 2, epoch=3) == shards(again, "train", 2, epoch=3)
    assert shards(digits, "train", 2, epoch=3) != shards(digits, "train", 2, epoch=4)


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_evaluation_shards_hold_every_sample_exactly_once(digits, world_size):
    for split in ("val", "test"):
        together = sorted(i for rank in shards(digits, split, world_size) for i in rank)
        assert together == list(range(digits.split_sizes()[split]))  # 270: none twice, none lost


def test_evaluation_split_smaller_than_the_world_is_padded():
    # every process needs a batch: each one logs the epoch's metrics, a collective call
    s = BatchIndexSampler(2, 8, shuffle=False, drop_last=False)
    s.set_distributed(2, 3, pad=False)
    assert [b.tolist() for b in s] == [[0]]


def test_lightning_does_not_wrap_our_sampler_in_a_distributed_sampler(digits, tmp_path):
    """Lightning's use_distributed_sampler=True (its default, which users' own data needs)
    wraps every sampler that is not a DistributedSampler. Ours shards itself: wrapped, it was
    sharded twice (10 instead of 20 iterations per epoch on 2 processes)."""
    from hydra.utils import instantiate
    from lightning.pytorch.trainer.states import RunningStage
    from torch.utils.data import DataLoader

    trainer = instantiate(make_cfg(["trainer=ddp_cpu"], tmp_path).trainer)
    prepare = trainer._data_connector._prepare_dataloader
    ours = digits.train_dataloader()
    assert prepare(ours, shuffle=True, mode=RunningStage.TRAINING) is ours
    plain = DataLoader(range(10), shuffle=True)  # a user's loader still gets Lightning's sampler
    assert prepare(plain, shuffle=True, mode=RunningStage.TRAINING) is not plain


# -- the workers' command -----------------------------------------------------------------------
JOB_DIR = "/logs/train/multiruns/2026-01-02_03-04-05_678901/1"


def fake_multirun_job(tmp_path: Path, monkeypatch) -> None:
    """HydraConfig of job 1 of `python train.py -m model=regression data.batch_size=16,32`, run
    as a script (not with python -m)."""
    cfg = make_cfg(["model=regression", "data.batch_size=32"], tmp_path)
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.overrides.hydra = [
            "hydra.sweep.dir=/logs/sweep",
            "hydra.job.chdir=false",
            "hydra.mode=MULTIRUN",
        ]
        cfg.hydra.runtime.output_dir = JOB_DIR
        cfg.hydra.runtime.cwd = str(ROOT)
    HydraConfig.instance().set_config(cfg)
    argv = ["train.py", "-m", "--config-name", "train", "model=regression", "data.batch_size=16,32"]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None)


def test_worker_command_is_the_jobs_own_single_run_in_the_jobs_directory(tmp_path, monkeypatch):
    fake_multirun_job(tmp_path, monkeypatch)
    command, cwd = hydra_subprocess_cmd(local_rank=1)
    assert command == [
        sys.executable,
        str(ROOT / "train.py"),
        "--config-name",
        "train",
        "model=regression",  # the job's overrides, not the sweep's (no -m, no 16,32)
        "data.batch_size=32",
        "hydra.job.chdir=false",  # Hydra settings are kept, except where the job runs
        "hydra.mode=RUN",
        f"hydra.run.dir={JOB_DIR}",
        "hydra.output_subdir=null",  # the job's .hydra/ is the main process's
    ]
    assert cwd == str(ROOT)


def test_lightnings_launcher_starts_workers_with_our_command(tmp_path, monkeypatch):
    """Through Lightning's own launcher: what it passes to Popen after install_hydra_ddp_fix."""
    from lightning.fabric.plugins.environments import LightningEnvironment
    from lightning.pytorch.strategies.launchers import subprocess_script

    fake_multirun_job(tmp_path, monkeypatch)
    started: list[tuple[list[str], str, str]] = []

    class FakePopen:
        def __init__(self, command, env=None, cwd=None) -> None:
            started.append((command, cwd, env["LOCAL_RANK"]))
            self.pid, self.returncode = 12345, 0

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(subprocess_script.subprocess, "Popen", FakePopen)
    for name in ("_hydra_subprocess_cmd", "_launch_process_observer"):
        monkeypatch.setattr(subprocess_script, name, getattr(subprocess_script, name))
    install_hydra_ddp_fix()
    launcher = subprocess_script._SubprocessScriptLauncher(LightningEnvironment(), 3, 1)
    assert launcher.launch(lambda: "trained") == "trained"
    assert [(c[-3:], cwd, rank) for c, cwd, rank in started] == [
        (["hydra.mode=RUN", f"hydra.run.dir={JOB_DIR}", "hydra.output_subdir=null"], str(ROOT), r)
        for r in ("1", "2")
    ]
    assert "-m" not in started[0][0] and "data.batch_size=16,32" not in started[0][0]
    assert os.environ["LOCAL_RANK"] == "0"  # what made the next job of a multirun start none
    install_hydra_ddp_fix()  # the next job
    assert "LOCAL_RANK" not in os.environ and "MASTER_PORT" not in os.environ


def test_the_next_job_ends_the_previous_jobs_workers_and_process_group():
    import torch.distributed as dist

    end_previous_job()  # the first job: remembers the environment
    names = ("LOCAL_RANK", "MASTER_PORT", "WORLD_SIZE", "OMP_NUM_THREADS")
    before = {name: os.environ.get(name) for name in names}
    threads = torch.get_num_threads()
    os.environ.update(LOCAL_RANK="0", MASTER_PORT="29511", WORLD_SIZE="2", OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    stuck = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    distributed.observe_workers([stuck])  # what Lightning's launcher calls after starting them
    observer = distributed._launches.observer
    end_previous_job()  # the next job
    assert stuck.poll() is not None and not observer.is_alive() and not dist.is_initialized()
    assert {name: os.environ.get(name) for name in names} == before  # as the first job found it
    assert torch.get_num_threads() == threads


def test_a_failed_worker_ends_its_siblings_and_a_main_process_that_waits_for_it(
    monkeypatch, caplog
):
    killed: list[bool] = []
    monkeypatch.setattr(distributed, "_end_main_process", lambda: killed.append(True))
    failed = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    observer = distributed.WorkerObserver([failed, sibling], poll_s=0.05)
    observer.start()
    observer.join(timeout=30)
    assert not observer.is_alive() and sibling.returncode is not None
    assert killed == [True]  # at once: it cannot be in a collective before it connected
    assert "local rank 1" in caplog.text and "exit code 3" in caplog.text


def test_a_main_process_that_fails_by_itself_is_not_killed(monkeypatch):
    killed: list[bool] = []
    monkeypatch.setattr(distributed, "_end_main_process", lambda: killed.append(True))
    monkeypatch.setattr(distributed, "_process_group_ready", lambda: True)
    failed = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(1)"])
    observer = distributed.WorkerObserver([failed], poll_s=0.05)
    observer.start()
    failed.wait()
    time.sleep(0.3)  # the observer has seen it and waits for the main process
    observer.stop()  # the main process failed too, and its next job started
    observer.join(timeout=5)
    assert not observer.is_alive() and killed == []


def test_quoted_paths_reach_the_worker_unchanged():
    parser = OverridesParser.create()
    for path in ["/a b/c=d,e:f", "/it's/x", "C:\\runs\\", "/x/[1]/{y}"]:
        assert parser.parse_override(f"hydra.run.dir={quote_value(path)}").value() == path


def test_only_the_config_flags_of_the_command_line_are_kept():
    argv = ["-m", "-cn", "other", "--config-dir=/extra", "a=1,2", "--multirun", "-cp", "conf2"]
    assert config_flags(argv) == ["-cn", "other", "--config-dir=/extra", "-cp", "conf2"]


def test_placement_overrides_are_replaced_and_the_rest_kept():
    hydra = ["++hydra.run.dir=/x", "hydra.sweep.subdir=${hydra.job.num}", "hydra/launcher=joblib"]
    out = worker_overrides(["+extra=1", "~callbacks.early_stopping"], hydra, "/runs/7")
    assert out == [
        "+extra=1",
        "~callbacks.early_stopping",
        "hydra/launcher=joblib",
        "hydra.mode=RUN",
        "hydra.run.dir=/runs/7",
        "hydra.output_subdir=null",
    ]


# -- real runs with 2 processes (slow) ----------------------------------------------------------
def cli(args: list[str], tmp_path: Path, script: Path = ROOT / "train.py", **env: str):
    """`python <script> <args>` from the repository root, logging under tmp_path/logs."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        env={**os.environ, "TRAINKIT_LOG_DIR": str(tmp_path / "logs"), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def worker_starts(output: str) -> int:
    """Processes of rank 1 that joined a process group (Lightning logs it once per process)."""
    return output.count("Initializing distributed: GLOBAL_RANK: 1,")


@pytest.mark.slow
def test_ddp_cpu_run(tmp_path):
    out = cli(["trainer=ddp_cpu", "model=cnn", "trainer.max_epochs=2", *QUIET], tmp_path)
    output = out.stdout + out.stderr
    assert out.returncode == 0, output[-3000:]
    assert "failed" not in output and "sync_dist" not in output  # a clean end, no noise
    logs = tmp_path / "logs"
    (run,) = (logs / "train" / "runs").iterdir()  # one run directory, nothing else anywhere
    assert sorted(p.name for p in logs.iterdir()) == ["tensorboard", "train"]
    assert sorted(p.name for p in logs.glob("*/*")) == ["runs", "train"]  # +tensorboard/train
    assert worker_starts(output) == 1
    assert output.count("metrics written to") == 1 and output.count("Training budget\n") == 1
    assert output.count("Training budget: plan vs actual") == 1
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == [".hydra", "checkpoints"]
    assert any(tb_dir(run).glob("events.out.tfevents.*"))  # one TensorBoard run, rank 0's

    summary = json.loads((run / "metrics.json").read_text())
    p = summary["plan"]
    assert (p["world_size"], p["samples_per_device"], p["iterations_per_epoch"]) == (2, 629, 20)
    assert p["iterations"] == summary["iterations"] == summary["global_step"] == 40
    assert p["validations"] == summary["validations"] == 2 and summary["epochs"] == 2

    # The test metrics cover the whole split once: one process re-testing the best checkpoint
    # finds the same numbers.
    from trainkit.evaluation import evaluate

    result = evaluate(make_cfg([f"ckpt_path={run}"], tmp_path / "eval", config_name="eval"))
    assert result["checkpoint"] == summary["best_model_path"]
    for name, value in summary["test"].items():
        assert result["metrics"][f"test/{name}"] == pytest.approx(value, abs=1e-5)
    assert summary["test"]["acc"] > 0.9


@pytest.mark.slow
def test_ddp_with_four_cpu_processes_ends_clean(tmp_path):
    """The README's `python train.py trainer=ddp_cpu trainer.devices=4`, shortened."""
    args = ["trainer=ddp_cpu", "trainer.devices=4", "model=cnn", "trainer.max_epochs=1"]
    out = cli([*args, *QUIET], tmp_path)
    output = out.stdout + out.stderr
    assert out.returncode == 0, output[-3000:]
    assert "failed" not in output and "ERROR" not in output and "sync_dist" not in output
    assert worker_starts(output) == 1 and output.count("GLOBAL_RANK: 3,") == 1
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["status"] == "ok" and summary["plan"]["world_size"] == 4


@pytest.mark.slow
def test_ddp_cpu_multirun_starts_each_jobs_workers_once(tmp_path):
    args = ["-m", "trainer=ddp_cpu", "model=regression", "trainer.max_epochs=1", *QUIET]
    out = cli([*args, "data.batch_size=16,32"], tmp_path)
    output = out.stdout + out.stderr
    assert out.returncode == 0, output[-3000:]
    logs = tmp_path / "logs" / "train"
    assert [p.name for p in logs.iterdir()] == ["multiruns"]  # no runs/ of workers
    (sweep,) = (logs / "multiruns").iterdir()
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_batch_size=16", "1_batch_size=32"]
    assert worker_starts(output) == 2
    for job, batch_size, iterations in zip(jobs, (16, 32), (25, 13), strict=True):
        summary = json.loads((sweep / job / "metrics.json").read_text())
        assert summary["status"] == "ok", summary.get("error")
        assert f"data.batch_size={batch_size}" in summary["overrides"]
        assert summary["plan"]["iterations_per_epoch"] == summary["iterations"] == iterations
        assert sorted(p.name for p in (sweep / job).iterdir() if p.is_dir()) == [
            ".hydra",
            "checkpoints",
        ]
        assert any(tb_dir(sweep / job).glob("events.out.tfevents.*"))
        # the job's own .hydra/, not overwritten by its worker (a single run)
        hydra_yaml = (sweep / job / ".hydra" / "hydra.yaml").read_text()
        assert "mode: MULTIRUN" in hydra_yaml and "hydra.mode=RUN" not in hydra_yaml
        assert f"- data.batch_size={batch_size}" in hydra_yaml


FAILING_WORKER = """# train.py, whose DDP worker of local rank 1 fails in the job whose overrides
# hold FAIL_JOB: at its start (FAIL_AT=start) or at its third training batch (FAIL_AT=batch).
import os
import sys

TRAIN = {train!r}
if os.environ.get("LOCAL_RANK") == "1" and os.environ["FAIL_JOB"] in sys.argv:
    if os.environ["FAIL_AT"] == "start":
        sys.exit("error: injected failure of the worker at its start")
    from trainkit.models.regression import Regressor

    step = Regressor.training_step

    def failing_step(self, batch, batch_idx):
        if batch_idx == 2:
            raise RuntimeError("injected failure of the worker at batch 2")
        return step(self, batch, batch_idx)

    Regressor.training_step = failing_step
# run train.py as __main__ with this file as sys.argv[0]: the workers are started with it too
exec(compile(open(TRAIN).read(), TRAIN, "exec"), {{"__name__": "__main__", "__file__": TRAIN}})
"""


def failing_worker_script(tmp_path: Path) -> Path:
    script = tmp_path / "failing_worker.py"
    script.write_text(FAILING_WORKER.format(train=str(ROOT / "train.py")))
    return script


@pytest.mark.slow
def test_a_worker_failing_in_a_multirun_fails_that_job_only(tmp_path):
    script = failing_worker_script(tmp_path)
    args = ["-m", "trainer=ddp_cpu", "model=regression", "trainer.max_epochs=1", *QUIET]
    out = cli(
        [*args, "data.batch_size=16,32"],
        tmp_path,
        script,
        FAIL_AT="batch",
        FAIL_JOB="data.batch_size=16",
    )
    output = out.stdout + out.stderr
    assert out.returncode == 1, output[-3000:]  # after both jobs ran: one failed
    assert "injected failure of the worker at batch 2" in output  # the worker's own error
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    failed = json.loads((sweep / "0_batch_size=16" / "metrics.json").read_text())
    assert failed["status"] == "failed"
    assert "remote worker crashing" in failed["error"]  # the main process's view of it
    assert json.loads((sweep / "1_batch_size=32" / "metrics.json").read_text())["status"] == "ok"
    assert worker_starts(output) == 2  # job 1 started its own worker


@pytest.mark.slow
def test_a_worker_failing_before_it_connects_ends_the_run_at_once(tmp_path):
    script = failing_worker_script(tmp_path)
    start = time.monotonic()
    args = ["trainer=ddp_cpu", "model=regression", "trainer.max_epochs=1", *QUIET]
    out = cli(args, tmp_path, script, FAIL_AT="start", FAIL_JOB="model=regression")
    output = out.stdout + out.stderr
    # the main process would otherwise wait for it for the process group's timeout (30 min)
    assert time.monotonic() - start < 120
    assert out.returncode != 0
    assert "error: injected failure of the worker at its start" in output
    assert "DDP worker of local rank 1" in output and "exit code 1" in output
