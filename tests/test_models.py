"""Networks adapt to their data; LR schedules step on the right interval."""

from __future__ import annotations

import pytest
import torch
from helpers import ADAM

from trainkit.models.cnn import ImageClassifier
from trainkit.models.regression import Regressor
from trainkit.models.text import TextClassifier


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 1, 1)])
def test_cnn_adapts_to_channels_and_size(shape):
    model = ImageClassifier(input_shape=list(shape), num_classes=7, optimizer=ADAM)
    assert model(torch.randn(4, *shape)).shape == (4, 7)


def test_text_classifier_ignores_padding_and_takes_ids_or_weighted_ids():
    model = TextClassifier(vocab_size=20, num_classes=2, optimizer=ADAM).eval()
    short, padded = torch.tensor([[5, 6]]), torch.tensor([[5, 6, 0, 0, 0]])
    assert torch.allclose(model(short), model(padded))
    weights = torch.tensor([[0.3, 0.7, 0.0, 0.0, 0.0]])
    assert torch.allclose(model((padded, weights)), model((short, weights[:, :2])))
    # ids alone: the mean of their embeddings; weighted: their weighted sum
    table, head = model.net.embedding.weight.detach(), model.net.head
    assert torch.allclose(model(short), head(table[[5, 6]].mean(0, keepdim=True)), atol=1e-6)
    bag = 0.3 * table[5] + 0.7 * table[6]
    assert torch.allclose(model((padded, weights)), head(bag.unsqueeze(0)), atol=1e-6)
    # small initial embeddings (padding row 0); init_std=None keeps torch's N(0, 1)
    assert 0.005 < float(table[1:].std()) < 0.02 and not table[0].any()
    wide = TextClassifier(vocab_size=2000, num_classes=2, init_std=None).net.embedding
    assert 0.9 < float(wide.weight.detach()[1:].std()) < 1.1


def test_regressor_without_hidden_layers_is_linear():
    model = Regressor(in_features=3, hidden=[], optimizer=ADAM)
    assert len(model.net) == 1 and set(model.final_report()) == {"weights", "bias"}
    assert Regressor(in_features=3, hidden=[8], optimizer=ADAM).final_report() == {}


# 184 training samples in batches of 16: 12 iterations (= optimizer steps) per epoch.
TINY = [
    "model=regression",
    "data.n_samples=230",
    "data.batch_size=16",
    "test=false",
    "callbacks.early_stopping=null",
    "callbacks.model_checkpoint=null",
    "logger=none",
    "trainer.max_epochs=3",
    "optimizer.lr=0.1",
]


def fit_and_get_model(compose_cfg, overrides):
    from hydra.utils import instantiate

    from trainkit.building import build_model, build_trainer

    cfg = compose_cfg(
        ["trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0", *TINY, *overrides]
    )
    dm = instantiate(cfg.data)
    dm.setup()
    model = build_model(cfg, dm)
    trainer, _, _ = build_trainer(cfg)
    trainer.fit(model, datamodule=dm)
    return trainer


@pytest.mark.parametrize(
    ("overrides", "expected_lr"),
    [
        (["scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.5"], 0.1 * 0.5**3),
        (["scheduler=exponential", "scheduler.gamma=0.9"], 0.1 * 0.9**3),
        (["scheduler=cosine"], 0.0),  # annealed to eta_min over exactly the run's 36 steps
    ],
)
def test_schedules_step_on_their_interval(compose_cfg, overrides, expected_lr):
    trainer = fit_and_get_model(compose_cfg, overrides)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(expected_lr, abs=1e-9)


def test_onecycle_spans_exactly_the_run(compose_cfg):
    trainer = fit_and_get_model(
        compose_cfg, ["scheduler=onecycle", "trainer.accumulate_grad_batches=5"]
    )
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    # 3 epochs x ceil(12 / 5) = 9 optimizer steps; OneCycleLR raises if stepped past total_steps
    assert scheduler.total_steps == 9 and scheduler.last_epoch == 9


def test_plateau_steps_once_an_epoch_on_the_monitored_metric(compose_cfg):
    trainer = fit_and_get_model(compose_cfg, ["scheduler=plateau", "trainer.val_check_interval=5"])
    config = trainer.lr_scheduler_configs[0]
    assert config.monitor == "val/mse"  # the model's monitored metric (regression: its MSE)
    assert config.scheduler.last_epoch == 3  # Lightning steps it after every epoch
