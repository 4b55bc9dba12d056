"""optimization_results.yaml: the best trial of the study, then every trial of this sweep
with its job(s), state, value and parameters (`best_overrides` rerun the best one)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from ._search_space import SearchParam

if TYPE_CHECKING:
    from ._jobs import Job

RESULTS_FILE = "optimization_results.yaml"


def dump(summary: dict[str, Any]) -> str:
    return yaml.dump(summary, Dumper=_Dumper, sort_keys=False)


class _Dumper(yaml.SafeDumper):
    """Plain YAML for people: no &id001 anchors where trials share a list value."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def summarize(
    study: optuna.Study,
    space: dict[str, SearchParam],
    trial_jobs: dict[int, list[Job]],
    direction: str,
    optimized_metric: str | None,
) -> dict[str, Any]:
    """The content of optimization_results.yaml: the best trial of the study, then every trial
    of this sweep with its job(s), state, value and parameters."""
    trials = study.get_trials(deepcopy=False)
    this_sweep = [t for t in trials if t.number in trial_jobs]
    best = study.best_trial if any(t.state == TrialState.COMPLETE for t in trials) else None

    def job_of(trial: FrozenTrial) -> int | None:
        jobs = trial_jobs.get(trial.number)
        return jobs[0].num if jobs else None

    def entry(t: FrozenTrial) -> dict[str, Any]:
        item = {"number": t.number, "job": job_of(t), "state": t.state.name, "value": t.value}
        if len(trial_jobs[t.number]) > 1:  # repeats: every seed's job and value
            item["jobs"] = [job.num for job in trial_jobs[t.number]]
            item["values"] = t.user_attrs.get("values")
        return {**item, "params": _params(t, space)}

    return {
        "study_name": study.study_name,
        "direction": direction,
        "optimized_metric": optimized_metric,
        "n_trials": len(this_sweep),
        "n_complete": sum(t.state == TrialState.COMPLETE for t in this_sweep),
        "n_pruned": sum(t.state == TrialState.PRUNED for t in this_sweep),
        "n_failed": sum(t.state == TrialState.FAIL for t in this_sweep),
        "best_trial": best.number if best else None,
        "best_job": job_of(best) if best else None,
        "best_value": best.value if best else None,
        "best_params": _params(best, space) if best else None,
        "best_overrides": _overrides(best, space) if best else [],
        "trials": [entry(t) for t in this_sweep],
    }


def _params(trial: FrozenTrial, space: dict[str, SearchParam]) -> dict[str, Any]:
    return {k: space[k].config_value(v) if k in space else v for k, v in trial.params.items()}


def _overrides(trial: FrozenTrial, space: dict[str, SearchParam]) -> list[str]:
    """Command-line overrides that rerun the trial: `python train.py <these>`."""
    return [space[k].override(v) if k in space else f"{k}={v}" for k, v in trial.params.items()]
