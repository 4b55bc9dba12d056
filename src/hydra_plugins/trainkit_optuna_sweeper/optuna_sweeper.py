"""The `hydra/sweeper=optuna` config and the Sweeper class Hydra instantiates from it.

Hydra imports every public module under `hydra_plugins` at each start (to find plugins), so this
one imports no Optuna: the work happens in `_sweep`, loaded only when a sweep runs. No
`from __future__ import annotations` here: the scanner runs this module before it is in
sys.modules, where @dataclass looks up string annotations (AttributeError).
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import MISSING, DictConfig


@dataclass
class TPESamplerConf:
    """Optuna's default sampler; seeded, a sweep asks for the same trials again."""

    _target_: str = "optuna.samplers.TPESampler"
    seed: Any = "${oc.select:seed,null}"  # the run's seed, when the app has one
    n_startup_trials: int = 10  # random trials before TPE starts modelling
    multivariate: bool = False
    constant_liar: bool = False  # set true with n_jobs > 1: pending trials count as bad


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Any = "${oc.select:seed,null}"


@dataclass
class OptunaSweeperConf:
    # _self_ first, so that `hydra/sweeper/sampler=random` is not overwritten by this node
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"sampler": "tpe"}])
    _target_: str = "hydra_plugins.trainkit_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    sampler: Any = MISSING
    direction: Any = "minimize"  # "minimize" or "maximize" (one objective)
    study_name: str | None = None
    # null: in memory; "sqlite:///optuna.db" (one process) or any SQLAlchemy URL; "journal:<file>"
    # (Optuna's journal file: workers on one machine or a shared file system). A kept study
    # resumes: each trial is sampled with seed + its number, so a resumed study asks new ones.
    storage: str | None = None
    n_trials: int = 20  # trials this process runs (several processes: each its n_trials)
    n_jobs: int = 1  # trials launched together (in parallel with e.g. hydra/launcher=joblib)
    repeats: int = 1  # jobs per trial, with seed, seed+1, ...: the trial's value is their mean
    # none, median or hyperband (their settings below), or {_target_: optuna.pruners.X, ...}:
    # each job reports optimized_metric after every validation; a pruned trial stops early
    pruner: Any = "none"
    pruners: dict[str, Any] = field(
        default_factory=lambda: {
            "median": {
                "_target_": "optuna.pruners.MedianPruner",
                "n_startup_trials": 5,  # trials that finish before any is pruned
                "n_warmup_steps": 1,  # validations of a trial before it may be pruned
            },
            "hyperband": {
                "_target_": "optuna.pruners.HyperbandPruner",
                "min_resource": 1,  # validations
                "max_resource": "auto",
                "reduction_factor": 3,
            },
        }
    )
    # a storage's running trials record a heartbeat; a trial silent for grace_period seconds
    # (its worker was killed) is failed and queued again, at most max_retry times
    heartbeat_interval: float = 60.0
    grace_period: float = 180.0
    max_retry: int = 2
    params: dict[str, Any] = field(default_factory=dict)  # key: Hydra sweep syntax


_store = ConfigStore.instance()
_store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="trainkit")
_store.store(group="hydra/sweeper/sampler", name="tpe", node=TPESamplerConf, provider="trainkit")
_store.store(
    group="hydra/sweeper/sampler", name="random", node=RandomSamplerConf, provider="trainkit"
)


class OptunaSweeper(Sweeper):
    """Asks Optuna for `n_jobs` trials at a time, runs them as Hydra jobs through the configured
    launcher, tells Optuna each trial's value (a failed or NaN job as FAIL, a pruned one as
    PRUNED). See _sweep.py (the loop), _jobs.py (resuming), _storage.py (workers, pruning)."""

    def __init__(
        self,
        sampler: Any,
        direction: Any,
        study_name: str | None,
        storage: str | None,
        n_trials: int,
        n_jobs: int,
        params: DictConfig | dict[str, Any] | None,
        repeats: int = 1,
        **more: Any,  # pruner, heartbeat, ...: read from the config by _sweep
    ) -> None:
        if not isinstance(direction, str) or direction not in ("minimize", "maximize"):
            raise ValueError(
                f"hydra.sweeper.direction must be 'minimize' or 'maximize', got {direction!r} "
                "(multi-objective studies are not supported)"
            )
        self.sampler = sampler
        self.direction = direction
        self.study_name = study_name
        self.storage = storage
        self.n_trials = n_trials  # checked in sweep(), where a bad value is one sentence
        self.n_jobs = n_jobs
        self.repeats = repeats
        self.params = dict(params or {})
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from ._sweep import run_sweep

        return run_sweep(self, arguments)
