"""The record of what a run's train/val/test splits are, and the check that a resume or eval.py
rebuilds the same ones.

The splits are carved by position and seed (`split_indices`), so the same rows in another order,
a few rows more, another seed or other fractions all carve other splits - and a test split that
then holds training samples scores far too well, with exit 0. So every in-memory DataModule
records, in its checkpoints (`state_dict`) and in metrics.json (`data_report.splits`):

- `source`: where the data comes from - the sha256 of every file a user gives, or a built-in
  dataset's name and version (the generator's parameters for generated data);
- `seed`, `val_fraction`, `test_fraction`, `folds` (`{"fold": i, "of": k}` with data.folds,
  when val_fraction is null): what carved the splits (and `carved_by`, the scikit-learn that did);
- `samples`, `content` (a digest of the sorted per-sample hashes: the multiset of samples) and
  `order` (of the hashes in the order the splits serve them);
- `splits`: each split's size and the digest of its sorted per-sample hashes (its membership).

A sample's hash is 8 bytes of BLAKE2b of its content (a CSV row's fields, an image file's bytes
and class, a text and its label, a tensor row). A restored record is compared with the one built
now: identical carries on; anything else is one DataError naming what changed (the seed, the
fold, the fractions, rows added or removed, rows reordered) and how to go on on purpose.
"""

from __future__ import annotations

import hashlib
import math
import shlex
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from trainkit.errors import DataError


def keys_of(items: Iterable[bytes | memoryview | np.ndarray]) -> torch.Tensor:
    """Per-sample hashes: 8 bytes of BLAKE2b of each item, as int64 (what a tensor holds)."""
    blake2b = hashlib.blake2b
    raw = b"".join(blake2b(item, digest_size=8).digest() for item in items)
    return torch.from_numpy(np.frombuffer(raw, dtype="<i8").astype(np.int64))


def text_keys(texts: Iterable[str], labels: Iterable[str]) -> torch.Tensor:
    """Per-sample hashes of labelled texts (text and label name)."""
    return keys_of(
        f"{text}\x1f{label}".encode("utf-8", "surrogatepass")
        for text, label in zip(texts, labels, strict=True)
    )


def row_keys(rows: Iterable[list[str]]) -> torch.Tensor:
    """Per-row hashes of a table's rows (every field, as read)."""
    return keys_of("\x1f".join(row).encode("utf-8", "surrogatepass") for row in rows)


def tensor_keys(*tensors: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Per-row hashes of tensors of equal length (row i of each, as bytes)."""
    flat = [t.detach().cpu().contiguous().reshape(len(t), math.prod(t.shape[1:])) for t in tensors]
    parts = [t.view(torch.uint8).numpy() for t in flat]  # any dtype, as its bytes
    keys = [torch.zeros(0, dtype=torch.int64)]
    for start in range(0, len(tensors[0]), chunk):  # one row of bytes per sample, a chunk at once
        rows = np.concatenate([p[start : start + chunk] for p in parts], axis=1)
        keys.append(keys_of(rows))
    return torch.cat(keys)


def digest(keys: torch.Tensor) -> str:
    return hashlib.sha256(keys.numpy().tobytes()).hexdigest()


def build(
    source: dict[str, Any],
    seed: int,
    fractions: tuple[float | None, float],
    keys: dict[str, torch.Tensor],
    folds: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The record of splits whose samples have the hashes `keys` ({split: hashes in its order});
    `folds`: (fold, of) when the validation split is a cross-validation fold."""
    import sklearn

    every = torch.cat(list(keys.values())) if keys else torch.zeros(0, dtype=torch.int64)
    return {
        "source": source,
        "seed": seed,
        "val_fraction": fractions[0],
        "test_fraction": fractions[1],
        "folds": {"fold": folds[0], "of": folds[1]} if folds else None,
        "carved_by": f"scikit-learn {sklearn.__version__}",
        "samples": len(every),
        "content": digest(every.sort().values),
        "order": digest(every),
        "splits": {
            name: {"size": len(k), "digest": digest(k.sort().values)} for name, k in keys.items()
        },
    }


def same_splits(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return (old["seed"], old["order"], old["splits"]) == (new["seed"], new["order"], new["splits"])


def check(
    old: dict[str, Any],
    new: dict[str, Any],
    old_keys: torch.Tensor | None = None,
    new_keys: torch.Tensor | None = None,
    unit: str = "samples",
    config: str | None = None,
) -> None:
    """Raise a DataError of one sentence when `new` does not rebuild the splits of `old`."""
    if same_splits(old, new):
        return
    seed, where = new["seed"], describe_source(old["source"], new["source"])
    if old["seed"] != seed:
        what = (
            f"the data is split and shuffled with seed {seed} but the run was trained with seed "
            f"{old['seed']}, so its validation and test splits would hold training {unit}"
        )
        fix = f"resume or evaluate with seed={old['seed']}"
        extra = f"seed={seed}"
    elif old.get("folds") != new.get("folds"):
        what = (
            f"{describe_folds(new)} validates on other {unit} than the run "
            f"({describe_folds(old)}), so its validation split would hold training {unit}"
        )
        fix = "resume or evaluate with " + (fold_settings(old) or "no data.folds / data.fold")
        extra = fold_settings(new)
    elif old["val_fraction"] != new["val_fraction"] or old["test_fraction"] != new["test_fraction"]:
        keys = ("val_fraction", "test_fraction")
        changed = [f"data.{k}={new[k]:g} (the run's: {old[k]:g})" for k in keys if old[k] != new[k]]
        what = (
            f"{' and '.join(changed)} {'carves' if len(changed) == 1 else 'carve'} other splits "
            f"than the run's, so its test split would hold training {unit}"
        )
        fix = f"resume or evaluate with {' '.join(f'data.{k}={old[k]:g}' for k in keys)}"
        extra = " ".join(f"data.{k}={new[k]:g}" for k in keys if old[k] != new[k])
    elif old["content"] != new["content"]:
        counted = changes(old, new, old_keys, new_keys, unit)
        what = f"{where} changed since the run was trained ({counted}), so its splits differ"
        fix, extra = "resume or evaluate with the data the run was trained with", ""
    elif old["order"] != new["order"]:
        what = (
            f"{where} holds the same {new['samples']} {unit} as when the run was trained but in "
            f"another order ({unit} reordered), and the splits are carved by position, so its "
            f"test split would hold training {unit}"
        )
        fix, extra = f"put the {unit} back in their order", ""
    else:
        what = (
            f"{where} holds the same {unit} in the same order, with the same seed and fractions, "
            f"but the splits carved now differ from the run's (carved by {new['carved_by']} now, "
            f"by {old['carved_by']} then)"
        )
        fix, extra = f"resume or evaluate with {old['carved_by']}", ""
    command = " ".join(["python eval.py ckpt_path=<run>", *data_settings(new, config), extra])
    raise DataError(
        f"{what}: {fix}, or evaluate on a deliberate new test set with `{command.strip()} ...` "
        "(which does not reuse the run's split)."
    )


def describe_folds(record: dict[str, Any]) -> str:
    """ "fold 2 of 5" or "no folds" (val_fraction=0.15)."""
    folds = record.get("folds")
    if folds:
        return f"fold {folds['fold']} of {folds['of']}"
    return f"no folds (val_fraction={record['val_fraction']:g})"


def fold_settings(record: dict[str, Any]) -> str:
    folds = record.get("folds")
    return f"data.folds={folds['of']} data.fold={folds['fold']}" if folds else ""


def data_settings(record: dict[str, Any], config: str | None) -> list[str]:
    """`data=<config>` and the settings that name its files, for a command in a message."""
    files: dict[str, list[str]] = {}
    for f in record["source"].get("files", []):
        files.setdefault(f["key"], []).append(f["path"])
    named = [
        f"data.{k}={p[0] if len(p) == 1 else '[' + ','.join(p) + ']'}" for k, p in files.items()
    ]
    return [f"data={config or '<its config>'}", *(shlex.quote(s) for s in named)]


def changes(
    old: dict[str, Any], new: dict[str, Any], old_keys: Any, new_keys: Any, unit: str
) -> str:
    """'30 rows added, 2 removed: 328 rows now, 300 then', counted from the stored hashes when
    the checkpoint has them, else the numbers."""
    counts = f"{new['samples']} {unit} now, {old['samples']} then"
    if old_keys is None or new_keys is None:
        return f"{counts}, of other content"
    was, now = Counter(old_keys.tolist()), Counter(new_keys.tolist())
    added, removed = sum((now - was).values()), sum((was - now).values())
    return f"{added} {unit} added, {removed} removed: {counts}"


def describe_source(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The data named for a message: its files (those whose content changed), else the dataset
    and what differs of its description."""
    files = new.get("files")
    if files:
        before = {f.get("sha256") for f in old.get("files", [])}
        changed = [f for f in files if f.get("sha256") not in before] or files
        return ", ".join(f"{f['path']} (data.{f['key']})" for f in changed)
    name = new.get("dataset", "the data")
    differ = [f"{k} {new.get(k)} now, {old.get(k)} then" for k in new if new.get(k) != old.get(k)]
    return f"{name} ({'; '.join(differ)})" if differ else name
