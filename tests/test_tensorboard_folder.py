"""`tensorboard --logdir logs` after the README's first commands (CNN, regression and text runs,
a sweep, a resumed run), read back from TensorBoard itself: one run-list entry per run, named by
what it is; the HParams metric columns TensorBoard ticks (its first five by name) are the five
every run has, so that its Parallel Coordinates view draws every run; and, where a browser is
installed, the same read from the pages (scripts/tensorboard_screenshot.py --check)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import ROOT
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trainkit.tensorboard_views import SUMMARY

SCRIPT = ROOT / "scripts" / "tensorboard_screenshot.py"


def load_script():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("tensorboard_screenshot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def tensorboard(logdir: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host",
         "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if json.load(urllib.request.urlopen(base + "/data/runs", timeout=5)):
                    break
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def experiment(base: str) -> dict:
    request = urllib.request.Request(
        base + "/data/plugin/hparams/experiment", data=b'{"experimentName": ""}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    return json.load(urllib.request.urlopen(request, timeout=60))


@pytest.mark.slow
def test_a_log_folder_of_every_kind_of_run_reads_at_a_glance(tmp_path: Path):
    screenshot = load_script()
    logs = tmp_path / "logs"
    screenshot.train_runs(logs, short=True)
    expected = screenshot.expected_runs(logs)
    # 6 single runs (debug=fast_dev_run logs nothing), 6 sweep jobs, a run resumed into its own
    assert len(expected) == 13
    for name in expected:  # named by what they are: model·data, then the time or the values
        assert name.partition("/")[2].partition("/")[2].split(" ")[0] in {
            "cnn·digits", "regression·linear", "regression·diabetes", "text·synthetic_text",
        }  # fmt: skip
    with tensorboard(logs) as base:
        runs = json.load(urllib.request.urlopen(base + "/data/runs", timeout=60))
        assert sorted(runs) == sorted(expected)  # one entry per run, no sub-runs
        metrics = [m["name"]["tag"] for m in experiment(base)["metricInfos"]]
        summary = sorted(f"{SUMMARY}/{n}" for n in ("val_best", "val_last", "test", "train_loss",
                                                    "samples_per_sec"))  # fmt: skip
        assert metrics[:5] == summary  # the five TensorBoard ticks
    for name in expected:
        events = EventAccumulator(str(logs / name))
        events.Reload()
        tags = set(events.Tags()["scalars"])
        # every run has a value for each ticked column: Parallel Coordinates draws each of them
        assert set(summary) <= tags, name
        # an MSE and a cross-entropy never share a card: their tags differ
        loss = "mse" if "regression" in name else "loss"
        assert f"train/{loss}" in tags and {"train/loss", "train/mse"} - {f"train/{loss}"} - tags
    if not (shutil.which("chromium") or shutil.which("google-chrome")):
        pytest.skip("the page check needs Chromium (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="the page check needs selenium: pip install .[docs]")
    with tensorboard(logs) as base:
        assert screenshot.check_pages(base, expected, wait=10) == []
