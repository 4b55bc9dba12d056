"""A checkpoint written in the middle of an epoch records its position with the batch size and
number of processes that counted it: a resume that would cut the rest of that epoch into other
batches (and so skip or repeat samples) stops with one sentence instead."""

from __future__ import annotations

import pytest
import torch

from trainkit.data.digits import DigitsDataModule
from trainkit.errors import DataError

# the digits CNN, 10 iterations an epoch; last.ckpt every 5 steps: step 15 is mid-epoch
MID_EPOCH = [
    "model=cnn",
    "trainer.limit_train_batches=10",
    "callbacks.early_stopping=null",
    "seed=7",
    "callbacks.last_checkpoint.every_n_train_steps=5",
]


def position(batch_size: int, done: int = 5, world_size: int = 1) -> dict:
    return {
        "batches_done": done,
        "epoch_batches": 10,
        "batch_size": batch_size,
        "world_size": world_size,
        "samples_done": done * batch_size * world_size,
    }


def first_batches(batch_size: int, state: dict) -> list[torch.Tensor]:
    dm = DigitsDataModule(batch_size=batch_size, seed=7)
    dm.load_state_dict(state)
    dm.setup()
    return [y for _, y in dm.train_dataloader()]


def test_a_mid_epoch_resume_with_another_batch_size_is_refused() -> None:
    with pytest.raises(DataError) as err:
        first_batches(64, {"position": position(32)})
    msg = str(err.value)
    assert "\n" not in msg and msg.endswith(".")
    assert "5 batches of 32, 160 samples done" in msg and "data.batch_size is 64 now" in msg
    assert (
        "resume with data.batch_size=32, or from a checkpoint written at the end of an epoch"
        in (msg)
    )
    with pytest.raises(DataError, match=r"on each of 2 processes.* it runs on 1 process now"):
        first_batches(32, {"position": position(32, world_size=2)})


def test_the_same_batch_size_or_an_epochs_end_resumes() -> None:
    full = first_batches(32, {})
    rest = first_batches(32, {"position": position(32)})
    assert len(rest) == len(full) - 5
    assert all(torch.equal(a, b) for a, b in zip(full[5:], rest, strict=True))
    # at an epoch's start or end (the batch-size finder's checkpoint: 0 done) any batch size
    # cuts the epoch afresh
    assert len(first_batches(64, {"position": position(32, done=10)})) == 20
    assert len(first_batches(64, {"position": position(32, done=0)})) == 20
    # a checkpoint written before batch sizes were recorded resumes as before
    old = {"batches_done": 5, "epoch_batches": 10}
    assert len(first_batches(32, {"position": old})) == len(full) - 5


def test_a_real_mid_epoch_checkpoint_records_its_batch_size_and_refuses_another(run_train):
    _, first = run_train(
        [*MID_EPOCH, "trainer.max_epochs=-1", "trainer.max_steps=15", "test=false"], "first"
    )
    ckpt = torch.load(first / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["DigitsDataModule"]["position"] == {
        "batches_done": 5,
        "epoch_batches": 10,
        "batch_size": 32,
        "world_size": 1,
        "samples_done": 160,
    }
    with pytest.raises(DataError, match=r"resume with data.batch_size=32, or from a checkpoint"):
        run_train([*MID_EPOCH, "trainer.max_epochs=3", "data.batch_size=64", f"ckpt_path={first}"])
