"""scripts/benchmark.py still runs end to end and reports every ratio it promises."""

from __future__ import annotations

import json

import pytest
from helpers import run_script

RATIOS = ("trainkit / bare Lightning", "trainkit / hand loop", "bare Lightning / hand loop")


@pytest.mark.slow
def test_benchmark_reports_each_ratio_for_each_workload(tmp_path):
    out = tmp_path / "bench.json"
    args = ["--rounds", "1", "--iterations", "5", "--mnist-iterations", "3",
            "--startup-repeats", "1", "--json", str(out)]  # fmt: skip
    proc = run_script(args, tmp_path, script="scripts/benchmark.py")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert set(results["throughput"]) == {"cnn", "text", "regression", "mnist_cnn"}
    for name, result in results["throughput"].items():
        assert set(result["ratios"]) == set(RATIOS)
        for label in RATIOS:
            assert 0 < result["ratios"][label]["median"] < 10, (name, label)
            assert f"{name:10s} {label:28s}" in proc.stdout
    startup = results["startup"]
    for key in ("help_s", "cfg_job_s", "first_step_trainkit_s", "first_step_minimal_app_s"):
        assert startup[key] > 0
    assert "first training step: train.py" in proc.stdout
