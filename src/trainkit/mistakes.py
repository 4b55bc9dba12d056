"""Natural first mistakes, each turned into one sentence that names the fix: a `_target_` that
cannot be imported (your own model or dataset without PYTHONPATH, or a typo), a Trainer that asks
for a GPU on a machine without one, and the SLURM launcher off a cluster. trainkit.cli reports
them; nothing here imports torch."""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainkit.errors import ConfigError

# Hydra's words for a `_target_` it could not locate (hydra.utils.get_class / instantiate)
_LOCATE = re.compile(r"Error (?:loading|locating target) '([\w.]+)'")


def target_error(err: BaseException) -> ConfigError | None:
    """One sentence when `err` (or an error it was raised from) is Hydra failing to import a
    `_target_`: which module is missing, or which name it lacks, and what to do."""
    seen: BaseException | None = err
    while seen is not None:
        found = _LOCATE.search(str(seen))
        if found:
            return ConfigError(
                f"could not import the _target_ {found[1]}: {import_problem(found[1])}."
            )
        seen = seen.__cause__ or seen.__context__
    return None


def import_problem(path: str) -> str:
    """What stops `path` (a dotted `_target_`) from importing, re-traced step by step as Hydra's
    locate does: a module that is not on the Python path, a module whose own import fails, or a
    name the module does not have."""
    from importlib import import_module
    from types import ModuleType

    from trainkit.cli import one_line

    parts = path.split(".")
    obj: Any = None
    for i, part in enumerate(parts):
        name, parent = ".".join(parts[: i + 1]), ".".join(parts[:i])
        if i and hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        if i and not isinstance(obj, ModuleType):
            return f"{parent} has no attribute {part}; check the spelling"
        try:
            obj = import_module(name)
        except ModuleNotFoundError as missing:
            if missing.name != name:  # the module exists; something it imports does not
                return f"importing {name} failed ({one_line(missing)}); install what it needs"
            if i == 0:
                return (
                    f"there is no module {name} on the Python path; add its folder to PYTHONPATH "
                    "or put it under src/"
                )
            return f"module {parent} has no {part}; check the spelling (a typo in the _target_?)"
        except Exception as broken:  # the module's own code raised while importing
            return f"importing {name} failed ({one_line(broken)})"
    return "Hydra could not locate it, though it imports now"


def no_gpu(cause: BaseException) -> bool:
    """Lightning's refusals of accelerator=gpu / cuda on a machine without one."""
    text = str(cause)
    return "No supported gpu backend found" in text or (
        "CUDAAccelerator" in text and "not available" in text
    )


def launcher_problem(config: DictConfig) -> str | None:
    """One sentence when the sweep's launcher cannot run on this machine: submitit's SLURM
    launcher off a cluster (submitit's own test: is there an `srun`?), said before Hydra's
    launcher fails with a traceback."""
    target = str(OmegaConf.select(config, "hydra.launcher._target_") or "")
    if not target.endswith("submitit_launcher.SlurmLauncher"):
        return None
    from submitit.slurm.slurm import SlurmExecutor

    if SlurmExecutor.affinity() > 0:
        return None
    return (
        "no SLURM here: hydra/launcher=submitit_slurm hands each job to SLURM (sbatch, srun), "
        "which this machine does not have; run the command on the cluster's login node, or "
        "leave hydra/launcher=submitit_slurm out to run the jobs here (hydra/launcher=joblib: "
        "several at once)."
    )
