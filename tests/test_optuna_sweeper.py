"""The `hydra/sweeper=optuna` plugin (src/hydra_plugins/trainkit_optuna_sweeper) and the
conf/hparams_search configs: search-space parsing, config composition, and real sweeps of a tiny
Hydra app (no training) in a subprocess; one slow test sweeps train.py itself."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hydra_plugins.trainkit_optuna_sweeper._search_space import search_param, split_overrides
from trainkit.cli import compose_config
from trainkit.run_files import job_number

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SEARCHES = ["cnn_optuna", "regression_optuna", "text_optuna"]
PARSER = OverridesParser.create()


def param(line: str):
    return search_param(PARSER.parse_override(line))


# --- override -> distribution -------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("x=tag(log, interval(1e-4, 1e-1))", FloatDistribution(1e-4, 0.1, log=True)),
        ("x=interval(-5, 5)", FloatDistribution(-5.0, 5.0)),  # Hydra: interval() is float
        ("x=int(interval(1, 10))", IntDistribution(1, 10)),
        ("x=tag(log, int(interval(1, 1024)))", IntDistribution(1, 1024, log=True)),
        ("x=range(1, 10, 2)", IntDistribution(1, 9, step=2)),
        ("x=range(10, 0, -3)", IntDistribution(1, 10, step=3)),  # 10, 7, 4, 1
        ("x=range(4)", IntDistribution(0, 3)),
        ("x=tag(log, range(1, 100))", IntDistribution(1, 99, log=True)),
        ("x=range(0.5, 2.0, 0.5)", FloatDistribution(0.5, 1.5, step=0.5)),
        ("x=choice(16, 32, 64)", CategoricalDistribution([16, 32, 64])),
        ("x=16,32", CategoricalDistribution([16, 32])),
        ("x=choice(relu, gelu)", CategoricalDistribution(["relu", "gelu"])),
        ("x=choice(true, false)", CategoricalDistribution([True, False])),
        ("x=choice([], [32], [64, 64])", CategoricalDistribution(["[]", "[32]", "[64,64]"])),
    ],
)
def test_distribution_of_each_sweep_syntax(line: str, expected) -> None:
    assert param(line).distribution == expected


@pytest.mark.parametrize(
    "line",
    [
        "x=choice([], [32], [64, 64])",
        'x=choice("leaky relu", relu)',
        "x=choice({a: 1}, {a: 2})",
        "x=choice(2, 2.5, abc, true)",
        "x=shuffle(choice(a, b, c))",
    ],
)
def test_each_choice_round_trips_through_its_override(line: str) -> None:
    """A trial passes `override(choice)` to its job; Hydra must read back the chosen value."""
    p = param(line)
    for choice in p.distribution.choices:
        text = p.override(choice)
        assert PARSER.parse_override(text).value() == p.config_value(choice), text


def test_override_text_of_lists_prefixes_and_groups() -> None:
    hidden = param("model.hidden=choice([], [64, 64])")
    assert hidden.override("[64,64]") == "model.hidden=[64,64]"
    assert hidden.config_value("[64,64]") == [64, 64]
    assert param("+extra=choice(1, 2)").override(2) == "+extra=2"
    group = param("model=cnn,text")
    assert group.distribution == CategoricalDistribution(["cnn", "text"])
    assert group.override("text") == "model=text"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x=tag(lg, interval(0, 1))", "unknown tag"),
        ("x=choice(1, 1.0)", "duplicate choice"),
        ("x=tag(log, interval(0, 1))", "x=tag(log, interval(0, 1))"),  # log of 0: Optuna says no
        ("x=tag(log, choice(1, 2))", "interval() and range() only"),
        ("x=tag(log, range(1, 10, 2))", "x=tag(log, range(1, 10, 2))"),
        ("x=range(5, 5)", "empty"),
    ],
)
def test_bad_search_space_is_a_clear_error(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        param(line)


def test_split_fixed_overrides_and_search_space() -> None:
    lines = ["x=interval(0, 1)", "y=3", "~z", "w=[1,2]", "y=choice(1, 2)", "x=0.5"]
    fixed, space = split_overrides(PARSER.parse_overrides(lines))
    assert fixed == ["~z", "w=[1,2]", "x=0.5"]  # the later `x=0.5` fixes x
    assert list(space) == ["y"]  # the later `y=choice(...)` searches y


# --- the hparams_search configs -----------------------------------------------------------


def compose_train(overrides: list[str]):
    return compose_config(CONF, overrides)


def parse_params(params) -> tuple[list[str], dict]:
    """A `hydra.sweeper.params` node as the sweeper reads it: (fixed overrides, search space)."""
    return split_overrides(PARSER.parse_overrides([f"{k}={v}" for k, v in params.items()]))


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    GlobalHydra.instance().clear()


@pytest.mark.parametrize("search", SEARCHES)
def test_hparams_search_config_composes_into_an_optuna_sweep(search: str) -> None:
    cfg = compose_train([f"hparams_search={search}"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("trainkit_optuna_sweeper.optuna_sweeper.OptunaSweeper")
    assert cfg.model._target_.split(".")[-2] == search.removesuffix("_optuna")  # models.cnn.X
    monitor, mode = cfg.model.get("monitor", "val/loss"), cfg.model.get("monitor_mode", "min")
    assert cfg.optimized_metric == monitor
    assert sweeper.direction == {"max": "maximize", "min": "minimize"}[mode]
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert sweeper.sampler.seed == cfg.seed
    assert sweeper.n_trials >= 10
    fixed, space = parse_params(sweeper.params)
    assert fixed == []
    assert space["optimizer.lr"].distribution.log
    assert "data.batch_size" in space


@pytest.mark.parametrize("search", SEARCHES)
def test_every_searched_value_composes(search: str) -> None:
    """Each categorical choice (and each end of a numeric range) is a valid override of the
    composed config, and lands in it as the value the results file reports."""
    space = parse_params(compose_train([f"hparams_search={search}"]).hydra.sweeper.params)[1]
    values = {}
    for key, p in space.items():
        d = p.distribution
        values[key] = list(d.choices) if isinstance(d, CategoricalDistribution) else [d.low, d.high]
    for row in range(max(map(len, values.values()))):  # row i: the i-th value of every key
        picked = {key: v[min(row, len(v) - 1)] for key, v in values.items()}
        overrides = [space[key].override(value) for key, value in picked.items()]
        cfg = compose_train([f"hparams_search={search}", *overrides])
        for key, value in picked.items():
            assert OmegaConf.select(cfg, key) == space[key].config_value(value), key


def test_sampler_can_be_swapped_and_keeps_the_seed() -> None:
    cfg = compose_train(["hparams_search=cnn_optuna", "hydra/sweeper/sampler=random", "seed=7"])
    assert cfg.hydra.sweeper.sampler._target_ == "optuna.samplers.RandomSampler"
    assert cfg.hydra.sweeper.sampler.seed == 7


def test_plugin_is_discovered_by_hydra() -> None:
    """The editable install exposes src/hydra_plugins to Hydra's plugin scan."""
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    names = [f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Sweeper)]
    assert "hydra_plugins.trainkit_optuna_sweeper.optuna_sweeper.OptunaSweeper" in names


# --- real sweeps of a tiny Hydra app (no training) ----------------------------------------

APP = """
import math
import os
import signal
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg) -> float:
    job = HydraConfig.get().job.num
    time.sleep(cfg.sleep)
    if job == cfg.die_at_job:  # as a worker killed by its cluster: no cleanup at all
        os.kill(os.getpid(), signal.SIGKILL)
    if cfg.rendezvous:  # jobs 2k and 2k+1 wait for each other: only parallel jobs get past
        (Path(cfg.rendezvous) / f"started_{job}").touch()
        deadline = time.time() + 30
        while not (Path(cfg.rendezvous) / f"started_{job ^ 1}").exists():
            if time.time() > deadline:
                raise TimeoutError("the other job of the batch never started")
            time.sleep(0.05)
    if cfg.fail_all or job == 3:
        raise RuntimeError("boom")
    if job == 1:
        return math.nan
    return (cfg.x - 2) ** 2 + cfg.offset + len(cfg.widths) + cfg.seed / 100


if __name__ == "__main__":
    main()
"""

APP_CONFIG = """
defaults:
  - override hydra/sweeper: optuna
  - _self_
x: 0.0
offset: 0
widths: []
act: relu
fail_all: false
rendezvous: null
sleep: 0
die_at_job: -1
seed: 0
hydra:
  sweeper:
    sampler:
      seed: 123
    n_trials: 5
    params:
      x: interval(-5, 5)
      widths: choice([], [8], [8, 8])
"""

# A fixed override and a command-line search key on top of the config's params; n_jobs=2 with
# the basic launcher: batches of 2, 2 and 1 jobs, run one after another.
FIRST = ["offset=10", "act=choice(relu,gelu)", "hydra.sweeper.n_jobs=2"]
# name -> command-line arguments. "second" repeats "first" with a SQLite storage and
# direction=maximize, which changes no trial: all 5 are TPE's seeded random startup trials.
SWEEPS = {
    "first": FIRST,
    "second": [*FIRST, "hydra.sweeper.study_name=app", "hydra.sweeper.direction=maximize"],
    "all_fail": ["fail_all=true", "hydra.sweeper.n_trials=2"],
}
# "resumed" launches "second" again on the same storage, once "second" has finished
RESUMED = [*SWEEPS["second"], "hydra.sweeper.n_trials=3"]


def start_sweep(tmp: Path, name: str, args: list[str]) -> subprocess.Popen:
    """`python app.py -m <args>` in tmp (the tiny app is written there once), into tmp/<name>."""
    if not (tmp / "app.py").exists():
        (tmp / "conf").mkdir()
        (tmp / "app.py").write_text(APP)
        (tmp / "conf" / "config.yaml").write_text(APP_CONFIG)
    cmd = [sys.executable, "app.py", "-m", f"hydra.sweep.dir={tmp / name}", *args]
    return subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Each of SWEEPS, all started at once (two CPUs: about half the wall time)."""
    tmp = tmp_path_factory.mktemp("sweeps")
    storage = {"second": [f"hydra.sweeper.storage=sqlite:///{tmp / 'optuna.db'}"]}
    procs = {n: start_sweep(tmp, n, [*a, *storage.get(n, [])]) for n, a in SWEEPS.items()}
    done = {name: (wait(proc), tmp / name) for name, proc in procs.items()}
    resumed = start_sweep(tmp, "resumed", [*RESUMED, *storage["second"]])
    return {**done, "resumed": (wait(resumed), tmp / "resumed")}


def finished(sweeps, name: str) -> Path:
    proc, sweep_dir = sweeps[name]
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep_dir


def read_results(sweep_dir: Path) -> dict:
    return yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())


def job_dirs(sweep_dir: Path) -> list[str]:
    """The job numbers of a sweep's folders (`3_lr=0.01,...` -> "3"), sorted."""
    return sorted(job_number(p.name) for p in sweep_dir.iterdir() if p.is_dir())


def job_dir(sweep_dir: Path, job: int) -> Path:
    (found,) = [p for p in sweep_dir.iterdir() if p.is_dir() and job_number(p.name) == str(job)]
    return found


@pytest.mark.slow  # subprocess sweeps of a tiny app (module fixture: ~5 s)
def test_sweep_runs_n_trials_as_numbered_jobs(sweeps) -> None:
    sweep_dir = finished(sweeps, "first")
    assert job_dirs(sweep_dir) == ["0", "1", "2", "3", "4"]
    for job in range(5):
        overrides = yaml.safe_load((job_dir(sweep_dir, job) / ".hydra/overrides.yaml").read_text())
        assert "offset=10" in overrides  # fixed overrides reach every trial
        assert {o.split("=")[0] for o in overrides} == {"offset", "x", "widths", "act"}


@pytest.mark.slow  # subprocess sweeps of a tiny app (module fixture: ~5 s)
def test_results_file_reports_values_failures_and_the_best_trial(sweeps) -> None:
    res = read_results(finished(sweeps, "first"))
    assert res["direction"] == "minimize"
    assert (res["n_trials"], res["n_complete"], res["n_failed"]) == (5, 3, 2)
    trials = {t["job"]: t for t in res["trials"]}
    assert sorted(trials) == list(range(5))
    assert trials[1]["state"] == "FAIL" and trials[1]["value"] is None  # returned NaN
    assert trials[3]["state"] == "FAIL" and trials[3]["value"] is None  # raised
    complete = [t for t in res["trials"] if t["state"] == "COMPLETE"]
    assert [t["job"] for t in complete] == [0, 2, 4]
    for t in complete:  # Optuna was told what the job returned
        p = t["params"]
        assert isinstance(p["widths"], list) and p["act"] in ("relu", "gelu")
        assert t["value"] == pytest.approx((p["x"] - 2) ** 2 + 10 + len(p["widths"]))
    best = min(complete, key=lambda t: t["value"])
    assert res["best_value"] == best["value"]
    assert res["best_job"] == best["job"]
    assert res["best_params"] == best["params"]
    assert f"x={best['params']['x']}" in res["best_overrides"]


@pytest.mark.slow  # subprocess sweeps of a tiny app (module fixture: ~5 s)
def test_seeded_sampler_repeats_its_trials_and_sqlite_storage_works(sweeps) -> None:
    first, second = (read_results(finished(sweeps, name)) for name in ("first", "second"))
    assert [t["params"] for t in first["trials"]] == [t["params"] for t in second["trials"]]
    assert len({t["params"]["x"] for t in first["trials"]}) == 5
    assert second["direction"] == "maximize"
    assert second["best_value"] == max(t["value"] for t in second["trials"] if t["value"])
    assert second["best_value"] > first["best_value"]
    db = finished(sweeps, "second").parent / "optuna.db"
    study = optuna.load_study(study_name="app", storage=f"sqlite:///{db}")
    states = [t.state.name for t in study.trials[:5]]  # 3 more come from the "resumed" sweep
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "FAIL", "COMPLETE"]  # none left RUNNING


@pytest.mark.slow  # subprocess sweeps of a tiny app (module fixture: ~5 s)
def test_a_study_resumed_from_its_storage_continues_with_new_trials(sweeps) -> None:
    second, resumed = (read_results(finished(sweeps, name)) for name in ("second", "resumed"))
    proc, _ = sweeps["resumed"]
    assert "Resuming study 'app' after 5 trials: sampler seed 123 + 5" in proc.stderr + proc.stdout
    assert [t["number"] for t in resumed["trials"]] == [5, 6, 7]
    before = [t["params"] for t in second["trials"]]
    assert not [t["params"] for t in resumed["trials"] if t["params"] in before]  # all new
    db = finished(sweeps, "second").parent / "optuna.db"
    assert len(optuna.load_study(study_name="app", storage=f"sqlite:///{db}").trials) == 8


@pytest.mark.slow  # subprocess sweeps of a tiny app (module fixture: ~5 s)
def test_a_sweep_where_every_trial_fails_exits_with_an_error(sweeps) -> None:
    proc, sweep_dir = sweeps["all_fail"]
    assert proc.returncode != 0
    assert "All 2 trials failed" in proc.stderr
    res = read_results(sweep_dir)
    assert res["best_value"] is None
    assert [t["state"] for t in res["trials"]] == ["FAIL", "FAIL"]


# --- the real thing ------------------------------------------------------------------------


@pytest.mark.slow
def test_train_py_regression_search(tmp_path: Path) -> None:
    from trainkit.training import optimized_value

    args = "hparams_search=regression_optuna hydra.sweeper.n_trials=3 trainer.max_epochs=2"
    cmd = [sys.executable, "train.py", "-m", *args.split(), "trainer.enable_progress_bar=false"]
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(tmp_path)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "regression_optuna" / "multiruns").iterdir()
    assert job_dirs(sweep_dir) == ["0", "1", "2"]
    res = read_results(sweep_dir)
    assert res["optimized_metric"] == "val/mse" and res["direction"] == "minimize"
    assert res["n_complete"] == 3
    for t in res["trials"]:
        metrics = json.loads((job_dir(sweep_dir, t["job"]) / "metrics.json").read_text())
        assert t["value"] == pytest.approx(optimized_value(metrics, "val/mse"))
    assert res["best_value"] == min(t["value"] for t in res["trials"])


@pytest.mark.slow
def test_joblib_launcher_runs_a_batch_in_parallel(tmp_path: Path) -> None:
    """n_jobs=2 with hydra/launcher=joblib: the two jobs of a batch wait for each other (see
    APP's rendezvous), so a sweep that ran them one after the other would fail them."""
    args = "hydra/launcher=joblib hydra.launcher.n_jobs=2 hydra.sweeper.n_jobs=2"
    args += f" hydra.sweeper.n_trials=4 rendezvous={tmp_path}"
    proc = wait(start_sweep(tmp_path, "parallel", args.split()))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = read_results(tmp_path / "parallel")
    assert job_dirs(tmp_path / "parallel") == ["0", "1", "2", "3"]
    assert [t["state"] for t in res["trials"]] == ["COMPLETE", "FAIL", "COMPLETE", "FAIL"]
    assert sorted(p.name for p in tmp_path.glob("started_*")) == [f"started_{i}" for i in range(4)]
