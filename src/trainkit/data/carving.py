"""How the in-memory DataModules carve their splits: train / val / test indices by seed (stratified
by label when there are labels), and k-fold cross-validation (data.folds, data.fold), where the
validation split is one fold of what the test split leaves."""

from __future__ import annotations

from collections.abc import Sequence

from trainkit.errors import ConfigError, DataError


def check_folds(folds: int | None, fold: int | None) -> tuple[int | None, int | None]:
    """data.folds and data.fold: both or neither, 2 <= folds, 0 <= fold < folds."""
    if folds is None and fold is None:
        return None, None
    if folds is None or fold is None:
        given, missing = ("folds", "fold") if fold is None else ("fold", "folds")
        raise ConfigError(
            f"data.{given} needs data.{missing} too: data.folds=k data.fold=i validates on fold i "
            "(0 to k-1) of k, e.g. data.folds=5 data.fold=0,1,2,3,4 in a sweep."
        )
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"data.folds must be a whole number of at least 2, got {folds!r}.")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise ConfigError(f"data.fold must be 0 to {folds - 1} (data.folds={folds}), got {fold!r}.")
    return folds, fold


def split_indices(
    n: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: Sequence | None = None,
    folds: int | None = None,
    fold: int | None = None,
) -> dict[str, list[int]]:
    """Deterministic train/val/test indices for a seed (stratified by label when given). With
    `folds`, the validation split is fold `fold` of `folds` of what the test split leaves
    (scikit-learn's KFold, or StratifiedKFold with labels, shuffled with the seed): the test
    split is the same for every fold, and val_fraction is not used."""
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    idx = list(range(n))
    n_test = round(n * test_fraction)
    n_val = round(n * val_fraction)
    if n - n_test - n_val <= 0:
        raise DataError(f"{n} samples cannot be split into non-empty train/val/test sets.")
    labels = list(stratify) if stratify is not None else None
    rest, test = (
        (idx, [])
        if n_test == 0
        else train_test_split(idx, test_size=n_test, random_state=seed, stratify=labels)
    )
    rest_labels = [labels[i] for i in rest] if labels is not None else None
    if folds:
        splitter = (StratifiedKFold if labels is not None else KFold)(
            n_splits=folds, shuffle=True, random_state=seed
        )
        if len(rest) < folds:
            raise DataError(f"{len(rest)} samples cannot be split into {folds} folds.")
        parts = list(splitter.split(rest, rest_labels))[fold]
        train, val = ([rest[i] for i in part] for part in parts)
        return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}
    train, val = (
        (rest, [])
        if n_val == 0
        else train_test_split(rest, test_size=n_val, random_state=seed, stratify=rest_labels)
    )
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}
