"""Issue-4 behaviour: multirun failure isolation and report, launchers, tuning, eval/predict."""

from __future__ import annotations

import csv
import json
import logging
import os

import pytest
import torch
from helpers import QUIET, make_cfg, run_script

TINY = ["model=regression", "data.n_samples=230", "data.batch_size=16", "optimizer.lr=0.05"]


@pytest.mark.slow
def test_multirun_goes_on_after_a_failed_job_and_writes_the_report(tmp_path):
    # job 0 diverges (NaN guard), job 1 has an impossible value, jobs 2-3 train
    out = run_script(
        [
            "-m",
            "model=regression",
            "data.n_samples=230",
            *QUIET,
            "trainer.max_epochs=2",
            "optimizer.lr=1e6,-1,0.05",
            "data.batch_size=16,64",
        ],
        tmp_path,
    )
    # every job ran and the report is written, then the sweep exits 1: 4 of its 6 jobs failed
    assert out.returncode == 1, out.stderr[-3000:]
    assert "4 of 6 jobs did not finish ok" in out.stdout + out.stderr
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    jobs = [p for p in sweep.iterdir() if p.is_dir()]
    assert len(jobs) == 6
    by_lr: dict[str, list[dict]] = {}
    for job in jobs:
        summary = json.loads((job / "metrics.json").read_text())
        lr = next(o for o in summary.get("overrides", []) if o.startswith("optimizer.lr="))
        by_lr.setdefault(lr.split("=")[1], []).append(summary)
    assert {s["status"] for s in by_lr["1000000.0"]} == {"failed"}
    assert all("training loss became" in s["error"] for s in by_lr["1000000.0"])
    assert [s["error"] for s in by_lr["-1"]] == [
        "optimizer.lr must be a positive, finite number, got -1."
    ] * 2
    assert {s["status"] for s in by_lr["0.05"]} == {"ok"}
    report = (sweep / "report.md").read_text()
    assert "Best job" in report and "failed" in report
    rows = list(csv.DictReader((sweep / "report.csv").open()))
    assert [r["status"] for r in rows].count("failed") == 4
    assert (sweep / "heatmap.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("launcher", ["joblib", "submitit_slurm", "submitit_local"])
def test_launcher_configs_compose(tmp_path, launcher):
    cfg = make_cfg([f"hydra/launcher={launcher}"], tmp_path)
    assert launcher.split("_")[0] in cfg.hydra.launcher._target_.lower()


def test_joblib_jobs_share_the_cores(tmp_path, monkeypatch):
    import torch

    from trainkit.training import set_threads_for_parallel_jobs

    make_cfg(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], tmp_path)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    before = torch.get_num_threads()
    try:
        set_threads_for_parallel_jobs()
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)


def test_lr_finder_runs_its_whole_range_test_and_uses_the_suggestion(run_train, caplog):
    # a 1-epoch run of 40 iterations: the range test still runs its 60 iterations
    caplog.set_level(logging.INFO, logger="trainkit")
    args = ["model=cnn", "trainer.max_epochs=1", "tune.lr_find=true", "tune.num_training=60"]
    summary, run_dir = run_train([*args, "tune.max_lr=0.01"])  # no divergence below 0.01
    tuned = summary["tuned"]
    assert tuned["lr_range_test_iterations"] == 60
    assert (run_dir / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    assert tuned["lr"] > 0 and tuned["lr"] != 1e-3 and tuned["lr_configured"] == 1e-3
    ckpt = torch.load(summary["last_model_path"], weights_only=False)
    assert ckpt["hyper_parameters"]["optimizer"]["lr"] == tuned["lr"]  # the run trained with it
    assert f"(configured: 0.001; {tuned['lr'] / 1e-3:.2g}x" in caplog.text


def test_batch_size_finder_is_bounded_by_the_data(run_train, caplog):
    caplog.set_level(logging.INFO, logger="trainkit")
    summary, _ = run_train(
        [*TINY, "data.batch_size=32", "trainer.max_epochs=1", "tune.batch_size=true"]
    )
    # 184 training samples, at most 10% a batch (18): doubling from 2 stops at 16, although a
    # batch of 184 would fit in memory
    assert summary["tuned"]["batch_size"] == summary["plan"]["batch_size"] == 16
    assert "data.batch_size = 16 (configured: 32)" in caplog.text


def test_eval_reproduces_the_test_metrics_and_predicts(run_train, tmp_path):
    from trainkit.evaluation import evaluate

    summary, run_dir = run_train(["model=cnn", "trainer.max_epochs=1"])
    cfg = make_cfg([f"ckpt_path={run_dir}"], tmp_path / "eval", config_name="eval")
    result = evaluate(cfg)
    assert result["checkpoint"] == summary["best_model_path"]
    for name, value in summary["test"].items():
        assert result["metrics"][f"test/{name}"] == pytest.approx(value, abs=1e-3)

    cfg = make_cfg([f"ckpt_path={run_dir}", "split=val"], tmp_path / "val", config_name="eval")
    result = evaluate(cfg)
    assert result["metrics"]["val/acc"] == pytest.approx(summary["val"]["acc"], abs=1e-3)

    cfg = make_cfg(
        [f"ckpt_path={run_dir}", "predict=true", "split=val"], tmp_path / "pred", config_name="eval"
    )
    result = evaluate(cfg)
    assert result["value"] is None
    assert "NaN" not in (tmp_path / "pred" / "eval.json").read_text()
    with open(result["predictions"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 270 and set(rows[0]) >= {"index", "target", "prediction", "p_0", "p_9"}
    accuracy = sum(r["target"] == r["prediction"] for r in rows) / len(rows)
    assert accuracy == pytest.approx(summary["val"]["acc"], abs=1e-3)


def test_eval_refuses_data_of_other_dimensions(run_train, tmp_path):
    from trainkit.errors import ConfigError, DataError
    from trainkit.evaluation import evaluate

    _, run_dir = run_train(["model=cnn", "trainer.max_epochs=1", "trainer.limit_train_batches=2"])
    cfg = make_cfg(
        [f"ckpt_path={run_dir}", "data=synthetic_text"], tmp_path / "e", config_name="eval"
    )
    with pytest.raises(ConfigError, match=r"ImageClassifier needs \['input_shape'\]"):
        evaluate(cfg)
    cfg = make_cfg([f"ckpt_path={run_dir}", "data=mnist"], tmp_path / "m", config_name="eval")
    with pytest.raises(DataError, match=r"MNIST is missing"):  # another image dataset: no files
        evaluate(cfg)


def test_eval_cli_with_a_missing_checkpoint_is_one_line(tmp_path):
    out = run_script(["ckpt_path=/nonexistent/run"], tmp_path, script="eval.py")
    assert out.returncode == 1
    assert (
        out.stderr.strip().splitlines()[-1].startswith("error: ckpt_path=/nonexistent/run does not")
    )
