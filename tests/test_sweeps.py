"""Issue-4 behaviour: multirun failure isolation and report, launchers, tuning, eval/predict."""

from __future__ import annotations

import csv
import json
import os

import pytest
from conftest import QUIET, make_cfg, run_script

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
    assert out.returncode == 0, out.stderr[-3000:]
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
        "optimizer.lr must be a positive number, got -1."
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


def test_lr_finder_saves_its_plot_and_uses_the_suggestion(run_train):
    summary, run_dir = run_train(
        ["model=cnn", "trainer.max_epochs=1", "tune.lr_find=true", "tune.num_training=40"]
    )
    tuned = summary["tuned"]
    assert (run_dir / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    assert tuned["lr"] > 0 and tuned["lr"] != 1e-3
    ckpt_cfg = json.loads((run_dir / "metrics.json").read_text())
    assert ckpt_cfg["tuned"]["lr"] == tuned["lr"]


def test_batch_size_finder_sets_the_batch_size(run_train):
    summary, _ = run_train(
        [*TINY, "trainer.max_epochs=1", "tune.batch_size=true", "tune.batch_size_max_trials=3"]
    )
    # power mode from Lightning's initial 2: 2, 4, 8 all fit in 3 trials; the run then uses 8
    assert summary["tuned"]["batch_size"] == summary["plan"]["batch_size"] == 8


def test_eval_reproduces_the_test_metrics_and_predicts(run_train, tmp_path):
    from trainkit.evaluation import evaluate

    summary, run_dir = run_train(["model=cnn", "trainer.max_epochs=1"])
    cfg = make_cfg([f"ckpt_path={run_dir}"], tmp_path / "eval", config_name="eval")
    result = evaluate(cfg)
    assert result["checkpoint"] == summary["best_model_path"]
    for name, value in summary["test"].items():
        assert result["metrics"][f"test/{name}"] == pytest.approx(value, abs=1e-3)

    cfg = make_cfg(
        [f"ckpt_path={run_dir}", "predict=true", "split=val"], tmp_path / "pred", config_name="eval"
    )
    result = evaluate(cfg)
    with open(result["predictions"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 270 and set(rows[0]) >= {"index", "target", "prediction", "p_0", "p_9"}
    accuracy = sum(r["target"] == r["prediction"] for r in rows) / len(rows)
    assert accuracy == pytest.approx(summary["val"]["acc"], abs=1e-3)


def test_eval_refuses_data_of_other_dimensions(run_train, tmp_path):
    from trainkit.errors import ConfigError
    from trainkit.evaluation import evaluate

    _, run_dir = run_train(["model=cnn", "trainer.max_epochs=1", "trainer.limit_train_batches=2"])
    cfg = make_cfg(
        [f"ckpt_path={run_dir}", "data=synthetic_text"], tmp_path / "e", config_name="eval"
    )
    with pytest.raises(
        ConfigError, match=r"other dimensions \(num_classes: checkpoint 10, data 2\)"
    ):
        evaluate(cfg)


def test_eval_cli_with_a_missing_checkpoint_is_one_line(tmp_path):
    out = run_script(["ckpt_path=/nonexistent/run"], tmp_path, script="eval.py")
    assert out.returncode == 1
    assert (
        out.stderr.strip().splitlines()[-1].startswith("error: ckpt_path=/nonexistent/run does not")
    )
