"""The arithmetic of a training run: samples -> iterations -> optimizer steps -> epochs.

Vocabulary (used in the printed table, the guides and the TensorBoard tags):

- an **iteration** is one training batch: forward, backward;
- an **optimizer step** happens every `accumulate_grad_batches` iterations, and on the last
  iteration of an epoch; Lightning's `global_step` and `max_steps` count these;
- an **epoch** is one pass over the (possibly limited) training batches of one process.

A training loader over a stream of unknown length (an `IterableDataset` without `len`) has
iterations per epoch, epochs and validations that nobody can know in advance: the plan says
"unknown (streaming)" for them, and such a run must be bounded by `max_steps`.

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


STREAMING = "unknown (streaming)"


@dataclass
class Plan:
    train_samples: int | None  # None: a stream of unknown length
    world_size: int
    samples_per_device: int | None
    batch_size: int | None  # None: the loader batches by itself (a batch_sampler)
    drop_last: bool
    batches_per_epoch: int | None  # before limit_train_batches
    iterations_per_epoch: int | None
    accumulate_grad_batches: int
    steps_per_epoch: int | None
    max_epochs: int
    max_steps: int
    epochs: int | None  # None = unbounded (or unknown, when streaming)
    iterations: int | None
    optimizer_steps: int | None
    val_every: int | None  # iterations between validations; None = no validation
    val_mode: str  # "per epoch", "across epochs" or "off"
    check_val_every_n_epoch: int | None
    validations: int | None
    log_every_n_steps: int
    streaming: bool = False  # the length of an epoch is unknown
    samples_from: str = "training split"  # where train_samples was read

    def as_dict(self) -> dict:
        return asdict(self)


def iterations_per_epoch(
    samples: int | None,
    batch_size: int | None,
    drop_last: bool,
    world_size: int,
    limit: int | float | None,
    batches: int | None = None,
) -> tuple[int | None, int | None, int | None]:
    """(samples per device, batches per epoch, iterations per epoch after limit_train_batches);
    `batches`: the loader's own count, for a loader without a batch size. None: unknown."""
    per_device = None if samples is None else math.ceil(samples / world_size)
    if per_device is not None and batch_size:
        batches = num_batches(per_device, batch_size, drop_last)
    elif batches is not None:
        batches = math.ceil(batches / world_size)
    if batches is None:  # a stream: only an integer limit bounds an epoch
        bounded = isinstance(limit, int) and not isinstance(limit, bool)
        return per_device, None, limit if bounded else None
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
    train_samples: int | None,
    batch_size: int | None,
    batches: int | None = None,
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
    samples_from: str = "training split",
) -> Plan:
    """Plan a run the way Lightning will execute it (early stopping aside). `train_samples` and
    `batches` None: the training data is a stream of unknown length."""
    k = accumulate_grad_batches
    if max_epochs is None:  # Lightning's default
        max_epochs = -1 if max_steps != -1 else 1000
    per_device, batches, iters = iterations_per_epoch(
        train_samples, batch_size, drop_last, world_size, limit_train_batches, batches
    )
    given = {"train_samples": train_samples, "world_size": world_size, "batch_size": batch_size,
             "drop_last": drop_last, "accumulate_grad_batches": k, "max_epochs": max_epochs,
             "max_steps": max_steps, "check_val_every_n_epoch": check_val_every_n_epoch,
             "log_every_n_steps": log_every_n_steps, "samples_from": samples_from}  # fmt: skip
    if iters is None:
        return _streaming_plan(given, val_check_interval, validation_enabled)
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
        samples_from=samples_from,
    )


def _streaming_plan(given: dict, val_check_interval: int | float, validation_enabled: bool) -> Plan:
    """The plan of a run over a stream: max_steps bounds it; epochs and, unless validation is
    counted in iterations across epochs, validations are unknown."""
    max_steps, k = given["max_steps"], given["accumulate_grad_batches"]
    if max_steps == -1:
        raise ConfigError(
            "the training data is a stream of unknown length (an IterableDataset without len), "
            "so trainer.max_epochs cannot bound the run: set trainer.max_steps=N (optimizer "
            "steps) to say when it ends."
        )
    every_iterations = isinstance(val_check_interval, int) and not isinstance(
        val_check_interval, bool
    )
    val_every, mode, validations = None, "off", 0
    if validation_enabled:
        val_every = val_check_interval if every_iterations else None
        mode = "across epochs" if given["check_val_every_n_epoch"] is None else "per epoch"
        across = mode == "across epochs" and val_every
        validations = max_steps * k // val_every if across else None
    return Plan(
        **given,
        samples_per_device=None,
        batches_per_epoch=None,
        iterations_per_epoch=None,
        steps_per_epoch=None,
        epochs=None,
        iterations=max_steps * k,
        optimizer_steps=max_steps,
        val_every=val_every,
        val_mode=mode,
        validations=validations,
        streaming=True,
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
    if p.iterations == 0:
        return "it has no training batches"
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
