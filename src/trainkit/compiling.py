"""`compile=true`: torch.compile the network, not Lightning's step methods.

What is compiled is what the module's `forward` runs (for trainkit's models, `self.net`): the
tensors in, the logits out. `training_step` and friends stay eager: their torchmetrics updates
and `self.log` calls change Python state on every step (integer counters, grad mode), and Dynamo
recompiles on each change until it hits its recompile limit and falls back to eager. The batch
dimension of every input tensor is marked dynamic before the first call, so the last, smaller
batch of an epoch and the validation batches reuse the compiled graph instead of compiling
another. Train and eval mode (BatchNorm, dropout) are one graph each.

The module is compiled in place: its `state_dict` keeps its plain names, so checkpoints load with
or without `compile=true`, and resuming works either way.
"""

from __future__ import annotations

import functools
from typing import Any

import lightning as L
import torch


def mark_batch_dynamic(value: Any) -> None:
    """Mark dim 0 of every tensor in `value` (a tensor, or tuples/lists/dicts of them) dynamic."""
    if isinstance(value, torch.Tensor):
        if value.dim() > 0:
            # public in torch.compiler's docs on dynamic shapes, though it lives in _dynamo
            torch._dynamo.maybe_mark_dynamic(value, 0)
    elif isinstance(value, (list, tuple)):
        for item in value:
            mark_batch_dynamic(item)
    elif isinstance(value, dict):
        for item in value.values():
            mark_batch_dynamic(item)


def compile_network(module: L.LightningModule, **options: Any) -> L.LightningModule:
    """Compile `module.forward` in place (options go to torch.compile) and return the module."""
    compiled = torch.compile(module.forward, **options)

    @functools.wraps(module.forward)
    def forward(*args: Any, **kwargs: Any) -> Any:
        mark_batch_dynamic((args, kwargs))
        return compiled(*args, **kwargs)

    module.forward = forward  # an instance attribute: nothing in the state_dict changes
    return module
