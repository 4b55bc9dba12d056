"""Hydra callbacks: at the end of a multirun, write the sweep report into the sweep folder."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write

log = logging.getLogger("trainkit")


class SweepReport(Callback):
    """report.md, report.csv and heatmap.png / line.png in hydra.sweep.dir after every sweep;
    then exit 1 if any job failed (the basic launcher goes on after a failed job, see
    trainkit.cli.run_job, so that the others still run and the report covers them all).

    A sweep that was stopped (trainkit's sweepers call this with `interrupted=True`, then end
    the process with the interrupt's exit code) gets its report too, jobs not started included.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra_plugins.trainkit_optuna_sweeper._signals import stop_on_sigterm
        from trainkit.reports import sweep_report
        from trainkit.run_files import fmt

        try:
            with stop_on_sigterm():  # SIGTERM while the report is written: exit 143 too
                report = sweep_report(config.hydra.sweep.dir)
        except Exception as err:  # a report problem must not hide the sweep's own result
            log.warning("no sweep report: %s", err)
            return
        best = report["best"]
        if best:
            log.info("best job %s: %s = %s", best["job"], report["metric"], fmt(best["value"]))
        log.info("sweep report: %s", ", ".join(report["files"]))
        if kwargs.get("interrupted"):
            return  # the sweep ends with the interrupt's own exit code
        failed = [j["job"] for j in report["jobs"] if j["status"] not in ("ok", "pruned")]
        if failed:  # every job ran and the report is written: now the sweep's own verdict
            log.error(
                "%d of %d jobs did not finish ok (%s): see %s",
                len(failed),
                len(report["jobs"]),
                ", ".join(failed),
                report["files"][0],
            )
            sys.exit(1)


class CheckOutputDir(Callback):
    """Claim the run directory before Hydra writes into it (trainkit.run_dirs): a new dated
    folder, or a given one that holds no other run; an unwritable log folder, a full disk, a
    folder in use or, for a sweep, a launcher this machine cannot run (SLURM off a cluster) is
    one sentence and exit 1 instead of Hydra's traceback or a silently mixed run. (A sweep's
    folder is claimed by trainkit's sweepers, which know whether it is resumed.)"""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from trainkit.run_dirs import FolderInUse, claim_run_folder, secondary_process

        if secondary_process():  # a DDP worker, in the folder its main process claims
            # Started by torchrun or SLURM, it may get there before rank 0 does: a .hydra/ of
            # its own would make rank 0 refuse the folder as one that already holds a run.
            with read_write(config.hydra):
                config.hydra.output_subdir = None
            return
        folder = Path(str(config.hydra.run.dir))
        raw = OmegaConf.to_container(config.hydra.run, resolve=False)["dir"]
        resumes = config.get("ckpt_path") if kwargs.get("config_name") == "train" else None
        try:
            claimed, _ = claim_run_folder(folder, "${now:" in str(raw), resumes)
        except FolderInUse as err:
            sys.exit(f"error: {err}")
        except OSError as err:
            _unwritable(folder, err)
        if claimed != folder:
            with read_write(config.hydra.run):
                config.hydra.run.dir = str(claimed)
        _make_dir(str(claimed))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from trainkit.mistakes import launcher_problem
        from trainkit.run_dirs import fresh_folder

        problem = launcher_problem(config)  # e.g. the SLURM launcher off a cluster
        if problem:
            sys.exit(f"error: {problem}")
        folder = Path(str(config.hydra.sweep.dir))
        if "${now:" in str(OmegaConf.to_container(config.hydra.sweep, resolve=False)["dir"]):
            try:  # a dated sweep folder is new: another sweep of the same microsecond gets _1
                folder = fresh_folder(folder)
            except OSError as err:
                _unwritable(folder, err)
            with read_write(config.hydra.sweep):
                config.hydra.sweep.dir = str(folder)
        _make_dir(str(folder))


# below this, a run cannot even write its config, log and first curves: say so before it starts
MIN_FREE_BYTES = 1 << 20


def _make_dir(path: str) -> None:
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        probe = Path(path) / ".trainkit-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        _unwritable(Path(path), err)
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        sys.exit(
            f"error: the disk holding {path} is full ({free // 1024} KB free): free some space, "
            "or set paths.log_dir (or TRAINKIT_LOG_DIR) to a folder on another disk."
        )


def _unwritable(path: Path, err: OSError) -> None:
    sys.exit(
        f"error: cannot write the run directory {path} ({err.strerror or err}); set "
        "paths.log_dir (or TRAINKIT_LOG_DIR) to a writable folder."
    )
