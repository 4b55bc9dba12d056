"""The arithmetic of a training run: samples -> iterations -> optimizer steps -> epochs.

Vocabulary (used in the printed table, the guides and the TensorBoard tags):

- an **iteration** is one training batch: forward, backward;
- an **optimizer step** happens every `accumulate_grad_batches` iterations, and on the last
  iteration of an epoch; Lightning's `global_step` and `max_steps` count these;
- an **epoch** is one pass over the (possibly limited) training batches of one process.

`plan()` is pure Python (no torch) and mirrors Lightning 2.x's loops: validation after batch `b`
of an epoch when `b % val_every == 0` (per-epoch mode), or after iteration `t` of the run when
`t % val_check_interval == 0` (`check_val_every_n_epoch=None`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from trainkit.errors import ConfigError

MAX_SIMULATED_EPOCHS = 1_000_000
MIN_CURVE_POINTS = 50  # step-wise curves of a short run get at least this many (log_interval)


@dataclass
class Plan:
    train_samples: int
    world_size: int
    samples_per_device: int
    batch_size: int
    drop_last: bool
    batches_per_epoch: int  # before limit_train_batches
    iterations_per_epoch: int
    accumulate_grad_batches: int
    steps_per_epoch: int
    max_epochs: int
    max_steps: int
    epochs: int | None  # None = unbounded
    iterations: int | None
    optimizer_steps: int | None
    val_every: int | None  # iterations between validations; None = no validation
    val_mode: str  # "per epoch", "across epochs" or "off"
    check_val_every_n_epoch: int | None
    validations: int | None
    log_every_n_steps: int

    def as_dict(self) -> dict:
        return asdict(self)


def iterations_per_epoch(
    samples: int, batch_size: int, drop_last: bool, world_size: int, limit: int | float | None
) -> tuple[int, int, int]:
    """(samples per device, batches per epoch, iterations per epoch after limit_train_batches)."""
    per_device = math.ceil(samples / world_size)
    batches = num_batches(per_device, batch_size, drop_last)
    return per_device, batches, limited(batches, limit)


def num_batches(samples: int, batch_size: int, drop_last: bool) -> int:
    """Batches of `batch_size` in `samples`: the last, smaller one counts unless drop_last."""
    full, rest = divmod(samples, batch_size)
    return full if drop_last or rest == 0 else full + 1


def limited(batches: int, limit: int | float | None) -> int:
    """Batches an epoch runs under Lightning's limit_*_batches (a float is a fraction)."""
    if limit is None:
        return batches
    if isinstance(limit, float):
        return int(batches * limit)
    return min(batches, int(limit))


def plan(
    *,
    train_samples: int,
    batch_size: int,
    drop_last: bool = False,
    world_size: int = 1,
    limit_train_batches: int | float | None = None,
    accumulate_grad_batches: int = 1,
    max_epochs: int | None = None,
    max_steps: int = -1,
    val_check_interval: int | float = 1.0,
    check_val_every_n_epoch: int | None = 1,
    validation_enabled: bool = True,
    log_every_n_steps: int = 50,
) -> Plan:
    """Plan a run the way Lightning will execute it (early stopping aside)."""
    k = accumulate_grad_batches
    if max_epochs is None:  # Lightning's default
        max_epochs = -1 if max_steps != -1 else 1000
    per_device, batches, iters = iterations_per_epoch(
        train_samples, batch_size, drop_last, world_size, limit_train_batches
    )
    steps_per_epoch = math.ceil(iters / k)

    val_every: int | None = None
    mode = "off"
    if validation_enabled and iters > 0:
        if isinstance(val_check_interval, int) and not isinstance(val_check_interval, bool):
            val_every = val_check_interval
            mode = "across epochs" if check_val_every_n_epoch is None else "per epoch"
            if mode == "per epoch" and val_every > iters:
                raise ConfigError(
                    f"trainer.val_check_interval={val_every} iterations is more than one epoch "
                    f"({iters} iterations); set trainer.val_check_interval <= {iters}, or "
                    "trainer.check_val_every_n_epoch=null to count iterations across epochs."
                )
        else:
            if check_val_every_n_epoch is None:
                raise ConfigError(
                    "a fractional trainer.val_check_interval needs check_val_every_n_epoch; "
                    "with check_val_every_n_epoch=null give an integer number of iterations."
                )
            val_every = max(1, int(iters * float(val_check_interval)))
            mode = "per epoch"

    unbounded = max_epochs == -1 and max_steps == -1
    epochs = total_iters = total_steps = validations = None
    if not unbounded and iters > 0:
        epochs = total_iters = total_steps = validations = 0
        epoch_limit = max_epochs if max_epochs != -1 else MAX_SIMULATED_EPOCHS
        while epochs < epoch_limit and (max_steps == -1 or total_steps < max_steps):
            left = None if max_steps == -1 else max_steps - total_steps
            if left is None or left >= steps_per_epoch:
                it, st = iters, steps_per_epoch
            else:  # max_steps ends the run inside this epoch
                it, st = left * k, left
            if mode == "per epoch" and (epochs + 1) % check_val_every_n_epoch == 0:
                validations += it // val_every
            elif mode == "across epochs":
                validations += (total_iters + it) // val_every - total_iters // val_every
            epochs, total_iters, total_steps = epochs + 1, total_iters + it, total_steps + st
    elif iters == 0:
        epochs = total_iters = total_steps = validations = 0
    return Plan(
        train_samples=train_samples,
        world_size=world_size,
        samples_per_device=per_device,
        batch_size=batch_size,
        drop_last=drop_last,
        batches_per_epoch=batches,
        iterations_per_epoch=iters,
        accumulate_grad_batches=k,
        steps_per_epoch=steps_per_epoch,
        max_epochs=max_epochs,
        max_steps=max_steps,
        epochs=epochs,
        iterations=total_iters,
        optimizer_steps=total_steps,
        val_every=val_every,
        val_mode=mode,
        check_val_every_n_epoch=check_val_every_n_epoch,
        validations=validations if mode != "off" else 0,
        log_every_n_steps=log_every_n_steps,
    )


def log_interval(plan: Plan) -> int:
    """trainer.log_every_n_steps, lowered for a short run so that its step-wise curves get at
    least MIN_CURVE_POINTS points (every optimizer step of a run with fewer); 0 stays off."""
    n = plan.log_every_n_steps
    if n <= 0 or not plan.optimizer_steps:
        return n
    return max(1, min(n, plan.optimizer_steps // MIN_CURVE_POINTS))


def no_validation_reason(p: Plan) -> str:
    """Why this plan validates never, or "" when it validates."""
    if p.val_mode == "off":
        return "there is no validation data (or trainer.limit_val_batches=0)"
    if p.validations == 0:
        every = f"every {p.val_every} iterations" + (
            f" (check_val_every_n_epoch={p.check_val_every_n_epoch})"
            if p.val_mode == "per epoch"
            else ""
        )
        return (
            f"the run ends after {p.iterations} iteration(s), before its first validation "
            f"(validation comes {every}; lower trainer.val_check_interval to validate)"
        )
    return ""


def _n(x: int | None) -> str:
    return "unbounded" if x is None else f"{x:,}"


def plan_rows(p: Plan) -> list[tuple[str, str, str]]:
    """(quantity, value, how it was computed) rows of the plan table."""
    per_dev = f"ceil({p.train_samples:,} / {p.world_size} devices) = {p.samples_per_device:,}"
    div = "floor" if p.drop_last else "ceil"
    iters_how = f"{div}({p.samples_per_device:,} / {p.batch_size})"
    if p.iterations_per_epoch != p.batches_per_epoch:
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
        val = ("validation every", f"{p.val_every:,} iterations", where)
    rows = [
        (
            "train samples",
            f"{p.train_samples:,}",
            per_dev if p.world_size > 1 else "training split",
        ),
        ("batch size (per device)", f"{p.batch_size}", f"drop_last={p.drop_last}"),
        ("iterations per epoch", f"{p.iterations_per_epoch:,}", iters_how),
        (
            "accumulate_grad_batches",
            f"{p.accumulate_grad_batches}",
            "iterations per optimizer step",
        ),
        (
            "optimizer steps per epoch",
            f"{p.steps_per_epoch:,}",
            f"ceil({p.iterations_per_epoch:,} / {p.accumulate_grad_batches})",
        ),
        ("epochs", _n(p.epochs), ", ".join(until) or "no limit"),
        ("total iterations", _n(p.iterations), "training batches of the whole run"),
        ("total optimizer steps", _n(p.optimizer_steps), "= global_step at the end"),
        val,
        ("validations", _n(p.validations), "sanity check not counted"),
        (
            "log interval",
            f"{p.log_every_n_steps} optimizer steps",
            f"= {p.log_every_n_steps * p.accumulate_grad_batches} iterations",
        ),
    ]
    return rows


def format_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A plain-text table (also valid Markdown) for the console, the log file and TensorBoard."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])
