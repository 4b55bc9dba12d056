"""Hydra callbacks: at the end of a multirun, write the sweep report into the sweep folder."""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("trainkit")


class SweepReport(Callback):
    """report.md, report.csv and heatmap.png / line.png in hydra.sweep.dir after every sweep."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from trainkit.reports import fmt, sweep_report

        try:
            report = sweep_report(config.hydra.sweep.dir)
        except Exception as err:  # a report problem must not hide the sweep's own result
            log.warning("no sweep report: %s", err)
            return
        best = report["best"]
        if best:
            log.info("best job %s: %s = %s", best["job"], report["metric"], fmt(best["value"]))
        log.info("sweep report: %s", ", ".join(report["files"]))
