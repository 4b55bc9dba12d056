"""The Optuna sweeper past one process and one seed: workers on a journal file, a killed
worker's trial queued again, repeats over seeds, pruning, settings that cannot work. Most
sweep the tiny app of test_optuna_sweeper.py; the pruning and DDP ones sweep train.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import QUIET, ROOT
from test_optuna_sweeper import job_dirs, read_results, start_sweep, wait

from hydra_plugins.trainkit_optuna_sweeper._storage import PerTrialSeed


def study(journal: Path, name: str) -> optuna.Study:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    return optuna.load_study(study_name=name, storage=storage)


def test_each_trial_is_sampled_with_seed_plus_its_number():
    sampler = PerTrialSeed(lambda seed: optuna.samplers.RandomSampler(seed=seed), 7)
    first = optuna.create_study(sampler=sampler)
    first.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    # another process with the same seed, whose first trial is number 2 (two were taken)
    other = optuna.create_study(
        sampler=PerTrialSeed(lambda s: optuna.samplers.RandomSampler(seed=s), 7)
    )
    other.enqueue_trial({"x": 0.5})
    other.enqueue_trial({"x": 0.5})
    other.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert other.trials[2].params == first.trials[2].params  # repeatable by number
    assert len({t.params["x"] for t in first.trials}) == 3  # and new for each number


@pytest.mark.slow
def test_two_workers_on_one_journal_file_share_one_study(tmp_path):
    journal = tmp_path / "optuna.log"
    args = [f"hydra.sweeper.storage=journal:{journal}", "hydra.sweeper.study_name=shared"]
    args += ["hydra.sweeper.n_trials=4", "sleep=0.3"]
    workers = [start_sweep(tmp_path, name, args) for name in ("w1", "w2")]  # both at once
    done = [wait(w) for w in workers]
    assert [d.returncode for d in done] == [0, 0], done[0].stderr[-2000:] + done[1].stderr[-2000:]
    trials = study(journal, "shared").trials
    assert [t.number for t in trials] == list(range(8))  # no duplicate, none lost
    assert all(t.state.is_finished() for t in trials)
    assert len({t.params["x"] for t in trials}) == 8  # the workers asked for different points
    mine = [{t["number"] for t in read_results(tmp_path / w)["trials"]} for w in ("w1", "w2")]
    assert len(mine[0]) == len(mine[1]) == 4 and mine[0].isdisjoint(mine[1])
    for worker, numbers in zip(("w1", "w2"), mine, strict=True):  # a job folder per trial number
        assert job_dirs(tmp_path / worker) == sorted(str(n) for n in numbers)


@pytest.mark.slow
def test_a_killed_workers_trial_is_failed_and_run_again_by_the_next(tmp_path):
    journal = tmp_path / "optuna.log"
    args = [f"hydra.sweeper.storage=journal:{journal}", "hydra.sweeper.study_name=s"]
    args += ["hydra.sweeper.n_trials=3", "hydra.sweeper.heartbeat_interval=0.2"]
    args += ["hydra.sweeper.grace_period=1"]
    killed = wait(start_sweep(tmp_path, "sweep", [*args, "die_at_job=2"]))
    assert killed.returncode == -9
    left = study(journal, "s").trials
    assert [t.state.name for t in left] == ["COMPLETE", "FAIL", "RUNNING"]  # job 1: NaN
    time.sleep(1.5)  # past the grace period: trial 2's heartbeat is stale
    resumed = wait(start_sweep(tmp_path, "sweep", args))  # the same command again
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-3000:]
    assert "Trial 2: its worker stopped (no heartbeat): failed, queued again" in output
    trials = study(journal, "s").trials
    assert [t.state.name for t in trials[:3]] == ["COMPLETE", "FAIL", "FAIL"]
    retry = trials[3]
    assert retry.system_attrs["failed_trial"] == 2 and retry.params == left[2].params
    assert retry.state.name == "COMPLETE"
    res = read_results(tmp_path / "sweep")
    assert [(t["number"], t["job"]) for t in res["trials"]][0] == (3, 2)  # in trial 2's folder
    assert (tmp_path / "sweep" / "earlier_attempts").is_dir()  # the killed attempt, kept


@pytest.mark.slow
def test_repeats_score_a_trial_by_the_mean_over_seeds(tmp_path):
    args = ["hydra.sweeper.n_trials=3", "hydra.sweeper.repeats=3", "seed=10"]
    proc = wait(start_sweep(tmp_path, "repeats", args))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = read_results(tmp_path / "repeats")
    assert job_dirs(tmp_path / "repeats") == sorted(str(n) for n in range(9))
    # the app fails job 1 (NaN) and job 3 (raises): trials 0 and 1 fail with them
    assert [t["state"] for t in res["trials"]] == ["FAIL", "FAIL", "COMPLETE"]
    third = res["trials"][2]
    assert third["jobs"] == [6, 7, 8] and third["job"] == 6
    base = (third["params"]["x"] - 2) ** 2 + len(third["params"]["widths"])
    assert third["values"] == pytest.approx([base + 0.10, base + 0.11, base + 0.12])
    assert third["value"] == pytest.approx(base + 0.11)
    for job, seed in zip((6, 7, 8), (10, 11, 12), strict=True):
        overrides = yaml.safe_load(
            (tmp_path / "repeats" / str(job) / ".hydra/overrides.yaml").read_text()
        )
        assert f"seed={seed}" in overrides


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hydra.sweeper.n_trials=0"], "error: hydra.sweeper.n_trials must be at least 1, got 0."),
        pytest.param(
            ["hydra.sweeper.repeats=0"],
            "error: hydra.sweeper.repeats must be at least 1, got 0.",
            marks=pytest.mark.slow,  # the same path as n_trials=0: kept out of the fast suite
        ),
        pytest.param(
            ["hydra.sweeper.pruner=medain"],
            "error: hydra.sweeper.pruner: medain is not one of none, median, hyperband (or give "
            "a dict with the _target_ of an Optuna pruner).",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ["hydra.sweeper.pruner=median", "hydra.sweeper.repeats=2"],
            "error: hydra.sweeper.pruner and hydra.sweeper.repeats > 1 do not go together",
            marks=pytest.mark.slow,
        ),
        (
            ["hydra.sweeper.pruner=median", "hydra/launcher=joblib"],
            "error: pruning with this launcher runs the jobs in other processes, which cannot "
            "reach an in-memory study: set hydra.sweeper.storage (e.g. journal:optuna.log).",
        ),
    ],
)
def test_settings_that_cannot_work_are_one_sentence(tmp_path, args, message):
    proc = wait(start_sweep(tmp_path, "bad", args))
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(message) and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists() or not job_dirs(tmp_path / "bad")  # nothing ran


# --- train.py ---------------------------------------------------------------------------------
def train(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(tmp_path / "logs")}
    return subprocess.run(
        [sys.executable, "train.py", "-m", *args, *QUIET], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip


# a learning rate of 1e-4 leaves val/mse far above 1 after an epoch, 0.05 brings it below 0.5:
# the threshold pruner stops the first kind at its first validation, never the second
PRUNED = [
    "hparams_search=regression_optuna",
    "data.n_samples=230",
    "trainer.max_epochs=4",
    "hydra.sweeper.n_trials=4",
    "hydra/sweeper/sampler=random",
    "seed=3",
    "optimizer.lr=choice(0.0001,0.05)",
    "data.batch_size=16",
    "model.hidden=[]",
    "hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, upper: 0.9}",
]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_pruned_trial_stops_early_and_says_so_everywhere(tmp_path, launcher):
    args = list(PRUNED)
    if launcher == "joblib":  # jobs in other processes: the trial is reached through the storage
        args += ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"]
        args += [f"hydra.sweeper.storage=journal:{tmp_path / 'optuna.log'}"]
    out = train(args, tmp_path)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    (sweep,) = (tmp_path / "logs" / "regression_optuna" / "multiruns").iterdir()
    res = read_results(sweep)
    states = {t["params"]["optimizer.lr"]: set() for t in res["trials"]}
    for t in res["trials"]:
        states[t["params"]["optimizer.lr"]].add(t["state"])
        metrics = json.loads(next(sweep.glob(f"{t['job']}_*/metrics.json")).read_text())
        if t["state"] == "PRUNED":
            assert metrics["status"] == "pruned" and metrics["epochs"] == 1  # stopped early
            assert metrics["test"] == {}  # and not tested
        else:
            assert metrics["status"] == "ok" and metrics["epochs"] == 4
    assert states == {0.0001: {"PRUNED"}, 0.05: {"COMPLETE"}}
    assert res["n_pruned"] == sum(t["state"] == "PRUNED" for t in res["trials"]) > 0
    report = (sweep / "report.md").read_text()
    assert f"{res['n_pruned']} pruned" in report and "): pruned" in report


@pytest.mark.slow
def test_a_sweep_whose_trials_all_fail_still_writes_its_report(tmp_path):
    out = train(
        ["hparams_search=regression_optuna", "hydra.sweeper.n_trials=2", "optimizer.lr=-1"],
        tmp_path,
    )
    assert out.returncode == 1
    assert "All 2 trials failed" in out.stdout + out.stderr
    (sweep,) = (tmp_path / "logs" / "regression_optuna" / "multiruns").iterdir()
    report = (sweep / "report.md").read_text()
    assert "2 job(s), 2 failed." in report
    assert "optimizer.lr must be a positive, finite number" in report


@pytest.mark.slow
def test_ddp_inside_an_optuna_sweep_with_pruning(tmp_path):
    """Two trials of two processes each (trainer=ddp_cpu); the second is pruned: the main
    process asks Optuna and both processes stop."""
    args = [*PRUNED, "trainer=ddp_cpu", "hydra.sweeper.n_trials=2"]
    out = train(args, tmp_path)
    output = out.stdout + out.stderr
    assert out.returncode == 0, output[-3000:]
    assert output.count("Initializing distributed: GLOBAL_RANK: 1,") == 2  # each trial's worker
    (sweep,) = (tmp_path / "logs" / "regression_optuna" / "multiruns").iterdir()
    res = read_results(sweep)
    assert [(t["params"]["optimizer.lr"], t["state"]) for t in res["trials"]] == [
        (0.05, "COMPLETE"),
        (0.0001, "PRUNED"),
    ]
    from trainkit.training import optimized_value

    complete, pruned = (
        json.loads(next(sweep.glob(f"{t['job']}_*/metrics.json")).read_text())
        for t in res["trials"]
    )
    assert complete["plan"]["world_size"] == pruned["plan"]["world_size"] == 2
    assert res["trials"][0]["value"] == pytest.approx(optimized_value(complete, "val/mse"))
    assert (complete["status"], complete["epochs"]) == ("ok", 4)
    assert (pruned["status"], pruned["epochs"]) == ("pruned", 1)
    strays = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert strays == ["regression_optuna", "tensorboard"]  # the runs and their curves, no more
