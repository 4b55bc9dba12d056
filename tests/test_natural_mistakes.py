"""A newcomer's natural first mistakes end with one sentence that names the fix: a `_target_`
that cannot be imported (their own code without PYTHONPATH, a typo), the SLURM launcher off a
cluster, and trainer=ddp (GPUs) on a machine without one."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from helpers import QUIET, make_cfg, run_script

from trainkit.cli import user_error
from trainkit.errors import ConfigError

PYTHONPATH_FIX = "add its folder to PYTHONPATH or put it under src/"


def reported(run, *args) -> str:
    """The sentence run_job prints for what `run(*args)` raises."""
    with pytest.raises(Exception) as info:
        run(*args)
    err = user_error(info.value)
    assert isinstance(err, ConfigError), repr(info.value)
    return str(err)


def test_own_model_without_pythonpath_names_the_module_and_the_fix(tmp_path: Path):
    from trainkit.training import train

    cfg = make_cfg(["model=cnn", "model._target_=my_package.Net", *QUIET], tmp_path / "run")
    said = reported(train, cfg)
    assert said.startswith("could not import the _target_ my_package.Net: there is no module ")
    assert f"my_package on the Python path; {PYTHONPATH_FIX}." in said


def test_own_dataset_typo_and_broken_module_each_name_what_is_wrong(tmp_path: Path, monkeypatch):
    from trainkit.training import train

    def sentence(target: str) -> str:
        cfg = make_cfg([f"data._target_={target}", *QUIET], tmp_path / target)
        return reported(train, cfg)

    assert sentence("trainkit.data.digits.DigitsDataModul").endswith(
        "module trainkit.data.digits has no DigitsDataModul; check the spelling (a typo in the "
        "_target_?)."
    )
    # a package that is found, but whose own import fails on something not installed
    (tmp_path / "needs_dep").mkdir()
    (tmp_path / "needs_dep" / "__init__.py").write_text("import not_installed_dep\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    said = sentence("needs_dep.Data")
    sys.modules.pop("needs_dep", None)
    assert "importing needs_dep failed (ModuleNotFoundError: No module named " in said
    assert "'not_installed_dep'); install what it needs." in said


def test_eval_of_an_own_model_without_pythonpath_is_one_sentence(tmp_path: Path, monkeypatch):
    """The checkpoint names my_project.models.Net; where its code cannot be found any more (no
    PYTHONPATH, its folder moved), eval.py says which module and how to make it importable."""
    from trainkit.evaluation import evaluate
    from trainkit.training import train

    (tmp_path / "my_project").mkdir()
    (tmp_path / "my_project" / "__init__.py").write_text("")
    (tmp_path / "my_project" / "models.py").write_text(
        "from trainkit.models.regression import Regressor\n\n\nclass Net(Regressor):\n    pass\n"
    )
    with monkeypatch.context() as m:
        m.syspath_prepend(str(tmp_path))
        args = ["model=regression", "model._target_=my_project.models.Net", "trainer.max_epochs=1"]
        train(make_cfg([*args, "trainer.limit_train_batches=2", *QUIET], tmp_path / "run"))
    for name in ("my_project.models", "my_project"):
        sys.modules.pop(name, None)
    shutil.rmtree(tmp_path / "my_project")  # moved or deleted: no folder to find it in either
    cfg = make_cfg([f"ckpt_path={tmp_path / 'run'}"], tmp_path / "eval", "eval")
    said = reported(evaluate, cfg)
    assert "my_project.models.Net: there is no module my_project on the Python path" in said
    assert said.endswith(f"{PYTHONPATH_FIX}.")


def test_slurm_launcher_off_a_cluster_is_one_sentence(tmp_path: Path):
    """Where submitit itself fails (`Could not detect "srun"`), the sweep stops before Hydra's
    launcher starts, with one sentence; with an `srun` on PATH nothing is said."""
    from submitit.slurm.slurm import SlurmExecutor

    from trainkit.mistakes import launcher_problem

    cfg = make_cfg(["hydra/launcher=submitit_slurm"], tmp_path / "run")
    if SlurmExecutor.affinity() > 0:
        pytest.skip("this machine has SLURM's srun")
    with pytest.raises(RuntimeError, match='Could not detect "srun"'):
        SlurmExecutor(folder=tmp_path / "submitit")  # submitit's own path, which we pre-empt
    assert launcher_problem(cfg).startswith("no SLURM here: hydra/launcher=submitit_slurm ")
    out = run_script(["-m", "hydra/launcher=submitit_slurm", "model=regression"], tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: no SLURM here: ")
    fake = tmp_path / "bin" / "srun"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    path = os.environ["PATH"]
    try:
        os.environ["PATH"] = f"{fake.parent}{os.pathsep}{path}"
        assert launcher_problem(cfg) is None  # a cluster: the launcher goes ahead
    finally:
        os.environ["PATH"] = path
    assert launcher_problem(make_cfg(["hydra/launcher=joblib"], tmp_path / "j")) is None


@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        (
            ["trainer=ddp", "trainer.devices=2", "trainer.sync_batchnorm=true"],
            "no GPU here; trainer=ddp_cpu runs DDP on the CPU (trainer=ddp runs one process per "
            "GPU).",
        ),
        (
            ["trainer.accelerator=gpu"],
            "could not build the trainer from its config (no GPU here, and trainer.accelerator "
            "asks for one: trainer.accelerator=auto or cpu runs here, trainer=ddp_cpu runs DDP on "
            "the CPU); the command line set trainer.accelerator=gpu.",
        ),
    ],
)
def test_gpu_trainer_without_a_gpu_says_what_runs_here(tmp_path: Path, overrides, sentence):
    import torch

    from trainkit.training import build_trainer

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    cfg = make_cfg(overrides, tmp_path / "run")
    with pytest.raises(ConfigError) as info:
        build_trainer(cfg)
    assert str(info.value) == sentence
