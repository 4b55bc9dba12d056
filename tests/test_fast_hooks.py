"""trainkit.fast_hooks: the same hooks, in the same order, with the same results, for less."""

from __future__ import annotations

import inspect

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loops import training_epoch_loop
from lightning.pytorch.trainer import call

from trainkit import fast_hooks
from trainkit.profiler import NullProfiler

HOOKS = [
    "on_train_start",
    "on_train_epoch_start",
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
    "on_validation_epoch_end",
    "on_train_epoch_end",
    "on_train_end",
]


class Recorder(Callback):
    """Records every hook it is given, and logs from one (which needs `_current_fx_name`)."""

    def __init__(self, calls: list) -> None:
        self.calls = calls

    def __getattribute__(self, name):
        if name in HOOKS:

            def hook(trainer, pl_module, *args, **kwargs):
                self.calls.append(("callback", name, pl_module._current_fx_name))
                if name == "on_train_batch_end":
                    pl_module.log("from_callback", 1.0)

            return hook
        return super().__getattribute__(name)


class Module(L.LightningModule):
    def __init__(self, calls: list) -> None:
        super().__init__()
        self.net = torch.nn.Linear(2, 1)
        self.calls = calls

    def training_step(self, batch, batch_idx):
        self.calls.append(("module", "training_step", self._current_fx_name))
        loss = self.net(batch[0]).pow(2).mean()
        self.log("loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val", self.net(batch[0]).mean())

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.calls.append(("module", "on_train_batch_end", self._current_fx_name))

    def on_before_zero_grad(self, optimizer):
        self.calls.append(("module", "on_before_zero_grad", self._current_fx_name))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def run(profiler) -> tuple[list, dict]:
    calls: list = []
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(12, 2))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    trainer = L.Trainer(
        max_epochs=2,
        callbacks=[Recorder(calls)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        profiler=profiler,
    )
    model = Module(calls)
    trainer.fit(model, loader, loader)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return calls, {**metrics, "weight": model.net.weight.sum().item()}


@pytest.fixture
def lightning_dispatch():
    fast_hooks.uninstall()
    yield
    fast_hooks.install()


def test_same_hooks_in_the_same_order_with_the_same_results(lightning_dispatch):
    stock_calls, stock = run(NullProfiler())
    fast_hooks.install()
    assert call._call_callback_hooks is fast_hooks._call_callback_hooks
    fast_calls, fast = run(NullProfiler())
    assert fast_calls == stock_calls
    assert len(fast_calls) > 6 * 2 * 3  # the hooks really ran: 3 batches x 2 epochs
    assert ("callback", "on_train_batch_end", "on_train_batch_end") in fast_calls
    assert fast == pytest.approx(stock) and "from_callback" in fast


def test_a_real_profiler_gets_lightnings_own_dispatch(tmp_path):
    fast_hooks.install()
    profiler = L.pytorch.profilers.SimpleProfiler(dirpath=tmp_path, filename="p")
    run(profiler)
    names = set(profiler.recorded_durations)
    assert "[Callback]Recorder.on_train_batch_end" in names
    assert "[LightningModule]Module.on_before_zero_grad" in names


def test_only_empty_hooks_are_skipped():
    class User(Callback):
        def on_train_start(self, trainer, pl_module):
            """Documented, but does nothing."""

        def on_train_end(self, trainer, pl_module):
            return 1  # does something: it returns a value

        def on_train_epoch_end(self, trainer, pl_module):
            pl_module.touched = True

    cb = User()
    assert fast_hooks._hook(cb, "on_train_start") is None
    assert fast_hooks._hook(cb, "on_fit_start") is None  # Lightning's default: empty
    assert fast_hooks._hook(cb, "on_train_end") is not None
    assert fast_hooks._hook(cb, "on_train_epoch_end") is not None
    assert fast_hooks._hook(cb, "no_such_hook") is None
    # an instance attribute wins, as in Lightning's getattr
    seen: list = []
    cb.on_fit_start = lambda trainer, pl_module: seen.append(trainer)
    fast_hooks._hook(cb, "on_fit_start")("trainer", None)
    assert seen == ["trainer"]
    # LightningModule hooks with a default behaviour are never skipped
    module = L.LightningModule()
    for name in ("optimizer_step", "optimizer_zero_grad", "backward", "transfer_batch_to_device"):
        assert fast_hooks._hook(module, name) is not None, name
    assert fast_hooks._hook(module, "on_train_batch_start") is None


def test_the_patched_lightning_functions_still_have_the_expected_signatures():
    """Guards a Lightning upgrade: these private functions are what install() replaces."""
    expected = {
        "_call_callback_hooks": ["trainer", "hook_name", "args", "monitoring_callbacks", "kwargs"],
        "_call_lightning_module_hook": ["trainer", "hook_name", "args", "pl_module", "kwargs"],
        "_call_strategy_hook": ["trainer", "hook_name", "args", "kwargs"],
    }
    for name, params in expected.items():
        assert list(inspect.signature(fast_hooks._ORIGINAL[name]).parameters) == params, name
        assert list(inspect.signature(getattr(fast_hooks, name)).parameters) == params, name
    check = inspect.signature(fast_hooks._ORIGINAL_SIGNATURE_CHECK).parameters
    assert list(check) == ["hook_fx", "param", "explicit", "min_args"]
    assert "is_param_in_hook_signature" in vars(training_epoch_loop)


def test_the_signature_cache_answers_like_lightning():
    class M(L.LightningModule):
        def training_step(self, batch, batch_idx):
            return None

    class N(L.LightningModule):
        def training_step(self, batch):
            return None

    original = fast_hooks._ORIGINAL_SIGNATURE_CHECK
    for module in (M(), N()):
        fn = module.training_step
        for args in (("batch_idx", False, 2), ("dataloader_idx", True, None)):
            assert fast_hooks._is_param_in_hook_signature(fn, *args) == original(fn, *args)
    assert fast_hooks._is_param_in_hook_signature(M().training_step, "batch_idx", min_args=2)
    assert not fast_hooks._is_param_in_hook_signature(N().training_step, "batch_idx", min_args=2)
