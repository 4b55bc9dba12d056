"""Cheaper hook dispatch for Lightning's training loop (same calls, same order, same results).

Per training iteration Lightning dispatches about 20 hooks through three functions of
`lightning.pytorch.trainer.call`. Each dispatch formats a debug message, opens a profiler
context, and offers the hook to every callback (a dozen with trainkit's defaults), although
most callbacks and most LightningModule hooks are Lightning's empty defaults. On a small model
that bookkeeping is a large share of an iteration (see scripts/benchmark.py).

`install()` replaces those three functions with versions that, while the trainer's profiler
does nothing (trainkit's NullProfiler or Lightning's PassThroughProfiler):

- skip a callback or LightningModule hook whose implementation is an empty function (the
  defaults are `pass` / a docstring: calling them has no effect and returns None);
- call every other hook exactly as Lightning does (same arguments, same `_current_fx_name`
  bookkeeping that `self.log` relies on), without the no-op profiler context and debug line.

With any real profiler (`trainer.profiler=simple|advanced|pytorch`) Lightning's own functions
run, so profiles stay complete. It also caches `training_step`'s signature check, which
Lightning repeats with `inspect` on every iteration.

These are private Lightning functions (lightning is pinned <2.7); tests/test_fast_hooks.py
checks that each one still exists with the signature these replacements assume.
"""

from __future__ import annotations

import dis
import functools
import inspect
from typing import Any

from lightning.pytorch.callbacks import Checkpoint, EarlyStopping
from lightning.pytorch.loops import training_epoch_loop
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.trainer import call

from trainkit.profiler import NullProfiler

_QUIET_PROFILERS = (NullProfiler, PassThroughProfiler)
_ORIGINAL = {
    name: getattr(call, name)
    for name in ("_call_callback_hooks", "_call_lightning_module_hook", "_call_strategy_hook")
}
_ORIGINAL_SIGNATURE_CHECK = training_epoch_loop.is_param_in_hook_signature


_DO_NOTHING = {"RESUME", "NOP", "RETURN_VALUE"}
_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _is_empty(function: Any) -> bool:
    """True when `function` is a plain Python function whose body does nothing and returns None
    (`pass` or a docstring only: what Lightning's default hooks are)."""
    code = getattr(function, "__code__", None)
    return code is not None and _empty_code(code)


@functools.cache  # keyed by code object: closures made by one `def` share theirs
def _empty_code(code: Any) -> bool:
    if code.co_flags & _FLAGS:
        return False
    return all(
        ins.opname in _DO_NOTHING
        or (ins.opname in ("LOAD_CONST", "RETURN_CONST") and ins.argval is None)
        for ins in dis.get_instructions(code)
    )


def _hook(obj: Any, hook_name: str) -> Any:
    """The hook to call on `obj`, or None when it is absent, not callable or does nothing."""
    fn = getattr(obj, hook_name, None)
    if not callable(fn):
        return None
    return None if _is_empty(getattr(fn, "__func__", fn)) else fn


def _quiet(trainer: Any) -> bool:
    return type(trainer.profiler) in _QUIET_PROFILERS


def _call_callback_hooks(
    trainer: Any,
    hook_name: str,
    *args: Any,
    monitoring_callbacks: bool | None = None,
    **kwargs: Any,
) -> None:
    if not _quiet(trainer):
        _ORIGINAL["_call_callback_hooks"](
            trainer, hook_name, *args, monitoring_callbacks=monitoring_callbacks, **kwargs
        )
        return
    callbacks = trainer.callbacks
    if monitoring_callbacks is not None:
        callbacks = [
            cb
            for cb in callbacks
            if isinstance(cb, (EarlyStopping, Checkpoint)) is monitoring_callbacks
        ]
    hooks = [fn for fn in (_hook(cb, hook_name) for cb in callbacks) if fn is not None]
    if not hooks:
        return
    pl_module = trainer.lightning_module
    if pl_module:
        prev_fx_name = pl_module._current_fx_name
        pl_module._current_fx_name = hook_name
    for fn in hooks:
        fn(trainer, pl_module, *args, **kwargs)
    if pl_module:
        pl_module._current_fx_name = prev_fx_name


def _call_lightning_module_hook(
    trainer: Any, hook_name: str, *args: Any, pl_module: Any = None, **kwargs: Any
) -> Any:
    if not _quiet(trainer):
        return _ORIGINAL["_call_lightning_module_hook"](
            trainer, hook_name, *args, pl_module=pl_module, **kwargs
        )
    pl_module = pl_module or trainer.lightning_module
    if pl_module is None:
        raise TypeError("No `LightningModule` is available to call hooks on.")
    fn = _hook(pl_module, hook_name)
    if fn is None:
        return None
    prev_fx_name = pl_module._current_fx_name
    pl_module._current_fx_name = hook_name
    output = fn(*args, **kwargs)
    pl_module._current_fx_name = prev_fx_name
    return output


def _call_strategy_hook(trainer: Any, hook_name: str, *args: Any, **kwargs: Any) -> Any:
    if not _quiet(trainer):
        return _ORIGINAL["_call_strategy_hook"](trainer, hook_name, *args, **kwargs)
    pl_module = trainer.lightning_module
    prev_fx_name = pl_module._current_fx_name
    pl_module._current_fx_name = hook_name
    fn = getattr(trainer.strategy, hook_name)
    if not callable(fn):
        return None
    output = fn(*args, **kwargs)
    pl_module._current_fx_name = prev_fx_name
    return output


@functools.lru_cache(maxsize=256)
def _cached_signature_check(
    function: Any, param: str, explicit: bool, min_args: int | None
) -> bool:
    return _ORIGINAL_SIGNATURE_CHECK(function, param, explicit=explicit, min_args=min_args)


def _is_param_in_hook_signature(
    hook_fx: Any, param: str, explicit: bool = False, min_args: int | None = None
) -> bool:
    function = getattr(hook_fx, "__func__", hook_fx)  # a bound method's function is stable
    if not inspect.isfunction(function):
        return _ORIGINAL_SIGNATURE_CHECK(hook_fx, param, explicit=explicit, min_args=min_args)
    return _cached_signature_check(function, param, explicit, min_args)


def install() -> None:
    """Patch Lightning's hook dispatch (idempotent; affects every Trainer in the process, and
    falls back to Lightning's own functions whenever a real profiler is set)."""
    call._call_callback_hooks = _call_callback_hooks
    call._call_lightning_module_hook = _call_lightning_module_hook
    call._call_strategy_hook = _call_strategy_hook
    training_epoch_loop.is_param_in_hook_signature = _is_param_in_hook_signature


def uninstall() -> None:
    """Restore Lightning's own functions."""
    for name, fn in _ORIGINAL.items():
        setattr(call, name, fn)
    training_epoch_loop.is_param_in_hook_signature = _ORIGINAL_SIGNATURE_CHECK
