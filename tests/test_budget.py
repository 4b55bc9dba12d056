"""The iteration/epoch arithmetic: the plan by hand, and the plan against what Lightning did."""

from __future__ import annotations

import pytest

from trainkit.budget import no_validation_reason, plan
from trainkit.errors import ConfigError


def test_partial_last_batch_and_accumulation():
    p = plan(train_samples=1000, batch_size=32, accumulate_grad_batches=4, max_epochs=3)
    assert p.iterations_per_epoch == 32  # ceil(1000 / 32): the last batch has 8 samples
    assert p.steps_per_epoch == 8  # ceil(32 / 4)
    assert (p.epochs, p.iterations, p.optimizer_steps) == (3, 96, 24)


def test_accumulation_steps_on_the_last_batch_of_an_epoch():
    p = plan(train_samples=100, batch_size=10, accumulate_grad_batches=3, max_epochs=2)
    assert p.steps_per_epoch == 4  # batches 3, 6, 9 and the last one, 10
    assert p.optimizer_steps == 8


def test_drop_last_and_limit_train_batches():
    assert plan(train_samples=1000, batch_size=32, drop_last=True).iterations_per_epoch == 31
    assert (
        plan(train_samples=1000, batch_size=32, limit_train_batches=10).iterations_per_epoch == 10
    )
    assert (
        plan(train_samples=1000, batch_size=32, limit_train_batches=0.5).iterations_per_epoch == 16
    )


def test_max_steps_ends_inside_an_epoch():
    p = plan(
        train_samples=320, batch_size=32, accumulate_grad_batches=2, max_steps=12, max_epochs=-1
    )
    # 10 iterations = 5 steps per epoch: 5 + 5 + 2 steps -> 3 epochs, the last one 4 iterations
    assert (p.epochs, p.iterations, p.optimizer_steps) == (3, 24, 12)


def test_max_epochs_wins_when_first():
    p = plan(train_samples=320, batch_size=32, max_steps=1000, max_epochs=2)
    assert (p.epochs, p.optimizer_steps) == (2, 20)


def test_validations_per_epoch_and_across_epochs():
    per_epoch = plan(train_samples=100, batch_size=10, max_epochs=3, val_check_interval=4)
    assert per_epoch.validations == 6  # batches 4 and 8 of each epoch; none at batch 10
    across = plan(
        train_samples=100,
        batch_size=10,
        max_epochs=3,
        val_check_interval=4,
        check_val_every_n_epoch=None,
    )
    assert across.validations == 7  # iterations 4, 8, ..., 28 of 30
    fraction = plan(train_samples=100, batch_size=10, max_epochs=2, val_check_interval=0.25)
    assert fraction.val_every == 2 and fraction.validations == 10
    every_2nd = plan(train_samples=100, batch_size=10, max_epochs=5, check_val_every_n_epoch=2)
    assert every_2nd.validations == 2


def test_distributed_batches_are_per_device():
    p = plan(train_samples=1001, batch_size=50, world_size=2, max_epochs=1)
    assert p.samples_per_device == 501 and p.iterations_per_epoch == 11


def test_interval_longer_than_an_epoch_is_a_clear_error():
    with pytest.raises(
        ConfigError, match=r"more than one epoch \(10 iterations\).*check_val_every_n_epoch=null"
    ):
        plan(train_samples=100, batch_size=10, val_check_interval=25)
    # across epochs the same interval is fine
    assert (
        plan(
            train_samples=100,
            batch_size=10,
            max_epochs=5,
            val_check_interval=25,
            check_val_every_n_epoch=None,
        ).validations
        == 2
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_epochs": 4, "val_check_interval": 50, "check_val_every_n_epoch": None},
        {"max_epochs": 2, "check_val_every_n_epoch": 3},
        {"max_epochs": -1, "max_steps": 7},  # the run ends before its first epoch's validation
    ],
)
def test_a_run_that_ends_before_its_first_validation_says_so(kwargs):
    p = plan(train_samples=100, batch_size=10, **kwargs)
    assert p.validations == 0
    assert no_validation_reason(p).startswith(f"the run ends after {p.iterations} iteration(s)")
    assert no_validation_reason(plan(train_samples=100, batch_size=10, max_epochs=1)) == ""


def test_unbounded_run():
    p = plan(train_samples=100, batch_size=10, max_epochs=-1, max_steps=-1)
    assert p.epochs is None and p.iterations is None


# -- the plan against a real Lightning run ------------------------------------------------------
# 230 samples -> 184 for training; batches of 16 -> 12 iterations per epoch, the last one of 8.
TINY = [
    "model=regression",
    "data.n_samples=230",
    "data.batch_size=16",
    "logger=none",
    "test=false",
    "callbacks.model_checkpoint=null",
    "callbacks.early_stopping=null",
]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["trainer.max_epochs=2", "trainer.accumulate_grad_batches=5"], (2, 24, 6, 2)),
        (
            [
                "trainer.max_epochs=3",
                "trainer.limit_train_batches=5",
                "trainer.accumulate_grad_batches=2",
            ],
            (3, 15, 9, 3),
        ),
        (["trainer.max_epochs=-1", "trainer.max_steps=7"], (1, 7, 7, 0)),
        (
            ["trainer.max_epochs=-1", "trainer.max_steps=6", "trainer.accumulate_grad_batches=3"],
            (2, 18, 6, 1),
        ),
        (["trainer.max_epochs=3", "trainer.val_check_interval=5"], (3, 36, 36, 6)),
        (
            [
                "trainer.max_epochs=3",
                "trainer.val_check_interval=5",
                "trainer.check_val_every_n_epoch=null",
            ],
            (3, 36, 36, 7),
        ),
        (["trainer.max_epochs=5", "trainer.check_val_every_n_epoch=2"], (5, 60, 60, 2)),
        (["trainer.max_epochs=2", "trainer.val_check_interval=0.25"], (2, 24, 24, 8)),
        (["trainer.max_epochs=2", "data.drop_last=true"], (2, 22, 22, 2)),
        (
            [
                "trainer.max_epochs=-1",
                "trainer.max_steps=10",
                "trainer.accumulate_grad_batches=2",
                "trainer.val_check_interval=7",
                "trainer.check_val_every_n_epoch=null",
            ],
            (2, 20, 10, 2),
        ),
    ],
)
def test_plan_matches_what_lightning_did(run_train, overrides, expected):
    summary, _ = run_train([*TINY, *overrides])
    epochs, iterations, steps, validations = expected
    planned = summary["plan"]
    assert (
        planned["epochs"],
        planned["iterations"],
        planned["optimizer_steps"],
        planned["validations"],
    ) == expected
    assert (
        summary["epochs"],
        summary["iterations"],
        summary["global_step"],
        summary["validations"],
    ) == expected
