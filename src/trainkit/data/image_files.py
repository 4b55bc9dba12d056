"""Image files as they come, for trainkit.data.image_folder: finding the class folders and split
folders of an ImageFolder layout, decoding a file to a fixed size and channel count (one sentence
naming a file that cannot be), and `FileBatches`, the Dataset that decodes a batch of files when
the sampler asks for it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from trainkit.errors import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SPLITS = ("train", "val", "test")
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}  # PIL modes without colour
CHECK_CHUNK = 256  # files per batch of the set-up pass


def decode(path: str, size: tuple[int, int], channels: int) -> np.ndarray:
    """One file as uint8 (H, W, channels) of `size` (H, W): grey (L) or RGB, bilinear resize."""
    from PIL import Image

    wh, mode = (size[1], size[0]), "L" if channels == 1 else "RGB"
    with Image.open(path) as image:
        image.draft(mode, wh)  # JPEG: decode at 1/2, 1/4 or 1/8 scale when still >= the size
        image = image.convert(mode)
    if image.size != wh:
        image = image.resize(wh, Image.Resampling.BILINEAR)
    return np.asarray(image).reshape(size[0], size[1], channels)


def bad_file(path: str, why: str) -> DataError:
    return DataError(
        f"{path} is not a readable image ({why}); replace or delete it, or set data.skip_bad_files"
        "=true to leave unreadable files out (they are listed in the log and in metrics.json)."
    )


@dataclass
class FileBatches(Dataset):
    """Image files decoded a batch at a time: `ds[idx]` -> (uint8 images (n, C, H, W), labels).

    With `check=True` an unreadable file is a zero image plus (row, why) in a third item, else a
    DataError. Paths are a numpy array of bytes, not a list of str: forked workers would copy a
    list page by page as they touch its reference counts.
    """

    paths: np.ndarray
    labels: torch.Tensor
    size: tuple[int, int]
    channels: int
    check: bool = False

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, idx: torch.Tensor) -> tuple:
        x = np.zeros((len(idx), *self.size, self.channels), dtype=np.uint8)
        errors = []
        for row, i in enumerate(idx.tolist()):
            path = os.fsdecode(self.paths[i])
            try:
                x[row] = decode(path, self.size, self.channels)
            except Exception as err:  # PIL raises OSError, ValueError, SyntaxError, ...
                why = " ".join(f"{type(err).__name__}: {err}".replace(f" {path!r}", "").split())
                if not self.check:
                    raise bad_file(path, why[:200]) from err
                errors.append((row, why[:200]))
        images = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        return (images, self.labels[idx], errors) if self.check else (images, self.labels[idx])


def class_folders(folder: Path) -> dict[str, list[str]]:
    """{class: its image files (recursively, in torchvision's order)}; hidden folders skipped."""
    classes = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        walk = sorted(os.walk(d, followlinks=True))
        files = [os.path.join(r, f) for r, _, fs in walk for f in sorted(fs)]
        classes[d.name] = [f for f in files if f.lower().endswith(EXTENSIONS)]
        if not classes[d.name]:
            raise DataError(
                f"class folder {d} has no images ({', '.join(EXTENSIONS)}; {len(files)} other "
                "files); add its images or remove the folder."
            )
    return classes


def read_layout(root: Path) -> dict[str, dict[str, list[str]]]:
    """{split: {class: files}} of <root>/train, val, test when there is a train folder, else
    {"all": {class: files}} of the class folders in <root>."""
    if not root.is_dir():
        raise DataError(
            f"image folder {root} (data.path) does not exist; check the path (a relative path "
            f"is relative to the directory you launch from, {Path.cwd()})."
        )
    subdirs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    present = [s for s in SPLITS if s in subdirs]
    other = next((d for d in subdirs if d not in SPLITS), None)
    if present and ("train" not in present or other):
        raise DataError(
            f"{root} holds {', '.join(f'{d}/' for d in subdirs)}: either only class folders, or "
            "train/ (and val/, test/) with the class folders inside; rename or move the others."
        )
    layout = {s: class_folders(root / s) for s in present} or {"all": class_folders(root)}
    classes = next(iter(layout.values()))
    if len(classes) < 2:
        raise DataError(
            f"{root / 'train' if present else root} has {len(classes)} class folder(s) "
            f"({', '.join(classes) or 'none'}) but a classifier needs at least two: put each "
            f"class's images in a folder of its own, <class>/*.png."
        )
    for split in present[1:]:
        for c in sorted(set(classes) ^ set(layout[split])):
            has, lacks = ("train", split) if c in classes else (split, "train")
            raise DataError(
                f"{root / lacks} has no folder for class {c!r}, which {root / has} has; give "
                f"every split folder the same classes, or remove {root / split} (then carved)."
            )
    return layout


def detect_channels(paths: np.ndarray) -> int:
    """3 when any file is in colour (a palette counts as colour), else 1, from the files' headers,
    stopping at the first colour one (an unreadable file is left to the decoding pass)."""
    from PIL import Image

    for path in paths:
        with contextlib.suppress(Exception), Image.open(os.fsdecode(path)) as image:
            if image.mode not in GREY_MODES:
                return 3
    return 1
