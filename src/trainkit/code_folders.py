"""Where a run's own code came from: the folders on PYTHONPATH that hold the packages its config
names (`_target_: my_project.models.MLPClassifier`). Every checkpoint records them, so that
`eval.py ckpt_path=<run dir>` imports the same code without PYTHONPATH (while the folders exist).
Installed packages (site-packages, the standard library) are not recorded."""

from __future__ import annotations

import importlib.util
import logging
import sys
import sysconfig
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def targets(config: Any) -> list[str]:
    """Every `_target_` of a (nested) config."""
    if isinstance(config, dict):
        found = [config["_target_"]] if isinstance(config.get("_target_"), str) else []
        return found + [t for v in config.values() for t in targets(v)]
    if isinstance(config, list):
        return [t for v in config for t in targets(v)]
    return []


def code_folders(config: dict[str, Any]) -> list[str]:
    """The folders that hold the top-level packages of the config's targets, outside the
    installed packages, in the order met."""
    skip = [Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib", "stdlib")]
    skip.append(Path(__file__).resolve().parents[1])  # trainkit's own src/
    folders: list[str] = []
    for target in targets(config):
        folder = _folder_of(target.split(".")[0])
        if folder is not None and not any(folder == p or p in folder.parents for p in skip):
            folders.append(str(folder))
    return list(dict.fromkeys(folders))


def _folder_of(package: str) -> Path | None:
    """The sys.path folder a top-level package or module is imported from (a package without
    __init__.py, as the guide's my_project/, included)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin not in (None, "built-in", "frozen", "namespace"):
        origin = Path(spec.origin).resolve()
        return origin.parent.parent if origin.name == "__init__.py" else origin.parent
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]).resolve().parent if locations else None


def import_from(folders: list[str]) -> None:
    """Put a checkpoint's code folders that exist (and are not there yet) on sys.path."""
    for folder in folders:
        if Path(folder).is_dir() and folder not in sys.path:
            sys.path.insert(0, folder)
            log.info("importing the run's own code from %s (recorded in the checkpoint)", folder)
