"""data=image_folder decodes images of every common mode at their true values: 8- and 16-bit grey,
RGB, RGBA and LA (alpha composited on white), palettes (with transparency too), EXIF-rotated
JPEGs; a folder of mixed modes says in one line how its files were converted."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainkit.data.image_files import decode
from trainkit.data.image_folder import ImageFolderDataModule

FULL16 = 65535


def palette_image(transparent: bool) -> Image.Image:
    image = Image.new("P", (6, 4), 1)
    image.putpalette([0, 0, 0, 200, 100, 50, 10, 20, 30] + [0] * (256 * 3 - 9))
    image.paste(2, (0, 0, 3, 4))  # left half: colour 2, right half: colour 1
    if transparent:
        image.info["transparency"] = 1
    return image


# (image, channels, the decoded value of every pixel or of the (left, right) halves)
MODES = {
    "L": (Image.new("L", (6, 4), 100), 1, 100),
    "16-bit grey 0.15": (Image.fromarray(np.full((4, 6), round(0.15 * FULL16), np.uint16)), 1, 38),
    "16-bit grey 0.6": (Image.fromarray(np.full((4, 6), round(0.6 * FULL16), np.uint16)), 1, 153),
    "16-bit grey as RGB": (Image.fromarray(np.full((4, 6), FULL16, np.uint16)), 3, (255,) * 3),
    "RGB": (Image.new("RGB", (6, 4), (10, 200, 30)), 3, (10, 200, 30)),
    "RGB as grey": (Image.new("RGB", (6, 4), (90, 90, 90)), 1, 90),
    "RGBA opaque": (Image.new("RGBA", (6, 4), (10, 200, 30, 255)), 3, (10, 200, 30)),
    "RGBA transparent": (Image.new("RGBA", (6, 4), (10, 200, 30, 0)), 3, (255, 255, 255)),
    "RGBA half": (Image.new("RGBA", (6, 4), (0, 100, 200, 128)), 3, (127, 177, 227)),
    "LA opaque": (Image.new("LA", (6, 4), (60, 255)), 1, 60),
    "LA transparent": (Image.new("LA", (6, 4), (60, 0)), 1, 255),
    "P": (palette_image(False), 3, ((10, 20, 30), (200, 100, 50))),
    "P with transparency": (palette_image(True), 3, ((10, 20, 30), (255, 255, 255))),
}


@pytest.mark.parametrize("name", MODES)
def test_every_mode_decodes_at_its_true_values(tmp_path: Path, name: str) -> None:
    image, channels, expected = MODES[name]
    path = tmp_path / "image.png"
    image.save(path, **({"transparency": 1} if "transparency" in image.info else {}))
    x, _ = decode(str(path), (4, 6), channels)
    halves = expected if isinstance(expected, tuple) and len(expected) == 2 else (expected,) * 2
    for half, value in zip((x[:, :3], x[:, 3:]), halves, strict=True):
        value = np.broadcast_to(np.array(value, dtype=np.int64), (channels,))
        assert np.abs(half.astype(np.int64) - value).max() <= 1, (name, half[0, 0], value)
    # decoded from the bytes (the set-up pass, which hashes them) it is the same
    assert np.array_equal(decode(path.read_bytes(), (4, 6), channels)[0], x)


def test_an_exif_rotated_jpeg_is_decoded_upright(tmp_path: Path) -> None:
    # stored 40 wide x 20 high, left half dark; orientation 6 = "turn 90 degrees clockwise to
    # view": upright it is 20 wide x 40 high with the dark half on top
    stored = Image.new("L", (40, 20), 230)
    stored.paste(20, (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    x, notes = decode(str(tmp_path / "turned.jpg"), (40, 20), 1)
    assert x[:16].mean() < 60 and x[24:].mean() > 190  # top dark, bottom light
    assert notes == ("turned upright (EXIF orientation)",)


def test_a_folder_of_mixed_modes_says_once_how_they_were_converted(tmp_path, caplog) -> None:
    for k, name in enumerate(("a", "b")):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(4):
            Image.new("RGB", (5, 5), (40 * k, 90, 20)).save(folder / f"rgb{i}.png")
        Image.new("RGBA", (5, 5), (1, 2, 3, 0)).save(folder / "alpha.png")
        grey16 = np.full((5, 5), 30000 + 1000 * k, np.uint16)
        Image.fromarray(grey16).save(folder / "grey16.png")
    with caplog.at_level(logging.INFO, logger="trainkit.data.image_folder"):
        dm = ImageFolderDataModule(path=str(tmp_path), image_size=5, val_fraction=0.0)
        dm.setup()
    lines = [r.message for r in caplog.records if "converted to" in r.message]
    assert len(lines) == 1
    assert re.search(
        r"converted to RGB: 2 16-bit grey \(scaled from 16 bits\), 2 RGBA \(alpha composited on "
        r"white\)$",
        lines[0],
    )
    assert dm.report["converted"] == {
        "16-bit grey (scaled from 16 bits)": 2,
        "RGBA (alpha composited on white)": 2,
    }
    x = dm.splits["train"][0]
    assert x.max() == 255 and sorted(set(x[:, 0, 0, 0].tolist())) == [0, 40, 117, 121, 255]


def test_16_bit_classes_that_differ_in_brightness_are_learned(tmp_path, run_train, caplog):
    """The issue's case: 0.15 and 0.6 of full scale, saved as 16-bit PNGs, clipped to white by a
    plain convert("L"), which left nothing to learn (mean [1.0], std [0.0], chance accuracy)."""
    rng, root = np.random.default_rng(0), tmp_path / "images"
    for name, level in (("dim", 0.15), ("bright", 0.6)):
        (root / name).mkdir(parents=True)
        for i in range(30):
            noise = rng.normal(0, 0.03 * FULL16, (12, 12))
            values = np.clip(level * FULL16 + noise, 0, FULL16).astype(np.uint16)
            Image.fromarray(values).save(root / name / f"{i:02d}.png")
    args = ["model=cnn", "data=image_folder", f"data.path={root}", "data.image_size=12"]
    with caplog.at_level(logging.INFO, logger="trainkit.data.images"):
        summary, _ = run_train([*args, "trainer.max_epochs=8", "data.batch_size=8"])
    line = next(r.message for r in caplog.records if "normalisation from" in r.message)
    mean, std = (float(v) for v in re.search(r"mean \[(.+)\], std \[(.+)\]", line).groups())
    assert mean == pytest.approx((0.15 + 0.6) / 2, abs=0.02)  # not 1.0 (all white)
    assert std == pytest.approx(0.225, abs=0.02)  # half-way between the levels; not 0.0
    assert summary["test"]["acc"] >= 0.9  # chance is 0.5
