"""Hydra's own grammar adds objects (docs/extending.md): `+callbacks.<name>._target_=...` and
its arguments are new on purpose, not mistyped keys; the Optuna sweeper adds its pruning
callback this way, and a DDP worker's command line carries it."""

from __future__ import annotations

from helpers import CONF

from trainkit.command_line import mistyped_key


def test_an_added_callback_and_its_arguments_are_not_mistyped_keys():
    args = [
        "+callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LearningRateMonitor",
        "+callbacks.lr_monitor.logging_interval=step",
        "+callbacks.optuna_pruning._target_=trainkit.pruning.OptunaPruning",
        "+callbacks.optuna_pruning.monitor=val/loss",
    ]
    assert mistyped_key(args, CONF, "train") is None
    # a typo of a known key still is one, added with + or not
    assert mistyped_key(["+callbacks.model_checkpoint.monitr=val/acc"], CONF, "train") == (
        "+callbacks.model_checkpoint.monitr is not a setting; did you mean "
        "callbacks.model_checkpoint.monitor=val/acc or callbacks.model_checkpoint.mode=val/acc?"
    )
    assert mistyped_key(["+max_epochs=5"], CONF, "train") == (
        "+max_epochs is not a setting; did you mean trainer.max_epochs=5?"
    )
