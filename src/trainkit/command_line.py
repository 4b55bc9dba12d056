"""The command line before Hydra sees it: a fast `--help` for train.py and eval.py, and a
"did you mean ...?" for an override whose key is not in the config. Both read the files of
conf/ directly (milliseconds) instead of composing the config (seconds); trainkit.cli.start
calls them.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml

HELP = {
    "train": """trainkit: train a model with PyTorch Lightning, configured by Hydra.

  python train.py model=cnn trainer.max_epochs=5      pick a model, change a value
  python train.py -m model=cnn data.batch_size=32,64 trainer.max_epochs=3,5   a sweep
  python train.py --cfg job                          print the composed config
  python eval.py --help                              re-test or predict from a checkpoint

Config groups (group=option), from {conf}:
{groups}
Also: hydra/launcher=joblib|submitit_slurm|submitit_local, hydra/sweeper=optuna
(python train.py --hydra-help lists Hydra's own options).

Runs are written to logs/<task_name>/runs/<time>/ (their curves to logs/tensorboard/);
view them with: tensorboard --logdir logs
""",
    "eval": """trainkit eval: re-test a checkpoint on a split, or write its predictions.

  python eval.py ckpt_path=logs/train/runs/<time>            the run's best checkpoint, test split
  python eval.py ckpt_path=<run dir or .ckpt file> split=val
  python eval.py ckpt_path=<run dir> predict=true            predictions_<split>.csv
  python eval.py ckpt_path=<run dir> data=mnist               another dataset of the same shape

Settings (conf/eval.yaml):
{settings}
The model, its data, seed and split come from the checkpoint. Results: logs/eval/runs/<time>/
(eval.json, predictions).
""",
}


def print_help(conf_dir: str | Path, config_name: str = "train") -> None:
    """`--help` without Hydra's help, which composes every config group (about two seconds):
    this only reads the files of conf/ (a few milliseconds)."""
    conf = Path(conf_dir)
    if config_name == "eval":
        settings, comment = [], []
        for line in (conf / "eval.yaml").read_text().splitlines():
            if line.startswith("# "):
                comment.append(line[2:].strip())
            elif line and line[0].isalpha() and not line.startswith(("defaults", "trainer")):
                key, _, value = line.partition(":")
                setting = f"{key}={value.strip()}"
                settings.append(f"  {setting:<18} {' '.join(comment)}".rstrip())
                comment = []
            else:
                comment = []
        print(HELP["eval"].format(settings="\n".join(settings)))
        return
    groups = []
    for folder in sorted(p for p in conf.rglob("*") if p.is_dir() and p.name != "hydra"):
        options = sorted(f.stem for f in folder.glob("*.yaml"))
        if options:
            groups.append(f"  {folder.relative_to(conf).as_posix()}: {', '.join(options)}")
    print(HELP["train"].format(conf=conf, groups="\n".join(groups)))


def known_keys(conf_dir: Path, config_name: str) -> set[str]:
    """Every key of the entry config and of the files of its config groups, as dotted paths
    (trainer.max_epochs, data.batch_size, ...): a cheap index, read from conf/ without Hydra.
    A group whose files hold named objects (callbacks.early_stopping._target_, ...) is listed
    as `<group>.*` too: a new name under it is a new object, not a typo."""
    conf = Path(conf_dir)
    keys: set[str] = set()
    named_objects: dict[str, bool] = {}
    # libyaml's loader where PyYAML has it: several times faster than the pure-Python one; this
    # runs before every run that has an override
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k != "defaults":
                    keys.add(f"{prefix}{k}")
                    walk(v, f"{prefix}{k}.")

    walk(yaml.load((conf / f"{config_name}.yaml").read_text(), loader) or {}, "")
    for path in conf.glob("*/**/*.yaml"):
        group = path.relative_to(conf).parts[0]
        keys.add(group)
        if group in ("hydra", "experiment", "debug", "hparams_search"):
            continue
        text = path.read_text()
        if "@package _global_" not in text:
            node = yaml.load(text, loader) or {}
            walk(node, f"{group}.")
            entries = [v for k, v in node.items() if k != "defaults"]
            if entries:
                named = all(isinstance(v, dict) and "_target_" in v for v in entries)
                named_objects[group] = named_objects.get(group, True) and named
    keys |= {f"{group}.*" for group, named in named_objects.items() if named}
    return keys


def mistyped_key(args: list[str], conf_dir: Path, config_name: str) -> str | None:
    """A sentence for an override whose key is not in the config but close to one that is:
    `max_epochs=5` -> trainer.max_epochs, `+trainer.epochs=5` -> trainer.max_epochs. None when
    every key is known or new on purpose (Hydra reports the rest): a model's or dataset's own
    argument (`+model.num_classes=10`), or a new object of a group of named objects
    (`+callbacks.mine._target_=pkg.MyCallback`, `+logger.csv._target_=...`)."""
    keys = None
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, _, value = arg.partition("=")
        name = key.lstrip("+~")
        if name.startswith("hydra.") or "/" in name or "@" in name:
            continue
        keys = keys if keys is not None else known_keys(conf_dir, config_name)
        if name in keys or any(k.startswith(f"{name}.") for k in keys):
            continue
        group, _, rest = name.partition(".")
        if group in ("model", "data") and key.startswith("+"):
            continue  # a model's or dataset's own argument (its __init__ says if it is wrong)
        entry = f"{group}.{rest.partition('.')[0]}"
        new_object = f"{group}.*" in keys and rest and entry not in keys
        if new_object and key.startswith("+"):
            continue  # Hydra's `+`: a new key on purpose (Hydra reports a clash)
        if new_object:
            return (
                f"{entry} is not in the config; to add it, write +{name}={value} (Hydra's + "
                f"adds a new key), and +{entry}.<argument>=... for its arguments."
            )
        nested = sorted(k for k in keys if k.endswith(f".{name}"))
        close = nested or difflib.get_close_matches(name, sorted(keys), n=2, cutoff=0.75)
        if close:
            return (
                f"{key} is not a setting; did you mean "
                + " or ".join(f"{k}={value}" for k in close[:2])
                + "?"
            )
    return None


def quote_value(value: str) -> str:
    """`value` as a Hydra override value: as it is when Hydra's grammar reads it so, else quoted
    (paths and folder names may hold `=`, `,`, spaces or non-ASCII letters, which the grammar
    reads only in quotes; backslashes are doubled only before a quote and at the end)."""
    if re.fullmatch(r"[A-Za-z0-9_./+@%:~-]+", value):
        return value
    escaped = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    return "'" + re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped) + "'"


def unquoted_space(args: list[str]) -> str | None:
    """A sentence for a value the shell split at a space (`ckpt_path=/my runs/x` typed without
    quotes arrives as `ckpt_path=/my` and `runs/x`), naming the quoting that keeps it whole."""
    for before, arg in zip(args, args[1:], strict=False):
        override = "=" in before and not before.startswith("-")
        if override and not arg.startswith("-") and "=" not in arg:
            return (
                f"{arg} is not a setting (key=value): the shell split a value at a space; "
                f"quote it whole: '{before} {arg}'."
            )
    return None
