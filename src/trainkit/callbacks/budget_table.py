"""The budget table: at the start of fit, what the run is going to do (samples -> iterations ->
optimizer steps -> epochs -> validations, see trainkit.budget); at the end, what it did beside
the plan, flagging any difference. Printed, written to the run's log and to TensorBoard (Text)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, Timer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.data import extract_batch_size

from trainkit.budget import STREAMING, Plan, plan
from trainkit.data_contract import train_data

log = logging.getLogger(__name__)


def plan_from_trainer(trainer: L.Trainer, dm: L.LightningDataModule | None = None) -> Plan:
    """The plan of this Trainer's fit, read from its (fast_dev_run-adjusted) settings and the
    DataModule's training data (trainkit.data_contract.train_data: any DataModule). Raises
    ConfigError for a run Lightning would refuse, or one that would not do what it is asked."""
    dm = dm if dm is not None else trainer.datamodule
    if dm is None:
        raise TypeError("the budget needs the DataModule the run trains on")
    data = train_data(dm)
    return plan(
        train_samples=data.samples,
        batch_size=data.batch_size,
        batches=data.batches,
        drop_last=data.drop_last,
        world_size=trainer.world_size,
        limit_train_batches=trainer.limit_train_batches,
        accumulate_grad_batches=trainer.accumulate_grad_batches,
        max_epochs=trainer.max_epochs,
        max_steps=trainer.max_steps,
        val_check_interval=trainer.val_check_interval,
        check_val_every_n_epoch=trainer.check_val_every_n_epoch,
        validation_enabled=(trainer.overfit_batches > 0 or data.has_val)
        and trainer.limit_val_batches != 0,
        log_every_n_steps=trainer.log_every_n_steps,
        samples_from="training split" if data.source == "the DataModule" else "len(train dataset)",
    )


def actual_counts(trainer: L.Trainer, validations: int | None) -> dict[str, int | None]:
    """Epochs, iterations and optimizer steps done (resumed runs included), and validations."""
    loop = trainer.fit_loop
    return {
        "epochs": loop.epoch_progress.current.completed,
        "iterations": loop.epoch_loop.batch_progress.total.completed,
        "optimizer_steps": trainer.global_step,
        "validations": validations,
    }


class BudgetTable(Callback):
    """Counts validations and training samples itself (Lightning has no counter for them)."""

    def __init__(self) -> None:
        self.plan: Plan | None = None
        self.validations = 0
        self.samples_seen = 0  # by this process, in this fit (for samples/s)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.plan = plan_from_trainer(trainer)
        self.samples_seen = 0
        table = format_table(plan_rows(self.plan), ("quantity", "plan", "how"))
        if trainer.is_global_zero:
            log.info("Training budget\n%s", table)
        _log_text(trainer, "budget/plan", table)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        planned = self.plan.iterations_per_epoch if self.plan else None
        if planned is not None and trainer.num_training_batches != planned:
            log.warning(
                "budget: the plan has %d iterations per epoch but the train loader gives %d",
                self.plan.iterations_per_epoch,
                trainer.num_training_batches,
            )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.samples_seen += extract_batch_size(batch)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validations += 1

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.plan is None:
            return
        actual = actual_counts(trainer, self.validations)
        planned = {
            "epochs": self.plan.epochs,
            "iterations": self.plan.iterations,
            "optimizer steps": self.plan.optimizer_steps,
            "validations": self.plan.validations,
        }
        short = any(
            want is not None and actual[name.replace(" ", "_")] < want
            for name, want in planned.items()
        )
        reason = stop_reason(trainer) if short else ""
        rows = []
        for name, want in planned.items():
            got = actual[name.replace(" ", "_")]
            flag = "ok" if want is None or want == got else ("stopped" if reason else "MISMATCH")
            rows.append((name, count_text(want, self.plan), f"{got:,}", flag))
        table = format_table(rows, ("quantity", "plan", "actual", ""))
        if trainer.is_global_zero:
            log.info(
                "Training budget: plan vs actual%s\n%s", f" ({reason})" if reason else "", table
            )
            if any(r[3] == "MISMATCH" for r in rows):
                log.warning("budget: the run did not do what was planned (MISMATCH above)")
        _log_text(trainer, "budget/actual", table + (f"\n\n{reason}" if reason else ""))

    def state_dict(self) -> dict[str, Any]:
        return {"validations": self.validations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.validations = state_dict.get("validations", 0)


def _log_text(trainer: L.Trainer, tag: str, table: str) -> None:
    """The table in TensorBoard's Text tab, at the iteration it describes (as every curve)."""
    iteration = trainer.fit_loop.epoch_loop.batch_progress.total.completed
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger) and trainer.is_global_zero:
            logger.experiment.add_text(tag, table, global_step=iteration)


def stop_reason(trainer: L.Trainer) -> str:
    """Why a run ended before its plan, when we know."""
    if trainer.interrupted:
        return "interrupted"
    for cb in trainer.callbacks:
        if isinstance(cb, EarlyStopping) and cb.stopped_epoch > 0:
            return (
                f"stopped early by EarlyStopping: no improvement of {cb.monitor} "
                f"in {cb.patience} validations"
            )
        if isinstance(cb, Timer) and (cb.time_remaining() or 0) <= 0:
            return "stopped by trainer.max_time"
    return ""


# -- the tables ---------------------------------------------------------------------------------
def count_text(x: int | None, p: Plan | None = None) -> str:
    """A planned count as the tables show it: 1,257; unbounded; or unknown (streaming)."""
    if x is None:
        return STREAMING if p is not None and p.streaming else "unbounded"
    return f"{x:,}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def plan_rows(p: Plan) -> list[tuple[str, str, str]]:
    """(quantity, value, how it was computed) rows of the plan table."""
    if p.samples_per_device is not None and p.world_size > 1:
        samples_how = (
            f"ceil({p.train_samples:,} / {p.world_size} devices) = {p.samples_per_device:,}"
        )
    else:
        samples_how = p.samples_from if p.train_samples is not None else "a stream"
    if p.iterations_per_epoch is None:
        iters_how = "the loader has no length"
    elif p.samples_per_device is not None and p.batch_size:
        div = "floor" if p.drop_last else "ceil"
        iters_how = f"{div}({p.samples_per_device:,} / {p.batch_size})"
    else:
        iters_how = "len(train loader)"
    if p.batches_per_epoch is not None and p.iterations_per_epoch != p.batches_per_epoch:
        iters_how += f" = {p.batches_per_epoch:,}, limited by limit_train_batches"
    until = []
    if p.max_epochs != -1:
        until.append(f"max_epochs={p.max_epochs}")
    if p.max_steps != -1:
        until.append(f"max_steps={p.max_steps}")
    if p.val_mode == "off":
        val = ("validation", "off", "no val data, or limit_val_batches=0")
    else:
        where = (
            f"per epoch, every {p.check_val_every_n_epoch} epoch(s)"
            if p.val_mode == "per epoch"
            else "counted across epoch boundaries"
        )
        every = "end of each epoch" if p.val_every is None else f"{p.val_every:,} iterations"
        val = ("validation every", every, where)
    steps_how = (
        "the loader has no length"
        if p.iterations_per_epoch is None
        else f"ceil({p.iterations_per_epoch:,} / {p.accumulate_grad_batches})"
    )
    return [
        ("train samples", count_text(p.train_samples, p), samples_how),
        (
            "batch size (per device)",
            "" if p.batch_size is None else f"{p.batch_size}",
            f"drop_last={p.drop_last}" if p.batch_size is not None else "the loader's sampler",
        ),
        ("iterations per epoch", count_text(p.iterations_per_epoch, p), iters_how),
        (
            "accumulate_grad_batches",
            f"{p.accumulate_grad_batches}",
            "iterations per optimizer step",
        ),
        ("optimizer steps per epoch", count_text(p.steps_per_epoch, p), steps_how),
        ("epochs", count_text(p.epochs, p), ", ".join(until) or "no limit"),
        ("total iterations", count_text(p.iterations, p), "training batches of the whole run"),
        ("total optimizer steps", count_text(p.optimizer_steps, p), "= global_step at the end"),
        val,
        ("validations", count_text(p.validations, p), "sanity check not counted"),
        (
            "log interval",
            _count(p.log_every_n_steps, "optimizer step"),
            f"= {_count(p.log_every_n_steps * p.accumulate_grad_batches, 'iteration')}",
        ),
    ]


def format_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A plain-text table (also valid Markdown) for the console, the log file and TensorBoard."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])
