"""Run folders never collide (trainkit.run_dirs, claimed by hydra_callbacks.CheckOutputDir before
Hydra writes into them): a folder in use or holding a run is refused with one sentence, dated
folders are created atomically."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, run_script

from trainkit.run_dirs import (
    LOCK,
    FolderInUse,
    claim_run_folder,
    fresh_folder,
    job_state,
    lock_folder,
)


def files_of(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def finished_run(folder: Path, status: str = "ok") -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("model: {}\n")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (folder / "metrics.json").write_text(json.dumps({"status": status}))
    (folder / "train.log").write_text("the first run's log\n")
    return folder


def test_two_runs_asking_for_the_same_dated_folder_get_two(tmp_path):
    first = fresh_folder(tmp_path / "runs" / "2026-01-02_03-04-05_678901")
    second = fresh_folder(tmp_path / "runs" / "2026-01-02_03-04-05_678901")
    assert (first.name, second.name) == (
        "2026-01-02_03-04-05_678901",
        "2026-01-02_03-04-05_678901_1",
    )


def test_a_locked_folder_is_refused_and_a_dead_processs_lock_taken_over(tmp_path):
    lock = lock_folder(tmp_path, "run", "hydra.run.dir")
    with pytest.raises(
        FolderInUse, match=rf"{tmp_path} is in use by another run \(pid {os.getpid()}"
    ):
        lock_folder(tmp_path, "run", "hydra.run.dir")
    lock.release()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    import socket

    (tmp_path / LOCK).write_text(f"{dead.stdout.strip()} {socket.gethostname()} then\n")
    lock_folder(tmp_path, "run", "hydra.run.dir").release()  # taken over, then given back
    assert not (tmp_path / LOCK).exists()


@pytest.mark.parametrize("status", ["ok", "failed", "interrupted"])
def test_a_folder_holding_a_run_is_refused_unless_resumed(tmp_path, status):
    run = finished_run(tmp_path / "run", status)
    before = files_of(run)
    held = {"ok": "a finished run", "failed": "a failed run", "interrupted": "an interrupted run"}
    with pytest.raises(FolderInUse, match=f"already holds {held[status]}; nothing was changed"):
        claim_run_folder(run, dated=False, resume_from=None)
    assert files_of(run) == before  # the lock is gone again too
    folder, lock = claim_run_folder(run, dated=False, resume_from=str(run / "checkpoints"))
    assert folder == run
    lock.release()


def test_the_state_of_a_sweeps_job_folder(tmp_path):
    assert job_state(tmp_path / "never") == "new"
    assert job_state(finished_run(tmp_path / "a", "ok")) == "done"
    assert job_state(finished_run(tmp_path / "b", "pruned")) == "done"
    assert job_state(finished_run(tmp_path / "c", "interrupted")) == "interrupted"
    assert job_state(finished_run(tmp_path / "d", "failed")) == "failed"
    killed = finished_run(tmp_path / "e")
    (killed / "metrics.json").unlink()  # kill -9: no metrics.json, a last.ckpt to go on from
    assert job_state(killed) == "interrupted"
    (killed / "checkpoints" / "last.ckpt").unlink()
    assert job_state(killed) == "failed"


def test_a_run_into_a_finished_runs_folder_stops_at_once_and_changes_nothing(tmp_path):
    run = finished_run(tmp_path / "logs" / "mine")
    before = files_of(run)
    out = run_script(["model=regression", f"hydra.run.dir={run}"], tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"error: the run directory {run} already holds a finished run; nothing was changed in "
        f"it: choose another hydra.run.dir, or continue that run with ckpt_path={run}."
    )
    assert files_of(run) == before  # its .hydra/, log and metrics untouched


def test_a_worker_that_starts_before_rank_0_leaves_the_folder_to_it(tmp_path):
    # torchrun and SLURM start every rank at once: a rank-1 process may reach the run folder
    # first. It writes no .hydra/ there (its rank 0 does), so rank 0 still claims the folder.
    run = tmp_path / "logs" / "together"
    worker = run_script(
        ["model=regression", f"hydra.run.dir={run}", "trainer.max_epochs=-2"],  # stops early
        tmp_path,
        env={"RANK": "1", "NODE_RANK": "1"},
    )
    assert worker.returncode == 1 and "max_epochs" in worker.stderr
    assert not (run / ".hydra").exists() and (run / "train.log").is_file()
    out = run_script(["model=regression", "debug=fast_dev_run", f"hydra.run.dir={run}"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads((run / "metrics.json").read_text())["status"] == "ok"
    assert (run / ".hydra" / "config.yaml").is_file()


@pytest.mark.slow
def test_two_runs_started_together_in_one_folder_give_one_run(tmp_path):
    run = tmp_path / "logs" / "same"
    args = ["model=regression", "debug=fast_dev_run", f"hydra.run.dir={run}"]
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(tmp_path / "logs")}
    procs = [
        subprocess.Popen(
            [sys.executable, "train.py", *args],
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outs
    (refused,) = [err for (_, err), p in zip(outs, procs, strict=True) if p.returncode == 1]
    assert refused.strip().splitlines() == [refused.strip().splitlines()[0]] and refused.startswith(
        f"error: {run} is in use by another run (pid "
    )
    assert json.loads((run / "metrics.json").read_text())["status"] == "ok"
    assert not (run / LOCK).exists()  # released at the end of the run
