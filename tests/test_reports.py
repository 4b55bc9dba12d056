"""Sweep reports and curve plots on fake sweep folders: no training, a few seconds in all.

Each fake job has what a real one has: .hydra/overrides.yaml, .hydra/config.yaml (unresolved,
as Hydra saves it), metrics.json (or none: a job that died), and TensorBoard event files.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter

from trainkit.plots import load_runs, plot_curves, read_scalars
from trainkit.reports import ReportError, find_job_dirs, sweep_report

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """\
model:
  monitor: val/acc
  monitor_mode: max
optimized_metric: ${model.monitor}
paths:
  output_dir: ${hydra:runtime.output_dir}
"""


def make_job(
    sweep: Path,
    num: int,
    overrides: list[str],
    val_acc: float | None = None,
    status: str = "ok",
    error: str | None = None,
    best: float | None = None,
    batch_size: int = 32,
) -> Path:
    """A job folder; val_acc=None and status="missing" writes no metrics.json."""
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(CONFIG)
    if status == "missing":
        return job
    if status == "failed":  # what trainkit.cli.record_failure writes
        failed = {
            "status": "failed",
            "error": error,
            "overrides": overrides,
            "train": {},
            "val": {},
            "test": {},
        }
        (job / "metrics.json").write_text(json.dumps(failed))
        return job
    ok = status in ("ok", "pruned")  # a pruned job has the values of its shortened run
    iters = math.ceil(1257 / batch_size)
    summary = {
        "status": status,
        "train": {"loss": 0.5, "acc": 0.8} if ok else {},
        "val": {"loss": 1 - val_acc, "acc": val_acc} if ok else {},
        "test": {"acc": round(val_acc - 0.01, 4)} if ok else {},
        "monitor": "val/acc",
        "best_score": (best or val_acc) if ok else None,
        "global_step": 2 * iters if ok else 0,
        "epochs": 2 if ok else 0,
        "iterations": 2 * iters if ok else 0,
        "fit_seconds": 1.5,
        "plan": {"iterations_per_epoch": iters},
    }
    if error:
        summary["error"] = error
    (job / "metrics.json").write_text(json.dumps(summary))
    return job


@pytest.fixture
def grid_sweep(tmp_path: Path) -> Path:
    """batch_size 32/64/128 x max_epochs 1/2; (64, 2) failed, (128, 2) never wrote metrics."""
    sweep = tmp_path / "multirun"
    accs = {(32, 1): 0.90, (64, 1): 0.85, (128, 1): 0.60, (32, 2): 0.92}
    num = 0
    for epochs in (1, 2):
        for bs in (32, 64, 128):
            over = [
                f"data.batch_size={bs}",
                f"trainer.max_epochs={epochs}",
                "trainer.enable_progress_bar=False",
            ]
            if (bs, epochs) == (64, 2):
                make_job(sweep, num, over, status="failed", error="ValueError: lr must be > 0")
            elif (bs, epochs) == (128, 2):
                make_job(sweep, num, over, status="missing")
            else:  # job 0: final val/acc 0.90 but its best checkpoint scored 0.95
                make_job(
                    sweep,
                    num,
                    over,
                    accs[bs, epochs],
                    batch_size=bs,
                    best=0.95 if num == 0 else None,
                )
            num += 1
    return sweep


def is_png(path: Path) -> bool:
    """A PNG signature and a non-empty image header: what an image viewer needs."""
    data = path.read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    return data[:8] == b"\x89PNG\r\n\x1a\n" and width > 100 and height > 100


def test_two_swept_parameters_give_table_csv_and_heatmap(grid_sweep: Path) -> None:
    report = sweep_report(grid_sweep)
    assert report["metric"] == "val/acc" and report["mode"] == "max"  # from ${model.monitor}
    assert report["swept"] == {
        "data.batch_size": ["32", "64", "128"],  # numeric order
        "trainer.max_epochs": ["1", "2"],
    }
    assert report["constant"] == {"trainer.enable_progress_bar": "False"}
    assert report["best"]["job"] == "0"  # best checkpoint 0.95 beats job 3's final 0.92
    assert is_png(grid_sweep / "heatmap.png") and not (grid_sweep / "line.png").exists()

    md = (grid_sweep / "report.md").read_text()
    assert "**Best job: `0`** (batch_size=32, max_epochs=1): val/acc = 0.95" in md
    assert "Picture: `heatmap.png`" in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:6] == [
        "job",
        "data.batch_size",
        "trainer.max_epochs",
        "status",
        "rank",
        "**objective**",
    ]
    assert {"train/acc", "val/acc", "test/acc", "iters/epoch", "optimizer steps"} <= set(header)
    rows = {r[0]: r for r in ([c.strip() for c in t.strip("|").split("|")] for t in table[1:])}
    assert rows["0"][:6] == ["0", "32", "1", "ok", "1", "0.95"]
    assert rows["2"][header.index("iters/epoch")] == "10"  # ceil(1257 / 128)
    assert rows["4"][3] == "**failed**" and rows["5"][3] == "**missing**"
    assert "- `4` (batch_size=64, max_epochs=2): failed: ValueError: lr must be > 0" in md

    with (grid_sweep / "report.csv").open() as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["job"] for r in csv_rows] == ["0", "1", "2", "3", "4", "5"]
    first, failed, missing = csv_rows[0], csv_rows[4], csv_rows[5]
    assert float(first["objective"]) == 0.95 and float(first["val/acc"]) == 0.90
    assert first["iterations_per_epoch"] == "40" and first["optimizer_steps"] == "80"
    assert first["overrides"] == (
        "data.batch_size=32 trainer.max_epochs=1 trainer.enable_progress_bar=False"
    )
    assert (failed["status"], failed["error"], failed["objective"]) == (
        "failed",
        "ValueError: lr must be > 0",
        "",
    )
    assert missing["status"] == "missing" and "no metrics.json" in missing["error"]
    assert [r["rank"] for r in csv_rows] == ["1", "3", "4", "2", "", ""]


def test_metric_option_changes_the_ranking(grid_sweep: Path) -> None:
    report = sweep_report(grid_sweep, metric="val/loss")  # a loss: lower is better
    assert report["mode"] == "min"
    assert report["best"]["job"] == "3"  # val/loss 0.08 (no best_score: monitor is val/acc)
    assert "Metric: **val/loss** (lower is better)" in (grid_sweep / "report.md").read_text()


def test_one_swept_parameter_gives_a_line_plot(tmp_path: Path) -> None:
    for num, (lr, acc) in enumerate([("0.1", 0.5), ("0.001", 0.7), ("0.01", 0.9)]):
        make_job(tmp_path, num, [f"optimizer.lr={lr}"], acc)
    make_job(tmp_path, 3, ["optimizer.lr=1.0"], status="failed", error="loss is NaN")
    report = sweep_report(tmp_path)
    assert report["swept"] == {"optimizer.lr": ["0.001", "0.01", "0.1", "1.0"]}
    assert report["best"]["job"] == "2"
    assert is_png(tmp_path / "line.png") and not (tmp_path / "heatmap.png").exists()
    assert "Picture: `line.png`" in (tmp_path / "report.md").read_text()


def test_three_swept_parameters_and_job_order(tmp_path: Path) -> None:
    for num in range(12):  # folder 10 comes after 9, not after 1
        make_job(tmp_path, num, [f"a={num % 2}", f"b={num % 3}", f"c={num}"], 0.5 + num / 100)
    assert [d.name for d in find_job_dirs(tmp_path)] == [str(n) for n in range(12)]
    report = sweep_report(tmp_path)
    assert list(report["swept"]) == ["a", "b", "c"] and report["picture"] is None
    assert report["best"]["job"] == "11"
    assert "Picture: none (3 swept parameters" in (tmp_path / "report.md").read_text()
    assert not list(tmp_path.glob("*.png"))


def test_two_parameters_that_do_not_form_a_grid_give_no_heatmap(tmp_path: Path) -> None:
    for num, (lr, dropout) in enumerate([(0.1, 0.3), (0.02, 0.1), (0.005, 0.25), (0.3, 0.05)]):
        make_job(tmp_path, num, [f"optimizer.lr={lr}", f"model.dropout={dropout}"], 0.6 + lr)
    report = sweep_report(tmp_path)  # what Optuna leaves: 4 jobs, 16 cells
    assert report["picture"] is None and not (tmp_path / "heatmap.png").exists()
    assert "do not form a grid: 4 jobs for 16 cells" in (tmp_path / "report.md").read_text()


def test_single_run_and_bad_paths(tmp_path: Path) -> None:
    run = make_job(tmp_path, 0, ["trainer.max_epochs=3"], 0.8)
    report = sweep_report(run)
    assert report["swept"] == {} and report["best"]["job"] == "0" and report["picture"] is None
    with pytest.raises(ReportError, match="no such folder"):
        sweep_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="holds no runs"):
        sweep_report(tmp_path / "empty")


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sweep_report_cli(grid_sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert load_script("sweep_report").main([str(grid_sweep), "--metric", "test/acc"]) == 0
    out = capsys.readouterr().out
    assert "6 job(s): 4 ok, 1 failed, 1 missing" in out
    assert "best by test/acc: job 3 (batch_size=32, max_epochs=2) = 0.91" in out
    assert f"wrote {grid_sweep / 'heatmap.png'}" in out


@pytest.mark.parametrize("script", ["sweep_report", "plot_curves"])
def test_cli_bad_path_is_one_line_and_exit_2(tmp_path: Path, script: str) -> None:
    for bad in (tmp_path / "nope", tmp_path):  # missing folder; folder with no runs
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / f"{script}.py"), str(bad)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert done.stderr.startswith("error: ") and str(bad) in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def write_events(folder: Path, scalars: dict[str, list[tuple[int, float]]]) -> None:
    """A real TensorBoard event file (TFRecord of Event protos), as Lightning's logger writes."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "events.out.tfevents.1.test").open("wb") as f:
        writer = RecordWriter(f)
        writer.write(Event(wall_time=0.0, file_version="brain.Event:2").SerializeToString())
        for tag, points in scalars.items():
            for step, value in points:
                summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
                writer.write(Event(wall_time=0.0, step=step, summary=summary).SerializeToString())


def curves_of(batch_size: int, epochs: int) -> dict[str, list[tuple[int, float]]]:
    iters = 1257 // batch_size
    return {
        "train/loss": [(i, 2.0 / i) for i in range(10, epochs * iters + 1, 10)],
        "val/loss": [(e * iters, 1.5 / e) for e in range(1, epochs + 1)],
        **{
            f"epoch/{s}_{m}": [(e, 0.5 + e / 10) for e in range(1, epochs + 1)]
            for s in ("train", "val")
            for m in ("loss", "acc")
        },
    }


def test_curves_of_a_sweep(grid_sweep: Path) -> None:
    for num, bs in enumerate((32, 64, 128)):  # jobs 3-5 (max_epochs=2) have no event files
        write_events(grid_sweep / str(num) / "tensorboard", curves_of(bs, 3))
    runs = load_runs(grid_sweep)
    assert [r["label"] for r in runs] == [
        "batch_size=32, max_epochs=1",
        "batch_size=64, max_epochs=1",
        "batch_size=128, max_epochs=1",
    ]
    assert runs[0]["scalars"]["epoch/val_acc"] == [
        (1, pytest.approx(0.6)),
        (2, pytest.approx(0.7)),
        (3, pytest.approx(0.8)),
    ]
    written = plot_curves(grid_sweep)
    assert [p.name for p in written] == ["curves_loss_by_iteration.png", "curves_by_epoch.png"]
    assert all(p.parent == grid_sweep and is_png(p) for p in written)


def test_curves_of_one_run_read_every_point(tmp_path: Path) -> None:
    long_run = tmp_path / "long"  # more points than TensorBoard keeps by default (10,000)
    points = [(i, 1 / i) for i in range(1, 10_201)]
    write_events(long_run / "tensorboard", {"train/loss": points})
    assert len(read_scalars(long_run)["train/loss"]) == 10_200
    run = make_job(tmp_path, 0, ["trainer.max_epochs=1"], 0.8)  # no epoch/* curves: one picture
    write_events(run / "tensorboard", {"train/loss": [(i, 1 / i) for i in range(1, 50)]})
    assert [p.name for p in plot_curves(run)] == ["curves_loss_by_iteration.png"]
    assert is_png(run / "curves_loss_by_iteration.png")
    with pytest.raises(ReportError, match="no TensorBoard event files"):
        plot_curves(make_job(tmp_path, 1, [], 0.7))


def test_a_regressions_curves_and_the_tensorboard_folder_of_its_metrics_json(tmp_path: Path):
    """A regression logs its loss as mse; a run's curves are in the TensorBoard folder its
    metrics.json names (logs/tensorboard/...), not in the run folder."""
    from trainkit.plots import loss_name

    run = make_job(tmp_path, 0, ["model=regression"], 0.8)
    curves_dir = tmp_path / "logs" / "tensorboard" / "train" / "regression·linear 0"
    write_events(curves_dir, {"train/mse": [(i, 1 / i) for i in range(1, 20)],
                              "epoch/train_mse": [(1, 0.5), (2, 0.2)],
                              "epoch/val_r2": [(1, 0.7), (2, 0.9)]})  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "tensorboard": str(curves_dir)}))
    assert set(read_scalars(run)) == {"train/mse", "epoch/train_mse", "epoch/val_r2"}
    runs = load_runs(run)
    assert loss_name(runs) == "mse"
    names = [p.name for p in plot_curves(run)]
    assert names == ["curves_loss_by_iteration.png", "curves_by_epoch.png"]
