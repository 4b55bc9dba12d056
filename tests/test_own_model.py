"""A LightningModule of your own, exactly as docs/extending.md's "Add your own model" shows it
(the code and the config are read from the guide), gets everything trainkit adds."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from helpers import QUIET, ROOT, make_cfg, run_script, tb_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def readme_block(first_line: str) -> str:
    """The code block of docs/extending.md that starts with `first_line`."""
    blocks = re.findall(r"```\w*\n(.*?)```", (ROOT / "docs" / "extending.md").read_text(), re.S)
    (block,) = [b for b in blocks if b.startswith(first_line)]
    return block


@pytest.fixture
def own_project(tmp_path: Path, monkeypatch) -> Path:
    """my_project/models.py and my_conf/model/mlp.yaml as the guide writes them."""
    (tmp_path / "my_project").mkdir()
    (tmp_path / "my_project" / "models.py").write_text(readme_block("# my_project/models.py"))
    (tmp_path / "my_conf" / "model").mkdir(parents=True)
    (tmp_path / "my_conf" / "model" / "mlp.yaml").write_text(
        readme_block("# my_conf/model/mlp.yaml")
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("my_project.models", None)
    sys.modules.pop("my_project", None)


def test_the_guides_command_composes_the_own_model():
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "docs" / "extending.md").read_text(), re.S)
    command = (
        "PYTHONPATH=/path/to/project python train.py "
        "hydra.searchpath=[file:///path/to/project/my_conf] model=mlp\n"
    )
    assert command in blocks


def test_own_model_gets_everything_trainkit_adds(own_project: Path):
    from trainkit.evaluation import evaluate
    from trainkit.training import train

    def run(overrides: list[str], name: str) -> dict:
        args = [f"hydra.searchpath=[file://{own_project}/my_conf]", "model=mlp", *QUIET]
        return train(
            make_cfg([*args, "trainer.limit_train_batches=10", *overrides], own_project / name)
        )

    straight = run(["trainer.max_epochs=3"], "straight")
    assert straight["status"] == "ok" and straight["model"] == "my_project.models.MLPClassifier"
    # the budget: planned and done
    assert straight["plan"]["iterations"] == straight["iterations"] == 30
    assert straight["validations"] == straight["plan"]["validations"] == 3
    # best (by its val/acc) and last checkpoints; early stopping watches val/acc too
    assert straight["monitor"] == "val/acc" and 0 < straight["best_score"] <= 1
    assert (
        Path(straight["best_model_path"]).is_file() and Path(straight["last_model_path"]).is_file()
    )
    assert set(straight["test"]) == {"acc"} and straight["test"]["acc"] > 0.5
    # TensorBoard: by iteration and by epoch, under the names it logged
    events = EventAccumulator(str(tb_dir(own_project / "straight")))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/acc", "test/acc"} <= tags
    assert {"epoch/train_loss", "epoch/val_loss", "epoch/val_acc"} <= tags
    assert [e.step for e in events.Scalars("epoch/val_acc")] == [1, 2, 3]
    # eval.py rebuilds it from its checkpoint alone
    cfg = make_cfg([f"ckpt_path={own_project / 'straight'}"], own_project / "eval", "eval")
    assert evaluate(cfg)["metrics"]["test/acc"] == pytest.approx(straight["test"]["acc"], abs=1e-6)
    # exact resume: 2 epochs, then on to 3, ends as 3 straight
    args = ["trainer.deterministic=true", "seed=3", "callbacks.early_stopping=null"]
    three = run([*args, "trainer.max_epochs=3"], "three")
    first = run([*args, "trainer.max_epochs=2"], "first")
    resumed = run([*args, "trainer.max_epochs=3", f"ckpt_path={own_project / 'first'}"], "resumed")
    assert first["epochs"] == 2 and resumed["epochs"] == 3
    for stage in ("train", "val", "test"):
        assert resumed[stage] == pytest.approx(three[stage], abs=1e-6), stage
    last = torch.load(resumed["last_model_path"], weights_only=False)
    assert last["hyper_parameters"]["hidden"] == 256  # its own arguments, from its config
    # eval.py as a command, without PYTHONPATH: the checkpoint says where my_project was
    assert last["trainkit"]["code_folders"] == [str(own_project.resolve())]
    out = run_script([f"ckpt_path={own_project / 'straight'}"], own_project, script="eval.py")
    assert out.returncode == 0, out.stderr[-2000:]
    said = out.stdout + out.stderr
    assert f"importing the run's own code from {own_project.resolve()}" in said


def test_a_dimension_the_data_lacks_is_one_sentence(own_project: Path):
    from trainkit.errors import ConfigError
    from trainkit.training import train

    args = [f"hydra.searchpath=[file://{own_project}/my_conf]", "model=mlp", "data=synthetic_text"]
    with pytest.raises(ConfigError, match=r"MLPClassifier needs \['input_shape'\]"):
        train(make_cfg([*args, *QUIET], own_project / "run"))
