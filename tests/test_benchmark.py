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


@pytest.mark.slow
def test_compiled_against_eager_and_the_gpu_check_on_the_cpu(tmp_path):
    """benchmark.py --compile reports compiled against eager on the MNIST-size CNN, and
    gpu_check.py (for a GPU when one is lent) runs end to end with --device cpu --tiny."""
    out = tmp_path / "bench.json"
    args = ["--skip-throughput", "--skip-startup", "--compile", "--compile-iterations", "9"]
    proc = run_script(
        [*args, "--rounds", "1", "--json", str(out)], tmp_path, "scripts/benchmark.py"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())["compile"]
    assert set(results) == {"mnist_cnn", "cnn"}
    result = results["mnist_cnn"]
    for key in ("eager_samples_per_s", "compiled_samples_per_s", "compiled_first_warmup_s"):
        assert result[key] > 0
    assert 0 < result["compiled_over_eager"] < 100
    assert "| compiled, empty cache |" in proc.stdout and "compiled / eager: " in proc.stdout
    assert "recompile_limit" not in proc.stderr
    gpu = run_script(["--device", "cpu", "--tiny"], tmp_path, "scripts/gpu_check.py")
    assert gpu.returncode == 0, gpu.stderr[-2000:]
    lines = gpu.stdout.strip().splitlines()[-5:]
    assert lines[0] == "| CNN, MNIST size, cpu | warm-up (s) | steady samples/s |"
    assert [line.split(" |")[0] for line in lines[2:4]] == ["| eager", "| compiled, empty cache"]
    assert lines[4].startswith("compiled / eager: ")
