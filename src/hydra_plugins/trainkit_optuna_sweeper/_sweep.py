"""The ask/tell loop of the Optuna sweeper and its results file.

Loaded only when a sweep runs (the leading underscore hides it from Hydra's plugin scanner).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Transformer
from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from optuna.trial import FrozenTrial, TrialState

from ._search_space import SearchParam, split_overrides

if TYPE_CHECKING:
    from .optuna_sweeper import OptunaSweeper

log = logging.getLogger(__name__)

RESULTS_FILE = "optimization_results.yaml"


class OptunaSweepError(CompactHydraException):
    """A bad search space or a sweep without one finished trial: Hydra prints the message
    alone, not a traceback through the plugin."""


def run_sweep(sweeper: OptunaSweeper, arguments: list[str]) -> list[Sequence[JobReturn]]:
    """Run `n_trials` trials, `n_jobs` per launch; write the results file; return the jobs."""
    assert sweeper.config is not None and sweeper.hydra_context is not None
    config, launcher = sweeper.config, sweeper.launcher
    parser = OverridesParser.create(config_loader=sweeper.hydra_context.config_loader)
    lines = [f"{key}={_as_text(value)}" for key, value in sweeper.params.items()]
    try:
        fixed, space = split_overrides(parser.parse_overrides([*lines, *arguments]))
    except ValueError as err:
        raise OptunaSweepError(f"Bad Optuna search space: {err}") from err
    if not space:
        log.warning("The search space is empty: every trial runs the same config.")
    distributions = {key: param.distribution for key, param in space.items()}
    optimized_metric = OmegaConf.select(config, "optimized_metric", default=None)
    metric = optimized_metric or "value"

    study = optuna.create_study(
        study_name=sweeper.study_name,
        storage=sweeper.storage,
        sampler=sweeper.sampler,
        direction=sweeper.direction,
        load_if_exists=True,
    )
    done = len(study.trials)
    sampler_cfg = OmegaConf.select(config, "hydra.sweeper.sampler")
    if done and sampler_cfg is not None and sampler_cfg.get("seed") is not None:
        # a study resumed from its storage: seeded as at its start, the sampler would ask for
        # the trials it already has; seed + (trials so far) keeps it repeatable and new
        study.sampler = instantiate(sampler_cfg, seed=int(sampler_cfg.seed) + done)
        log.info("Resuming study %r after %d trials: sampler seed %s + %d", study.study_name,
                 done, sampler_cfg.seed, done)  # fmt: skip
    log.info(
        "Optuna study %r (%s, %s, %s), %d trials, %d per batch",
        study.study_name,
        sweeper.storage or "in memory",
        type(study.sampler).__name__,
        sweeper.direction,
        sweeper.n_trials,
        sweeper.n_jobs,
    )
    for key, param in space.items():
        log.info("  %s: %s", key, param.distribution)

    sweep_dir = Path(config.hydra.sweep.dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")

    returns: list[Sequence[JobReturn]] = []
    jobs: dict[int, int] = {}  # trial number -> job number (its directory under the sweep dir)
    job_idx = 0
    while job_idx < sweeper.n_trials:
        n_batch = min(sweeper.n_jobs, sweeper.n_trials - job_idx)
        trials = [study.ask(distributions) for _ in range(n_batch)]
        batch = [
            [*fixed, *(space[key].override(value) for key, value in trial.params.items())]
            for trial in trials
        ]
        told: set[int] = set()
        try:  # whatever happens, no trial is left RUNNING in a persistent storage
            sweeper.validate_batch_is_legal(batch)
            results = launcher.launch(batch, initial_job_idx=job_idx)
            for i, (trial, result) in enumerate(zip(trials, results, strict=True)):
                jobs[trial.number] = job_idx + i
                _tell(study, trial, result, job_idx + i, metric)
                told.add(trial.number)
        finally:
            for trial in trials:
                if trial.number not in told:
                    study.tell(trial, state=TrialState.FAIL)
        returns.append(results)
        job_idx += len(trials)

    results_path = sweep_dir / RESULTS_FILE
    summary = summarize(study, space, jobs, sweeper.direction, optimized_metric)
    results_path.write_text(yaml.dump(summary, Dumper=_Dumper, sort_keys=False))
    if summary["n_complete"] == 0:
        raise OptunaSweepError(f"All {len(jobs)} trials failed; see {results_path} and job logs")
    job = summary["best_job"]
    log.info(
        "Best trial %d (%s): %s = %s with %s",
        summary["best_trial"],
        f"job {job}" if job is not None else "from an earlier sweep of this study",
        metric,
        summary["best_value"],
        " ".join(summary["best_overrides"]) or "no parameters",
    )
    log.info("Results: %s", results_path)
    return returns


def _as_text(value: Any) -> str:
    """A `params` entry as override text: strings are Hydra syntax already, YAML lists/numbers
    (e.g. `model.channels: [32, 64]`) are encoded."""
    if isinstance(value, str):
        return value
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value)
    return Transformer.str(value)


def _tell(
    study: optuna.Study, trial: optuna.Trial, result: JobReturn, job: int, metric: str
) -> None:
    """Tell Optuna the job's value; a job that raised, returned NaN or no number is a FAIL."""
    try:
        raw = result.return_value  # re-raises the job's exception
    except Exception as err:
        log.error("Trial %d (job %d) failed: %r", trial.number, job, err, exc_info=err)
        study.tell(trial, state=TrialState.FAIL)
        return
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if math.isnan(value):
        log.warning("Trial %d (job %d) failed: it returned %r", trial.number, job, raw)
        study.tell(trial, state=TrialState.FAIL)
        return
    study.tell(trial, value)
    log.info("Trial %d (job %d): %s = %s", trial.number, job, metric, value)


class _Dumper(yaml.SafeDumper):
    """Plain YAML for people: no &id001 anchors where trials share a list value."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def summarize(
    study: optuna.Study,
    space: dict[str, SearchParam],
    jobs: dict[int, int],
    direction: str,
    optimized_metric: str | None,
) -> dict[str, Any]:
    """The content of optimization_results.yaml: the best trial of the study, then every trial
    of this sweep with its job directory, state, value and parameters."""
    trials = study.get_trials(deepcopy=False)
    this_sweep = [t for t in trials if t.number in jobs]
    best = study.best_trial if any(t.state == TrialState.COMPLETE for t in trials) else None
    return {
        "study_name": study.study_name,
        "direction": direction,
        "optimized_metric": optimized_metric,
        "n_trials": len(this_sweep),
        "n_complete": sum(t.state == TrialState.COMPLETE for t in this_sweep),
        "n_failed": sum(t.state == TrialState.FAIL for t in this_sweep),
        "best_trial": best.number if best else None,
        "best_job": jobs.get(best.number) if best else None,
        "best_value": best.value if best else None,
        "best_params": _params(best, space) if best else None,
        "best_overrides": _overrides(best, space) if best else [],
        "trials": [
            {
                "number": t.number,
                "job": jobs[t.number],
                "state": t.state.name,
                "value": t.value,
                "params": _params(t, space),
            }
            for t in this_sweep
        ],
    }


def _params(trial: FrozenTrial, space: dict[str, SearchParam]) -> dict[str, Any]:
    return {k: space[k].config_value(v) if k in space else v for k, v in trial.params.items()}


def _overrides(trial: FrozenTrial, space: dict[str, SearchParam]) -> list[str]:
    """Command-line overrides that rerun the trial: `python train.py <these>`."""
    return [space[k].override(v) if k in space else f"{k}={v}" for k, v in trial.params.items()]
