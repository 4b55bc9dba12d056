"""Seeds as a dimension of a sweep report, jobs that never started, pruned jobs: on fake sweep
folders (tests/test_reports.py's make_job), no training."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest
import yaml
from test_reports import is_png, load_script, make_job, write_events

from trainkit.plots import load_runs, plot_curves
from trainkit.reports import sweep_report

# batch_size x lr x seed; (32, 0.1) holds the best single job, but (128, 0.01) the best mean
ACCS = {
    ("32", "0.01"): [0.80, 0.82, 0.81],
    ("32", "0.1"): [0.95, 0.70, 0.72],
    ("128", "0.01"): [0.85, 0.86, 0.84],
    ("128", "0.1"): [0.60, 0.62, None],  # its third seed failed
}


@pytest.fixture
def seeds_sweep(tmp_path: Path) -> Path:
    num = 0
    for (bs, lr), accs in ACCS.items():
        for seed, acc in zip((1, 2, 3), accs, strict=True):
            over = [f"data.batch_size={bs}", f"optimizer.lr={lr}", f"seed={seed}"]
            if acc is None:
                make_job(tmp_path, num, over, status="failed", error="loss is NaN")
            else:
                make_job(tmp_path, num, over, acc)
            num += 1
    return tmp_path


def rows_of(md: str, header_start: str) -> list[list[str]]:
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip("|").split("|")])
    return [table[0], *table[2:]]


def test_jobs_that_differ_only_in_their_seed_are_one_configuration(
    seeds_sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = sweep_report(seeds_sweep)
    configs = report["configs"]
    assert [c["settings"] for c in configs] == [
        {"data.batch_size": "128", "optimizer.lr": "0.01"},
        {"data.batch_size": "32", "optimizer.lr": "0.01"},
        {"data.batch_size": "32", "optimizer.lr": "0.1"},
        {"data.batch_size": "128", "optimizer.lr": "0.1"},
    ]  # ranked by the mean, although job 3 (32, 0.1, seed 1) is the best single job
    assert report["best"]["job"] == "3"
    first = configs[0]
    assert (first["n"], first["rank"]) == (3, 1)
    assert first["mean"] == pytest.approx(0.85)
    assert first["std"] == pytest.approx(statistics.stdev([0.85, 0.86, 0.84]))
    assert configs[-1]["n"] == 2 and configs[-1]["mean"] == pytest.approx(0.61)

    md = (seeds_sweep / "report.md").read_text()
    assert "**Best configuration: batch_size=128, lr=0.01**: val/acc = 0.85 ± 0.01 (n=3)" in md
    table = rows_of(md, "| rank |")
    assert table[0] == [
        "rank",
        "data.batch_size",
        "optimizer.lr",
        "**val/acc** (mean ± std)",
        "test/acc (mean ± std)",
        "n",
        "seed",
    ]
    assert table[1] == ["1", "128", "0.01", "0.85 ± 0.01", "0.84 ± 0.01", "3 of 3", "1, 2, 3"]
    assert table[4][:4] == ["4", "128", "0.1", "0.61 ± 0.01414"] and table[4][5] == "2 of 3"
    assert len(rows_of(md, "| job |")) == 13  # and every job below it

    with (seeds_sweep / "report_by_config.csv").open() as f:
        by_config = list(csv.DictReader(f))
    assert [r["configuration"] for r in by_config][:2] == [
        "batch_size=128, lr=0.01",
        "batch_size=32, lr=0.01",
    ]
    assert float(by_config[0]["objective_mean"]) == pytest.approx(0.85)
    assert float(by_config[0]["test/acc_mean"]) == pytest.approx(0.84)
    assert by_config[3]["n"] == "2" and by_config[3]["jobs"] == "3"

    assert report["picture"] == str(seeds_sweep / "heatmap.png") and is_png(Path(report["picture"]))
    assert load_script("sweep_report").main([str(seeds_sweep)]) == 0
    out = capsys.readouterr().out
    assert "best by val/acc: batch_size=128, lr=0.01 = 0.85 ± 0.01 (n=3)" in out
    assert "by `data.batch_size` and `optimizer.lr`, mean ± std over the seeds)" in md


def test_one_parameter_and_seeds_give_error_bars_and_seeds_alone_no_picture(
    tmp_path: Path,
) -> None:
    for num, (lr, seed, acc) in enumerate(
        [("0.01", 1, 0.8), ("0.01", 2, 0.9), ("0.1", 1, 0.5), ("0.1", 2, 0.7)]
    ):
        make_job(tmp_path / "line", num, [f"optimizer.lr={lr}", f"seed={seed}"], acc)
    report = sweep_report(tmp_path / "line")
    assert report["picture"] == str(tmp_path / "line" / "line.png")
    assert report["best_config"]["settings"] == {"optimizer.lr": "0.01"}
    for num, seed in enumerate((1, 2, 3)):
        make_job(tmp_path / "seeds", num, [f"seed={seed}"], 0.7 + num / 10)
    report = sweep_report(tmp_path / "seeds")
    assert report["picture"] is None
    md = (tmp_path / "seeds" / "report.md").read_text()
    assert "**Best configuration: every job**: val/acc = 0.8 ± 0.1 (n=3)" in md
    assert "Picture: none (0 swept parameters besides the seed" in md


def test_curves_of_seeds_are_one_mean_curve_with_a_band_per_configuration(tmp_path: Path) -> None:
    for num, (bs, seed) in enumerate([(32, 1), (32, 2), (64, 1), (64, 2)]):
        job = make_job(tmp_path, num, [f"data.batch_size={bs}", f"seed={seed}"], 0.8)
        curves = {"epoch/val_acc": [(1, 0.5 + seed / 10), (2, 0.6 + seed / 10)]}
        curves["train/loss"] = [(i, bs / 100 + seed / i) for i in range(1, 20)]
        write_events(job / "tensorboard", curves)
    runs = load_runs(tmp_path)
    assert [r["label"] for r in runs] == [
        "batch_size=32 (mean ± std of 2 seeds)",
        "batch_size=64 (mean ± std of 2 seeds)",
    ]
    assert runs[0]["scalars"]["epoch/val_acc"] == [
        (1, pytest.approx(0.65)),
        (2, pytest.approx(0.75)),
    ]
    assert runs[0]["bands"]["epoch/val_acc"][0][1] == pytest.approx(statistics.stdev([0.6, 0.7]))
    written = plot_curves(tmp_path)
    assert all(is_png(p) for p in written) and len(written) == 2


def test_jobs_planned_but_never_started_are_in_the_report(tmp_path: Path) -> None:
    """A sweep stopped after its second job: sweep_jobs.yaml (written by trainkit's sweepers)
    lists all four."""
    jobs = [[f"data.batch_size={bs}", f"trainer.max_epochs={e}"] for bs in (16, 64) for e in (1, 2)]
    make_job(tmp_path, 0, jobs[0], 0.8)
    make_job(tmp_path, 1, jobs[1], 0.9)
    plan = [{"job": n, "folder": f"{n}_x", "overrides": o} for n, o in enumerate(jobs)]
    (tmp_path / "sweep_jobs.yaml").write_text(yaml.safe_dump({"planned": 4, "jobs": plan}))
    report = sweep_report(tmp_path)
    assert [(j["job"], j["status"]) for j in report["jobs"]] == [
        ("0", "ok"),
        ("1", "ok"),
        ("2", "not started"),
        ("3", "not started"),
    ]
    assert report["picture"] == str(tmp_path / "heatmap.png")  # the whole grid, 2 cells empty
    md = (tmp_path / "report.md").read_text()
    assert "4 job(s), 2 ok, 2 not started." in md
    assert f"- not started: `2`, `3` (the same command with `hydra.sweep.dir={tmp_path}`" in md

    empty = tmp_path / "stopped_at_once"  # stopped before its first job started
    empty.mkdir()
    (empty / "sweep_jobs.yaml").write_text(yaml.safe_dump({"planned": 6, "jobs": plan[:2]}))
    md = (empty / "report.md") if sweep_report(empty) else None
    assert "2 job(s), 2 not started; 4 more planned, not started." in md.read_text()


def test_a_pruned_job_shows_its_value_but_is_not_ranked(tmp_path: Path) -> None:
    make_job(tmp_path, 0, ["optimizer.lr=0.1"], 0.9, status="pruned")
    make_job(tmp_path, 1, ["optimizer.lr=0.01"], 0.7)
    report = sweep_report(tmp_path)
    assert report["best"]["job"] == "1"
    pruned = report["jobs"][0]
    assert pruned["status"] == "pruned" and pruned["value"] == pytest.approx(0.9)
    assert "rank" not in pruned
    assert "- `0` (lr=0.1): pruned" in (tmp_path / "report.md").read_text()
