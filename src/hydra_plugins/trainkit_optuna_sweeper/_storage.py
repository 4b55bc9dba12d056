"""Where an Optuna study lives and what keeps several workers on it honest.

- `storage`: null (in memory), `journal:<path>` (Optuna's journal file, for workers on one
  machine or a shared file system) or any SQLAlchemy URL (sqlite for one process; postgresql,
  mysql for many).
- Heartbeats: while a trial runs, its worker records the time in the trial (a system attribute,
  every `heartbeat_interval` seconds). Before asking for trials, a worker fails the study's
  running trials whose heartbeat is older than `grace_period` (their worker was killed) and
  re-queues each with Optuna's RetryHeartbeatStaleTrialCallback, which keeps the original's
  number; the retry then runs in the original's job folder, resuming its last.ckpt when that
  folder is this sweep's. Optuna's own heartbeat exists for RDB storages only and runs inside
  `study.optimize`, not ask/tell; this one works the same way on both storages.
- Seeds: a seeded sampler samples trial k with seed + k (`PerTrialSeed`): a sweep repeats its
  trials, a resumed study gets new ones, and workers started with the same command do not ask
  for the same parameters.
- Pruning: the job's callback (trainkit.pruning.OptunaPruning) finds its trial with
  `trial_of_this_job`: in this process (in-memory study, basic launcher), or through the storage.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage, JournalStorage, RDBStorage

try:  # the name since Optuna 5
    from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry
except ImportError:  # Optuna 4
    from optuna.storages import RetryFailedTrialCallback as Retry
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

# a trial another worker finished first: Optuna 4.0 raises a plain RuntimeError, later releases
# this subclass of it
FINISHED = getattr(optuna.exceptions, "UpdateFinishedTrialError", RuntimeError)
HEARTBEAT = "trainkit:heartbeat"
TRIAL_VARIABLE = "TRAINKIT_OPTUNA_TRIAL"  # the job's trial number (hydra.job.env_set)
STUDY_VARIABLE = "TRAINKIT_OPTUNA_STUDY"  # the study's name
LIVE: dict[tuple[str, int], optuna.Trial] = {}  # (study, number) -> trial, in this process

quiet = warnings.catch_warnings  # Optuna marks the heartbeat helpers experimental


def make_storage(spec: str | None) -> BaseStorage | None:
    """The storage `hydra.sweeper.storage` names (see the module docstring)."""
    if spec is None:
        return None
    if spec.startswith("journal:"):
        path = Path(spec.removeprefix("journal:"))
        if not path.name:
            raise ValueError("journal: needs a file, e.g. hydra.sweeper.storage=journal:optuna.log")
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    return RDBStorage(spec)


def make_pruner(sweeper: Any) -> optuna.pruners.BasePruner:
    """`hydra.sweeper.pruner`: none, median, hyperband (settings in hydra.sweeper.pruners.<name>)
    or a `_target_` dict of any Optuna pruner."""
    from hydra.utils import instantiate

    choice = sweeper.get("pruner") or "none"
    if isinstance(choice, str):
        named = dict(sweeper.get("pruners") or {})
        if choice == "none":
            return optuna.pruners.NopPruner()
        if choice not in named:
            raise ValueError(
                f"{choice} is not one of none, {', '.join(named)} (or give a dict with the "
                "_target_ of an Optuna pruner)."
            )
        choice = named[choice]
    return instantiate(choice)


class PerTrialSeed(BaseSampler):
    """The configured sampler, made anew for each trial with seed + the trial's number."""

    def __init__(self, make: Callable[[int], BaseSampler], seed: int) -> None:
        self._make, self._seed = make, seed
        self.sampler = make(seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.sampler = self._make(self._seed + trial.number)
        self.sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> Any:
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, space: Any) -> Any:
        return self.sampler.sample_relative(study, trial, space)

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:  # noqa: ANN001
        return self.sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:  # noqa: ANN001
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()


class Heartbeat:
    """Heartbeats of this worker's running trials, and the re-queue of a dead worker's."""

    def __init__(self, study: optuna.Study, storage: BaseStorage, interval: float, grace: float,
                 max_retry: int | None) -> None:  # fmt: skip
        self.study, self.storage = study, storage
        self.interval, self.grace = interval, grace
        self.retry = Retry(max_retry=max_retry)
        self.study_id = storage.get_study_id_from_name(study.study_name)

    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def fail_stale(self) -> list[int]:
        """Fail and re-queue the running trials whose worker stopped beating; their numbers."""
        now, failed = time.time(), []
        for trial in self.storage.get_all_trials(self.study_id, states=(TrialState.RUNNING,)):
            start = trial.datetime_start.timestamp() if trial.datetime_start else now
            if now - float(trial.system_attrs.get(HEARTBEAT, start)) > self.grace:
                with contextlib.suppress(FINISHED):
                    if self.storage.set_trial_state_values(
                        self.trial_id(trial.number), TrialState.FAIL
                    ):
                        self.requeue(trial.number)
                        failed.append(trial.number)
        return failed

    def requeue(self, number: int) -> None:
        """A copy of trial `number` (same parameters, its original's number) waits for a worker."""
        with quiet():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry(self.study, self.storage.get_trial(self.trial_id(number)))

    @contextlib.contextmanager
    def beating(self, numbers: list[int]) -> Iterator[None]:
        """Record the heartbeat of these trials every `interval` seconds while they run."""
        ids = [self.trial_id(n) for n in numbers]
        stop = threading.Event()

        def beat() -> None:
            while True:
                for trial_id in ids:
                    with contextlib.suppress(Exception):  # a trial told meanwhile
                        self.storage.set_trial_system_attr(trial_id, HEARTBEAT, time.time())
                if stop.wait(self.interval):
                    return

        thread = threading.Thread(target=beat, daemon=True, name="trainkit-optuna-heartbeat")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def original_number(study: optuna.Study, number: int) -> int:
    """The number of the trial that trial `number` retries (Optuna keeps it), else `number`."""
    frozen = study.get_trials(deepcopy=False)[number]  # a study's trials are numbered 0, 1, ...
    original = frozen.system_attrs.get("failed_trial")
    return number if original is None else int(original)


def trial_of_this_job(sweeper: Any) -> optuna.Trial | None:
    """The trial the running job belongs to (its number and study come through the job's
    environment, see _sweep.job_environment), or None outside an Optuna sweep."""
    number, study_name = os.environ.get(TRIAL_VARIABLE), os.environ.get(STUDY_VARIABLE)
    if number is None or study_name is None:
        return None
    live = LIVE.get((study_name, int(number)))
    if live is not None:
        return live
    storage = make_storage(sweeper.get("storage"))
    if storage is None:
        raise RuntimeError(
            "pruning with an in-memory study needs the jobs in the sweep's process: use "
            "hydra/launcher=basic, or a storage (hydra.sweeper.storage=journal:<file>)"
        )
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=make_pruner(sweeper))
    study_id = storage.get_study_id_from_name(study_name)
    return optuna.Trial(
        study, storage.get_trial_id_from_study_id_trial_number(study_id, int(number))
    )
