"""Hydra callbacks: at the end of a multirun, write the sweep report into the sweep folder."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("trainkit")


class SweepReport(Callback):
    """report.md, report.csv and heatmap.png / line.png in hydra.sweep.dir after every sweep;
    then exit 1 if any job failed (the basic launcher goes on after a failed job, see
    trainkit.cli.run_job, so that the others still run and the report covers them all)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from trainkit.reports import sweep_report
        from trainkit.run_files import fmt

        try:
            report = sweep_report(config.hydra.sweep.dir)
        except Exception as err:  # a report problem must not hide the sweep's own result
            log.warning("no sweep report: %s", err)
            return
        best = report["best"]
        if best:
            log.info("best job %s: %s = %s", best["job"], report["metric"], fmt(best["value"]))
        log.info("sweep report: %s", ", ".join(report["files"]))
        failed = [j["job"] for j in report["jobs"] if j["status"] != "ok"]
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
    """Create the run (or sweep) directory before Hydra does, to turn an unwritable log folder
    (or, for a sweep, a launcher this machine cannot run) into one sentence instead of Hydra's
    traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _make_dir(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from trainkit.mistakes import launcher_problem

        problem = launcher_problem(config)  # e.g. the SLURM launcher off a cluster
        if problem:
            sys.exit(f"error: {problem}")
        _make_dir(config.hydra.sweep.dir)


def _make_dir(path: str) -> None:
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        probe = Path(path) / ".trainkit-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        sys.exit(
            f"error: cannot write the run directory {path} ({err.strerror or err}); set "
            "paths.log_dir (or TRAINKIT_LOG_DIR) to a writable folder."
        )
