"""Multi-node DDP as a cluster runs it, on one machine: torchrun starts two "nodes" of one
process each (PyTorch's own launcher; Lightning starts nothing itself), both given the same run
directory. Rank 0 writes the run; the two shards make one epoch of the budget."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT


@pytest.mark.slow
def test_two_nodes_started_by_torchrun_train_one_run(tmp_path: Path):
    with socket.socket() as probe:  # a port the OS says is free now, for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run_dir = tmp_path / "run"
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(tmp_path / "logs"), "OMP_NUM_THREADS": "1"}
    args = ["trainer=ddp_cpu", "trainer.num_nodes=2", "trainer.devices=1",
            "trainer.max_epochs=2", "trainer.limit_train_batches=6",
            "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={rank}",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint=127.0.0.1:{port}",
                "--rdzv-id=trainkit-test",
                "train.py",
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its workers with it, when the test has to stop it
        )  # fmt: skip
        for rank in (0, 1)
    ]
    try:
        outputs = [node.communicate(timeout=300)[0] for node in nodes]
    except subprocess.TimeoutExpired:  # stop both nodes and their workers; show what they said
        for node in nodes:
            os.killpg(node.pid, signal.SIGKILL)
        said = [node.communicate()[0] for node in nodes]
        pytest.fail(f"the two nodes did not finish in 300 s:\n{said[0][-3000:]}\n{said[1][-3000:]}")
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["plan"]["world_size"] == 2
    # 1,257 digits in two shards of 629: 20 batches each, limited to 6 an epoch
    assert metrics["plan"]["samples_per_device"] == 629 and metrics["iterations"] == 12
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
