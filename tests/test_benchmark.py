"""scripts/benchmark.py still runs end to end and reports every ratio it promises."""

from __future__ import annotations

import json

import pytest
from helpers import run_script


@pytest.mark.slow
def test_benchmark_reports_each_ratio_for_each_model(tmp_path):
    out = tmp_path / "bench.json"
    args = ["--rounds", "1", "--iterations", "5", "--skip-startup", "--json", str(out)]
    proc = run_script(args, tmp_path, script="scripts/benchmark.py")
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())["throughput"]
    assert set(figures) == {"cnn", "text", "regression"}
    for name, result in figures.items():
        for key in (
            "ratio_median",
            "bare_lightning_over_loop_median",
            "fast_dispatch_over_lightning_dispatch_median",
        ):
            assert 0 < result[key] < 10, (name, key)
        assert f"{name:10s} trainkit / hand loop" in proc.stdout
