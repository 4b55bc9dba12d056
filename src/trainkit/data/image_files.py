"""Image files as they come, for trainkit.data.image_folder: finding the class folders and split
folders of an ImageFolder layout, decoding a file to a fixed size and channel count (one sentence
naming a file that cannot be), and `FileBatches`, the Dataset that decodes a batch of files when
the sampler asks for it.

Every common mode decodes at its true values: 16-bit grey (PNG mode I;16, or I) is scaled by its
bit depth (Pillow's convert("L") would clip everything above 255 to white), alpha (RGBA, LA, a
palette's or a colour key's transparency) is composited on white, as an image viewer shows it,
and a JPEG's EXIF orientation is applied (the image is decoded upright).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from trainkit.errors import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SPLITS = ("train", "val", "test")
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}  # no colour
CHECK_CHUNK = 256  # files per batch of the set-up pass
SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}  # PNG's 16-bit grey, as Pillow opens it
ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}
NAMES = {"1": "1-bit", "L": "8-bit grey", "P": "palette", "CMYK": "CMYK", "YCbCr": "YCbCr"}
ROTATED = "turned upright (EXIF orientation)"


def decode(
    source: str | bytes, size: tuple[int, int], channels: int
) -> tuple[np.ndarray, tuple[str, ...]]:
    """One file (a path or its bytes) as uint8 (H, W, channels) of `size` (H, W): grey (L) or
    RGB at its true values (see the module docstring), bilinear resize; and what was done to it
    beyond the resize, in words ("RGBA (alpha composited on white)", ...; empty when nothing)."""
    from PIL import Image, ImageOps

    wh, mode = (size[1], size[0]), "L" if channels == 1 else "RGB"
    notes: tuple[str, ...] = ()
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        opened = image.mode  # a JPEG's draft may decode colour as grey straight away
        orientation = image.getexif().get(0x0112, 1)  # 1 upright; 5-8 a quarter turn: W, H swap
        image.draft(mode, wh[::-1] if orientation in (5, 6, 7, 8) else wh)  # JPEG: 1/2 .. 1/8
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            image, notes = ImageOps.exif_transpose(image), (ROTATED,)
        image, note = to_mode(image, mode, opened)
    if image.size != wh:
        image = image.resize(wh, Image.Resampling.BILINEAR)
    return np.asarray(image).reshape(size[0], size[1], channels), (note, *notes) if note else notes


def to_mode(image, mode: str, opened: str) -> tuple:
    """`image` in `mode` ("L" or "RGB") at its true values, and what was done to the file's mode,
    `opened`, in words."""
    from PIL import Image

    source = image.mode
    if source in SIXTEEN_BIT:
        values = np.asarray(image).astype(np.float64)
        bits = 16 if source != "I" or values.max(initial=0) <= 65535 else 32
        scaled = np.clip(np.rint(values * 255 / (2**bits - 1)), 0, 255).astype(np.uint8)
        image = Image.fromarray(scaled, "L")
        note = f"{bits}-bit grey (scaled from {bits} bits)"
    elif source in ALPHA or "transparency" in image.info:
        kind = source if source in ALPHA else f"{NAMES.get(source, source)} with transparency"
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
        note = f"{kind} (alpha composited on white)"
    elif opened != mode:
        note = f"{NAMES.get(opened, opened)} ({'to grey' if mode == 'L' else 'to RGB'})"
    else:
        note = ""
    return image.convert(mode), note  # (also when in `mode`: a copy, decoded while open)


def bad_file(path: str, why: str) -> DataError:
    return DataError(
        f"{path} is not a readable image ({why}); replace or delete it, or set data.skip_bad_files"
        "=true to leave unreadable files out (they are listed in the log and in metrics.json)."
    )


@dataclass
class FileBatches(Dataset):
    """Image files decoded a batch at a time: `ds[idx]` -> (uint8 images (n, C, H, W), labels).

    With `check=True` (the set-up pass) a third item holds, per file, its sha256 (of the bytes
    read once, for the split record), what decoding did to it (decode's notes) and why it is
    unreadable (None when it is not; an unreadable file is then a zero image), else an unreadable
    file is a DataError. Paths are a numpy array of bytes, not a list of str: forked workers
    would copy a list page by page as they touch its reference counts.
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
        files = []
        for row, i in enumerate(idx.tolist()):
            path = os.fsdecode(self.paths[i])
            sha256, notes = "", ()
            try:
                source = Path(path).read_bytes() if self.check else path  # read once, hashed
                sha256 = hashlib.sha256(source).hexdigest() if self.check else ""
                x[row], notes = decode(source, self.size, self.channels)
            except Exception as err:  # PIL raises OSError, ValueError, SyntaxError, ...
                why = " ".join(f"{type(err).__name__}: {err}".replace(f" {path!r}", "").split())
                if not self.check:
                    raise bad_file(path, why[:200]) from err
                files.append((sha256, notes, why[:200]))
                continue
            files.append((sha256, notes, None))
        images = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        return (images, self.labels[idx], files) if self.check else (images, self.labels[idx])


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
