"""The ask/tell loop of the Optuna sweeper and its results file.

Loaded only when a sweep runs (the leading underscore hides it from Hydra's plugin scanner).
A trial is `repeats` jobs (one per seed, its value their mean); job k*repeats+i is repeat i of
trial k (of the trial a retry repeats), in `<sweep dir>/<job>_<params>`, through _jobs.SweepJobs:
a sweep resumed into its folder skips finished jobs and resumes interrupted ones.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Transformer
from hydra.core.utils import JobReturn
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from optuna.trial import TrialState

from trainkit.command_line import quote_value

from ._jobs import Job, SweepError, SweepJobs
from ._results import RESULTS_FILE, dump, summarize
from ._search_space import SearchParam, split_overrides
from ._signals import stop_on_sigterm
from ._storage import (
    LIVE,
    STUDY_VARIABLE,
    TRIAL_VARIABLE,
    Heartbeat,
    PerTrialSeed,
    make_pruner,
    make_storage,
    original_number,
    quiet,
)

if TYPE_CHECKING:
    from .optuna_sweeper import OptunaSweeper

log = logging.getLogger(__name__)

OptunaSweepError = SweepError  # the name this module used before
PRUNING_CALLBACK = "trainkit.pruning.OptunaPruning"


def run_sweep(sweeper: OptunaSweeper, arguments: list[str]) -> list[Sequence[JobReturn]]:
    """Run `n_trials` trials, `n_jobs` per launch; write the results file; return the jobs."""
    assert sweeper.config is not None and sweeper.hydra_context is not None
    config = sweeper.config
    settings = config.hydra.sweeper
    check_settings(sweeper, settings, config)
    parser = OverridesParser.create(config_loader=sweeper.hydra_context.config_loader)
    lines = [f"{key}={_as_text(value)}" for key, value in sweeper.params.items()]
    try:
        fixed, space = split_overrides(parser.parse_overrides([*lines, *arguments]))
    except ValueError as err:
        raise SweepError(f"Bad Optuna search space: {err}") from err
    if not space:
        log.warning("The search space is empty: every trial runs the same config.")
    distributions = {key: param.distribution for key, param in space.items()}
    metric = OmegaConf.select(config, "optimized_metric", default=None)
    try:
        pruner = make_pruner(settings)
    except Exception as err:  # an unknown name, a bad setting of the pruner
        raise SweepError(f"error: hydra.sweeper.pruner: {err}") from None
    try:
        storage = make_storage(sweeper.storage)
    except Exception as err:  # a bad URL, a missing database driver, an unwritable file
        raise SweepError(
            f"error: hydra.sweeper.storage={sweeper.storage}: {type(err).__name__}: {err}"
        ) from None
    study = optuna.create_study(
        study_name=sweeper.study_name,
        storage=storage,
        sampler=_sampler(sweeper, config),
        pruner=pruner,
        direction=sweeper.direction,
        load_if_exists=True,
    )
    done = len(study.trials)
    seed = OmegaConf.select(config, "hydra.sweeper.sampler.seed", default=None)
    if done and seed is not None:  # each trial is sampled with seed + its number: new ones
        log.info("Resuming study %r after %d trials: sampler seed %s + %d", study.study_name,
                 done, seed, done)  # fmt: skip
    log.info(
        "Optuna study %r (%s, %s, %s), %d trials%s, %d per batch%s",
        study.study_name,
        sweeper.storage or "in memory",
        type(getattr(study.sampler, "sampler", study.sampler)).__name__,
        sweeper.direction,
        sweeper.n_trials,
        f" of {sweeper.repeats} seeds each" if sweeper.repeats > 1 else "",
        sweeper.n_jobs,
        f", pruner {type(pruner).__name__}" if _pruning(pruner) else "",
    )
    for key, param in space.items():
        log.info("  %s: %s", key, param.distribution)
    heartbeat = None
    if storage is not None:
        heartbeat = Heartbeat(study, storage, settings.heartbeat_interval,
                              settings.grace_period, settings.max_retry)  # fmt: skip
    jobs = SweepJobs(config, sweeper.hydra_context, sweeper.launcher, lock=storage is None)
    jobs.planned = sweeper.n_trials * sweeper.repeats
    loop = Loop(sweeper, study, jobs, fixed, space, metric, heartbeat, _pruning(pruner))
    with stop_on_sigterm():
        try:
            while loop.asked < sweeper.n_trials:
                loop.batch(distributions, min(sweeper.n_jobs, sweeper.n_trials - loop.asked))
        except (KeyboardInterrupt, SystemExit) as err:
            loop.give_back()  # the trials under way: failed, and queued again on a storage
            if not isinstance(err, SweepError):
                jobs.interrupted(err)
            raise
        finally:
            loop.give_back()
            jobs.release()
    log.info("sweep done: %s", jobs.summary())
    return loop.finish(Path(jobs.sweep_dir), sweeper.direction)


def check_settings(sweeper: OptunaSweeper, settings: DictConfig, config: DictConfig) -> None:
    """One sentence for settings that cannot work, before anything runs."""
    for name in ("n_trials", "n_jobs", "repeats"):
        if getattr(sweeper, name) < 1:
            raise SweepError(
                f"error: hydra.sweeper.{name} must be at least 1, got {getattr(sweeper, name)}."
            )
    pruning = (settings.get("pruner") or "none") != "none"
    if pruning and sweeper.repeats > 1:
        raise SweepError(
            "error: hydra.sweeper.pruner and hydra.sweeper.repeats > 1 do not go together (each "
            "seed would report to the same trial): choose one."
        )
    in_process = "BasicLauncher" in str(config.hydra.launcher.get("_target_", ""))
    if pruning and sweeper.storage is None and not in_process:
        raise SweepError(
            "error: pruning with this launcher runs the jobs in other processes, which cannot "
            "reach an in-memory study: set hydra.sweeper.storage (e.g. journal:optuna.log)."
        )


def _sampler(sweeper: OptunaSweeper, config: DictConfig) -> Any:
    """A seeded sampler samples trial k with seed + k (_storage.PerTrialSeed)."""
    sampler_cfg = OmegaConf.select(config, "hydra.sweeper.sampler")
    if sampler_cfg is None or sampler_cfg.get("seed") is None:
        return sweeper.sampler
    return PerTrialSeed(lambda seed: instantiate(sampler_cfg, seed=seed), int(sampler_cfg.seed))


def _pruning(pruner: optuna.pruners.BasePruner) -> bool:
    return not isinstance(pruner, optuna.pruners.NopPruner)


class Loop:
    """Asks for trials, runs each as its jobs, tells Optuna their value."""

    def __init__(self, sweeper: OptunaSweeper, study: optuna.Study, jobs: SweepJobs,
                 fixed: list[str], space: dict[str, SearchParam], metric: str | None,
                 heartbeat: Heartbeat | None, pruning: bool) -> None:  # fmt: skip
        self.sweeper, self.study, self.jobs = sweeper, study, jobs
        self.fixed, self.space, self.metric = fixed, space, metric
        self.heartbeat, self.pruning = heartbeat, pruning
        self.asked = 0
        self.under_way: list[optuna.Trial] = []
        self.trial_jobs: dict[int, list[Job]] = {}  # trial number -> its jobs
        self.returns: list[Sequence[JobReturn]] = []
        base = OmegaConf.select(sweeper.config, "seed", default=None)
        self.seeds = [int(base or 0) + i for i in range(sweeper.repeats)]

    def batch(self, distributions: dict[str, Any], n: int) -> None:
        if self.heartbeat is not None:
            for number in self.heartbeat.fail_stale():
                log.warning("Trial %d: its worker stopped (no heartbeat): failed, queued again",
                            number)  # fmt: skip
        with quiet():
            trials = [self.study.ask(distributions) for _ in range(n)]
        self.under_way = trials
        self.asked += n
        batch: list[Job] = []
        for trial in trials:
            self.trial_jobs[trial.number] = [self._job(trial, i) for i in range(len(self.seeds))]
            batch += self.trial_jobs[trial.number]
        self.jobs.write_plan({"study": self.study.study_name})
        if self.heartbeat is not None:
            with self.heartbeat.beating([t.number for t in trials]):
                results = self.jobs.launch(batch)
        else:
            results = self.jobs.launch(batch)
        for trial in trials:
            self._tell(trial)
        self.under_way = []
        self.returns.append(results)

    def _job(self, trial: optuna.Trial, repeat: int) -> Job:
        overrides = [*self.fixed, *(self.space[k].override(v) for k, v in trial.params.items())]
        if len(self.seeds) > 1:
            overrides.append(f"seed={self.seeds[repeat]}")
        if self.pruning:
            LIVE[(self.study.study_name, trial.number)] = trial
            overrides += [
                f"+callbacks.optuna_pruning._target_={PRUNING_CALLBACK}",
                f"+callbacks.optuna_pruning.monitor={quote_value(self.metric or 'val/loss')}",
            ]
        job = self.jobs.add(
            original_number(self.study, trial.number) * len(self.seeds) + repeat, overrides
        )
        job.extra = [
            f"++hydra.job.env_set.{TRIAL_VARIABLE}={trial.number}",
            f"++hydra.job.env_set.{STUDY_VARIABLE}={quote_value(self.study.study_name)}",
        ]
        return job

    def _tell(self, trial: optuna.Trial) -> None:
        """The trial's value: the mean of its jobs' values; a job that failed (raised, NaN, no
        number) fails the trial; a job its pruner stopped prunes it."""
        from trainkit.checkpoints import read_metrics

        jobs = self.trial_jobs[trial.number]
        values = [_value(job) for job in jobs]
        trial.set_user_attr("jobs", [job.folder.name for job in jobs])
        LIVE.pop((self.study.study_name, trial.number), None)
        label = (
            f"Trial {trial.number} (job{'s' if len(jobs) > 1 else ''} "
            + ", ".join(str(job.num) for job in jobs)
            + ")"
        )
        if any(read_metrics(job.folder).get("status") == "pruned" for job in jobs):
            self.study.tell(trial, state=TrialState.PRUNED)
            log.info("%s: pruned", label)
        elif not all(math.isfinite(v) for v in values):
            self.study.tell(trial, state=TrialState.FAIL)
            log.warning("%s failed: %s", label, ", ".join(job.error for job in jobs if job.error))
        else:
            if len(values) > 1:
                trial.set_user_attr("values", values)
            value = statistics.fmean(values)
            self.study.tell(trial, value)
            log.info("%s: %s = %s", label, self.metric or "value", value)

    def give_back(self) -> None:
        """Trials asked for but not told (the sweep was stopped): FAIL, and on a storage queued
        again, so that a resumed sweep (or another worker) runs them."""
        for trial in self.under_way:
            with quiet():
                frozen = self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            if self.heartbeat is not None and frozen.state == TrialState.FAIL:
                self.heartbeat.requeue(trial.number)
        self.under_way = []

    def finish(self, sweep_dir: Path, direction: str) -> list[Sequence[JobReturn]]:
        results_path = sweep_dir / RESULTS_FILE
        summary = summarize(self.study, self.space, self.trial_jobs, direction, self.metric)
        results_path.write_text(dump(summary))
        if summary["n_complete"] == 0:
            message = f"All {summary['n_trials']} trials failed; see {results_path} and job logs"
            log.error(message)
            # the report of the failed jobs first (trainkit's SweepReport ends the process)
            self.sweeper.hydra_context.callbacks.on_multirun_end(config=self.sweeper.config)
            raise SweepError(message)
        job = summary["best_job"]
        log.info(
            "Best trial %d (%s): %s = %s with %s",
            summary["best_trial"],
            f"job {job}" if job is not None else "from an earlier sweep of this study",
            self.metric or "value",
            summary["best_value"],
            " ".join(summary["best_overrides"]) or "no parameters",
        )
        log.info("Results: %s", results_path)
        return self.returns


def _value(job: Job) -> float:
    """What the job returned, as a number; NaN (with job.error) when it raised or gave none."""
    assert job.result is not None
    try:
        raw = job.result.return_value  # re-raises the job's exception
    except Exception as err:
        log.error("Job %d failed: %r", job.num, err, exc_info=err)
        job.error = f"job {job.num} raised {type(err).__name__}: {err}"
        return math.nan
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if math.isnan(value):
        job.error = f"job {job.num} returned {raw!r}"
    return value


def _as_text(value: Any) -> str:
    """A `params` entry as override text: strings are Hydra syntax already, YAML lists/numbers
    (e.g. `model.channels: [32, 64]`) are encoded."""
    if isinstance(value, str):
        return value
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value)
    return Transformer.str(value)
