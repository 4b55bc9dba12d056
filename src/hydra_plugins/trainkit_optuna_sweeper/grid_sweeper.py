"""`hydra/sweeper=grid`: Hydra's basic sweeper (every combination of the swept values), made
resumable; trainkit's default sweeper (conf/hydra/default.yaml).

The same command again into the same sweep folder (`hydra.sweep.dir=<earlier sweep>`) skips the
jobs that finished, resumes the interrupted ones from their last.ckpt, runs the failed ones again
and starts the rest (see _jobs.py). SIGTERM or Ctrl-C stops the sweep wherever it lands, with
exit code 143 or 130 (1 when Ctrl-C lands in a fit, as for a single run); the jobs not started
stay unstarted for the resume. `hydra/sweeper=basic` is Hydra's own, without any of this.

Like optuna_sweeper.py, this module imports nothing heavy: Hydra imports it at every start.
"""

from dataclasses import dataclass
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.trainkit_optuna_sweeper.grid_sweeper.GridSweeper"
    max_batch_size: int | None = None  # jobs per launch (null: all at once)
    params: dict[str, str] | None = None  # key: Hydra sweep syntax, as on the command line


ConfigStore.instance().store(
    group="hydra/sweeper", name="grid", node=GridSweeperConf, provider="trainkit"
)


class GridSweeper(BasicSweeper):
    """BasicSweeper whose jobs go through _jobs.SweepJobs (skip, resume, lock, plan file)."""

    def sweep(self, arguments: list[str]) -> Any:
        import logging

        from ._jobs import SweepError, SweepJobs
        from ._signals import stop_on_sigterm

        assert self.config is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        (every,) = self.split_arguments(overrides, None)
        size = self.max_batch_size or len(every)
        jobs = SweepJobs(self.config, self.hydra_context, self.launcher, lock=True)
        returns = []
        with stop_on_sigterm():
            try:
                planned = [jobs.add(num, job) for num, job in enumerate(every)]
                jobs.planned = len(planned)
                jobs.write_plan()
                for start in range(0, len(planned), size):
                    results = jobs.launch(planned[start : start + size])
                    for result in results:
                        _ = result.return_value  # re-raises a job's exception, as Hydra's does
                    returns.append(results)
            except (KeyboardInterrupt, SystemExit) as err:
                if not isinstance(err, SweepError):
                    jobs.interrupted(err)
                raise
            finally:
                jobs.release()
        logging.getLogger(__name__).info("sweep done: %s", jobs.summary())
        return returns
