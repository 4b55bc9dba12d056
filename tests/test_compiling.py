"""compile=true compiles the network (what forward runs), not Lightning's step methods: a short
compiled run never hits Dynamo's recompile limit, and checkpoints load with and without it."""

from __future__ import annotations

import logging

import pytest
import torch

from trainkit.compiling import compile_network


def test_forward_is_compiled_in_place_and_batch_sizes_share_a_graph():
    from torch._dynamo.utils import counters

    from trainkit.models.regression import Regressor

    torch._dynamo.reset()
    counters.clear()
    model = Regressor(in_features=3)
    names = list(model.state_dict())
    assert compile_network(model) is model and list(model.state_dict()) == names
    x = torch.randn(32, 3)
    eager = Regressor(in_features=3)
    eager.load_state_dict(model.state_dict())
    assert torch.allclose(model(x), eager(x), atol=1e-6)
    for n in (32, 9, 17, 32):  # full, last and odd batches: one graph with a dynamic batch size
        assert model(torch.randn(n, 3)).shape == (n,)
    assert counters["stats"]["unique_graphs"] == 1


@pytest.mark.slow
def test_a_compiled_run_never_hits_the_recompile_limit_and_its_checkpoints_load(
    run_train, caplog, tmp_path
):
    from helpers import make_cfg

    from trainkit.evaluation import evaluate

    torch._dynamo.reset()
    caplog.set_level(logging.WARNING)
    args = ["model=regression", "data.batch_size=32"]
    compiled, compiled_dir = run_train([*args, "trainer.max_epochs=3", "compile=true"], "compiled")
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "recompile_limit" not in said and "cache_size_limit" not in said, said
    assert compiled["status"] == "ok" and compiled["test"]["r2"] > 0.9
    # a compiled run's checkpoint evaluates without compiling...
    cfg = make_cfg([f"ckpt_path={compiled_dir}"], tmp_path / "eval", "eval")
    assert evaluate(cfg)["metrics"]["test/r2"] == pytest.approx(compiled["test"]["r2"], abs=1e-4)
    # ...and a plain run's checkpoint resumes compiled
    plain, plain_dir = run_train([*args, "trainer.max_epochs=2"], "plain")
    resumed, _ = run_train(
        [*args, "trainer.max_epochs=3", "compile=true", f"ckpt_path={plain_dir}"]
    )
    assert resumed["status"] == "ok" and resumed["epochs"] == 3
