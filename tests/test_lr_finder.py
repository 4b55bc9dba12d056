"""tune.lr_find suggests where the loss begins to fall (not a wiggle of its flat top), and a
range test whose loss never clearly falls keeps the configured rate, with a warning."""

from __future__ import annotations

import logging
import math

import pytest

from trainkit.data_contract import current_lr, set_lr
from trainkit.errors import ConfigError
from trainkit.tuning import fall_onset

LRS = [10 ** (-6 + 6 * i / 99) for i in range(100)]  # 1e-6 .. 1, as the range test steps


def test_the_suggestion_is_where_the_loss_begins_to_fall():
    # flat at 2.3 up to 1e-3 (with Lightning's low first points and a wiggle of the top), then a
    # fall to 1.0 at 1e-1, then divergence
    def loss(lr: float, i: int) -> float:
        top = 2.3 + (0.02 if i % 7 == 0 else 0.0) - (1.2 if i < 3 else 0.0)
        return (
            top
            if lr < 1e-3
            else max(1.0, 2.3 - 0.65 * math.log10(lr / 1e-3)) * (1 if lr < 0.2 else 10)
        )

    losses = [loss(lr, i) for i, lr in enumerate(LRS)]
    suggestion, fall = fall_onset(LRS, losses)
    assert fall == pytest.approx((2.32 - 1.0) / 2.32, abs=1e-6)
    assert 1e-3 < suggestion < 2e-3  # where 2.3 has fallen 7.5%, not on the flat top


def test_no_clear_fall_suggests_nothing():
    flat = [0.69 + 0.01 * math.sin(i) for i in range(100)]
    assert fall_onset(LRS, flat)[0] is None
    rising = [0.35 + 0.003 * i for i in range(100)]  # Lightning's low start, then no fall
    assert fall_onset(LRS, rising) == (None, 0.0)
    assert fall_onset(LRS[:5], flat[:5])[0] is None  # too short a test


def test_a_range_test_without_a_fall_keeps_the_configured_rate(run_train, caplog):
    caplog.set_level(logging.INFO, logger="trainkit")
    args = ["model=cnn", "trainer.max_epochs=1", "trainer.limit_train_batches=2"]
    # up to 1e-5 the CNN barely moves: the loss shows no clear fall
    tune = ["tune.lr_find=true", "tune.num_training=30", "tune.max_lr=1e-5"]
    summary, run_dir = run_train([*args, *tune])
    tuned = summary["tuned"]
    assert tuned["lr"] == tuned["lr_configured"] == 1e-3 and tuned["lr_suggested"] is None
    assert tuned["lr_fall"] < 0.1 and (run_dir / "lr_find.png").is_file()
    assert "LR finder: the loss shows no clear fall in a 30-iteration range test" in caplog.text
    assert "optimizer.lr stays 0.001" in caplog.text


def test_a_users_rate_is_found_where_lightnings_finder_looks():
    import lightning as L

    class Plain(L.LightningModule):
        def __init__(self, learning_rate: float = 0.01):
            super().__init__()
            self.save_hyperparameters()
            self.lr = 0.02

    plain = Plain()
    assert current_lr(plain) == 0.02  # `lr` before `learning_rate`, as Lightning's finder
    assert set_lr(plain, 0.5) == 0.02 and plain.lr == 0.5
    del plain.lr
    assert current_lr(plain) == 0.01 and set_lr(plain, 0.3) == 0.01
    assert plain.hparams.learning_rate == 0.3
    bare = L.LightningModule()
    assert current_lr(bare) is None
    with pytest.raises(ConfigError, match="no learning rate the LR finder can set"):
        set_lr(bare, 0.1)
