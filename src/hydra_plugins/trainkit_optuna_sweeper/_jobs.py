"""The jobs of a sweep, launched so that the sweep can be stopped and resumed (both sweepers).

Each job runs in `<sweep dir>/<num>_<swept values>`: the folder name is worked out here, in the
sweep's own process, and handed to the launcher (`hydra.sweep.subdir=...`), so that jobs run by
joblib or submitit get the same one. Before launching, each job's folder says what to do:

- finished (`metrics.json` status ok or pruned): not run again, its files untouched; the sweeper
  gets the objective it recorded (trainkit.reports.objective, the rule of optimized_value);
- interrupted (a `checkpoints/last.ckpt` to go on from): run, and the job resumes from it in its
  own folder (trainkit.cli.run_job);
- failed (or died before leaving a last.ckpt): moved to `<sweep dir>/earlier_attempts/` and run
  again;
- not started: run.

`sweep_jobs.yaml` in the sweep folder lists every job planned, so that the report also shows the
jobs that never started. The sweep folder is locked while a sweep runs in it (two sweeps must not
write the same job folders), and SIGTERM stops the sweep wherever it lands (_signals.py).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict

from trainkit.command_line import quote_value
from trainkit.run_dirs import FolderInUse, Lock, fresh_folder, job_state, lock_folder

from ._signals import SweepInterrupted

log = logging.getLogger(__name__)

PLAN_FILE = "sweep_jobs.yaml"
EARLIER = "earlier_attempts"


class SweepError(SystemExit):
    """A sweep that cannot start or go on: its message alone on stderr, exit code 1 (Hydra would
    add a line about HYDRA_FULL_ERROR to an exception of its own)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


@dataclass
class Job:
    num: int
    overrides: list[str]  # the job's own overrides, as `python train.py <these>` takes them
    folder: Path = field(default_factory=Path)
    state: str = "new"  # trainkit.run_dirs.job_state, then what happened: skipped, ...
    result: JobReturn | None = None
    extra: list[str] = field(default_factory=list)  # Hydra overrides for the launch only
    error: str = ""  # why it gave no value (the Optuna sweeper's log)


class SweepJobs:
    """Launches jobs through the sweep's launcher (see the module docstring)."""

    def __init__(
        self, config: DictConfig, hydra_context: HydraContext, launcher: Any, lock: bool
    ) -> None:
        self.config, self.hydra_context, self.launcher = config, hydra_context, launcher
        self.sweep_dir = self._claim_sweep_dir(lock)
        self.metric = OmegaConf.select(config, "optimized_metric", default=None)
        self.jobs: dict[int, Job] = {}
        self.planned = 0  # jobs the sweep means to run (Optuna: trials x repeats)

    def _claim_sweep_dir(self, lock: bool) -> Path:
        """The sweep folder: a new one for a dated default (another sweep started in the same
        microsecond gets `_1`), else the given one, e.g. an earlier sweep to resume."""
        raw = OmegaConf.to_container(self.config.hydra.sweep, resolve=False)["dir"]
        path = Path(str(self.config.hydra.sweep.dir))
        try:
            if "${now:" in str(raw):
                path = fresh_folder(path)
            else:
                path.mkdir(parents=True, exist_ok=True)
            self.lock: Lock | None = lock_folder(path, "sweep", "hydra.sweep.dir") if lock else None
        except (FolderInUse, OSError) as err:
            raise SweepError(f"error: {err}") from None
        with open_dict(self.config):
            self.config.hydra.sweep.dir = str(path)
        self.resumed = (path / PLAN_FILE).is_file()  # an earlier sweep ran here
        OmegaConf.save(self.config, path / "multirun.yaml")
        return path

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    # -- folders ---------------------------------------------------------------------------
    def add(self, num: int, overrides: Sequence[str]) -> Job:
        """A job of this sweep, with its folder; an earlier sweep's job `num` in the same folder
        must have been the same job."""
        job = Job(num, list(overrides))
        job_config = self._job_config(num, job.overrides)
        job.folder = self.sweep_dir / self._subdir(job_config)
        for other in self.sweep_dir.glob(f"{num}_*"):
            if other.is_dir() and other != job.folder and (other / ".hydra").is_dir():
                raise SweepError(
                    f"error: {self.sweep_dir} holds another sweep: its job {num} is "
                    f"{other.name}, this sweep's is {job.folder.name}. Resume a sweep with the "
                    "same command (and sampler seed), or give a new hydra.sweep.dir."
                )
        job.state = job_state(job.folder)
        if job.state == "interrupted" and _training_finished(job.folder, job_config):
            job.state = "failed"  # stopped while testing: a resume would train nothing
        self.jobs[num] = job
        return job

    def _job_config(self, num: int, overrides: list[str]) -> DictConfig:
        """The config job `num` runs with, composed as Hydra's launchers compose it."""
        loader = self.hydra_context.config_loader
        job_config = loader.load_sweep_config(self.config, [*overrides, *self._placement()])
        with open_dict(job_config):
            job_config.hydra.job.num = num
            job_config.hydra.job.id = num
        return job_config

    @staticmethod
    def _subdir(job_config: DictConfig) -> str:
        """hydra.sweep.subdir of the job, resolved as Hydra's run_job resolves it."""
        hydra_config = HydraConfig.instance()
        previous = hydra_config.cfg
        hydra_config.set_config(job_config)
        try:
            return str(OmegaConf.select(job_config, "hydra.sweep.subdir"))
        finally:
            hydra_config.cfg = previous

    def _placement(self) -> list[str]:
        return [f"hydra.sweep.dir={quote_value(str(self.sweep_dir))}"]

    def write_plan(self, extra: dict[str, Any] | None = None) -> None:
        """sweep_jobs.yaml: every job planned so far (number, folder, overrides)."""
        plan = {
            "planned": max(self.planned, len(self.jobs)),
            **(extra or {}),
            "jobs": [
                {"job": j.num, "folder": j.folder.name, "overrides": j.overrides}
                for j in sorted(self.jobs.values(), key=lambda j: j.num)
            ],
        }
        tmp = self.sweep_dir / f"{PLAN_FILE}.tmp-{os.getpid()}"
        tmp.write_text(yaml.safe_dump(plan, sort_keys=False))
        os.replace(tmp, self.sweep_dir / PLAN_FILE)

    # -- launching ---------------------------------------------------------------------------
    def launch(self, jobs: list[Job]) -> list[JobReturn]:
        """Run `jobs` (skipping the finished ones); their results in the same order."""
        to_run = []
        for job in jobs:
            if job.state == "done":
                job.result = self._recorded(job)
                job.state = "skipped"
                log.info(
                    "job %d (%s): finished in an earlier run: skipped", job.num, job.folder.name
                )
                continue
            if job.state == "failed":
                self._move_aside(job)
            elif job.state == "interrupted":
                log.info(
                    "job %d (%s): interrupted in an earlier run: resumes from its last.ckpt",
                    job.num,
                    job.folder.name,
                )
            elif self.resumed:
                log.info(
                    "job %d (%s): not started in an earlier run: runs", job.num, job.folder.name
                )
            job.state = {"interrupted": "resumed", "failed": "rerun"}.get(job.state, "run")
            to_run.append(job)
        # the launcher numbers a call's jobs initial_job_idx, +1, ...: one call per run of
        # consecutive numbers
        for segment in _consecutive(to_run):
            batch = [
                [
                    *j.overrides,
                    *j.extra,
                    *self._placement(),
                    f"hydra.sweep.subdir={quote_value(j.folder.name)}",
                ]
                for j in segment
            ]
            results = self.launcher.launch(batch, initial_job_idx=segment[0].num)
            for job, result in zip(segment, results, strict=True):
                job.result = result
        return [job.result for job in jobs]  # type: ignore[misc]

    def _recorded(self, job: Job) -> JobReturn:
        """The return value the job gave when it ran: its objective from metrics.json."""
        from trainkit.reports import objective
        from trainkit.run_files import load_job

        recorded = load_job(job.folder)
        metric = self.metric or recorded.get("optimized_metric") or "val/loss"
        result = JobReturn(
            overrides=job.overrides,
            working_dir=os.getcwd(),
            task_name=str(self.config.hydra.job.name),
            status=JobStatus.COMPLETED,
        )
        result.return_value = objective({**recorded, "status": "ok"}, metric)
        return result

    def _move_aside(self, job: Job) -> None:
        """A failed attempt's files go to earlier_attempts/, so that the new attempt starts in
        an empty folder (no old curves or checkpoints mixed in)."""
        from trainkit.checkpoints import read_metrics

        metrics = read_metrics(job.folder)
        error = metrics.get("error") or (
            "its training had finished, it was stopped while testing"
            if (job.folder / "checkpoints" / "last.ckpt").is_file()
            else "it left no metrics.json and no last.ckpt"
        )
        target = fresh_folder(self.sweep_dir / EARLIER / job.folder.name)
        target.rmdir()
        os.replace(job.folder, target)
        log.info(
            "job %d (%s): did not finish in an earlier run (%s): runs again; that attempt is in %s",
            job.num,
            job.folder.name,
            " ".join(str(error).split())[:200],
            target.relative_to(self.sweep_dir),
        )

    def summary(self) -> str:
        """ "2 skipped (finished earlier), 1 resumed, 1 rerun, 3 run" for the end of a sweep."""
        states = [j.state for j in self.jobs.values()]
        words = {
            "skipped": "skipped (finished earlier)",
            "resumed": "resumed",
            "rerun": "run again",
        }
        parts = [f"{states.count(s)} {w}" for s, w in words.items() if s in states]
        return ", ".join([*parts, f"{states.count('run')} run"])

    def resume_command(self) -> str:
        """This command again, into this sweep folder."""
        args = [a for a in sys.argv[1:] if not re.match(r"^hydra\.sweep\.dir=", a)]
        return shlex.join(["python", sys.argv[0], *args, f"hydra.sweep.dir={self.sweep_dir}"])

    def interrupted(self, err: BaseException) -> None:
        """The sweep was stopped (Ctrl-C, SIGTERM): say what ran and how to go on, and let the
        app's callbacks write their report of it (trainkit's SweepReport)."""
        started = {n for n, j in self.jobs.items() if j.result is not None or j.folder.is_dir()}
        log.error(
            "sweep interrupted (%s): %d of %d jobs started; resume with:\n  %s",
            "SIGTERM" if isinstance(err, SweepInterrupted) or _code(err) == 143 else "Ctrl-C",
            len(started),
            max(self.planned, len(self.jobs)),
            self.resume_command(),
        )
        self.hydra_context.callbacks.on_multirun_end(config=self.config, interrupted=True)


def _training_finished(folder: Path, job_config: DictConfig) -> bool:
    """Whether the job's last.ckpt holds its whole training (it was stopped while testing), or
    cannot be read: then it runs again rather than resuming."""
    from trainkit.checkpoints import check_not_finished, read_checkpoint
    from trainkit.errors import ConfigError

    trainer = OmegaConf.select(job_config, "trainer")
    path = str(folder / "checkpoints" / "last.ckpt")
    try:
        check_not_finished(read_checkpoint(path), path, trainer or {})
    except ConfigError:
        return True
    return False


def _code(err: BaseException) -> Any:
    return err.code if isinstance(err, SystemExit) else None


def _consecutive(jobs: list[Job]) -> Iterator[list[Job]]:
    segment: list[Job] = []
    for job in jobs:
        if segment and job.num != segment[-1].num + 1:
            yield segment
            segment = []
        segment.append(job)
    if segment:
        yield segment
