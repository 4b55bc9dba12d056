"""data=image_folder on small real PNG / JPEG / BMP / WEBP files written with PIL.

Every image is one flat value (grey) or colour, of a size of its own: decoding and resizing keep
it, so the value identifies the image (`ID = 20 + 50 * class + index`) and its class.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from trainkit.data.image_folder import ImageFolderDataModule
from trainkit.data.images import channel_stats
from trainkit.errors import ConfigError, DataError

SIZES = [(10, 14), (20, 20), (7, 9), (33, 12)]  # (width, height): every image is resized
FORMATS = ["png", "JPG", "webp"]  # extensions in any case


def write_class(folder: Path, k: int, n: int = 10, mode: str = "L", fmt: str = "png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        v = 20 + 50 * k + i
        colour = v if mode == "L" else (v, 255 - v, 7)
        Image.new(mode, SIZES[i % len(SIZES)], colour).save(folder / f"{i:02d}.{fmt}")


def write_root(root: Path, classes=("ant", "bee", "cat"), n: int = 10, mode: str = "L") -> Path:
    for k, name in enumerate(classes):
        write_class(root / name, k, n, mode)
    return root


def ids(x: torch.Tensor) -> list[int]:
    return x[:, 0, 0, 0].tolist()


def module(root: Path, **kwargs) -> ImageFolderDataModule:
    dm = ImageFolderDataModule(path=str(root), **{"image_size": 8, "batch_size": 4, **kwargs})
    dm.setup()
    return dm


def batches(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in loader]


def one_sentence(err: pytest.ExceptionInfo, path: Path) -> str:
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg and msg.endswith(".")
    return msg


def test_class_names_formats_sizes_and_labels(tmp_path: Path) -> None:
    for k, (name, fmt) in enumerate(zip(["zebra", "Bee", "ant"], FORMATS, strict=False)):
        write_class(tmp_path / name, k, 6, "RGB", fmt)
    write_class(tmp_path / "ant" / "more", 3, 2, "RGB", "bmp")  # nested: still "ant"
    write_class(tmp_path / ".cache", 4, 2)  # hidden: not a class
    (tmp_path / "zebra" / "notes.txt").write_text("not an image")
    dm = module(tmp_path, image_size=[6, 10], val_fraction=0.0, test_fraction=0.0)
    assert dm.class_names == ["Bee", "ant", "zebra"]  # sorted, as torchvision's ImageFolder
    assert dm.dims == {"input_shape": [3, 6, 10], "num_classes": 3}
    assert list(dm.splits) == ["train"] and dm.num_train_samples == 20
    x, y = dm.splits["train"]
    assert x.shape == (20, 3, 6, 10) and x.dtype == torch.uint8
    x = x.long()
    assert (x - x[:, :, :1, :1]).abs().max() <= 6  # flat images stay flat (WEBP: lossy)
    k = (x[:, 0, 0, 0] + 5) // 50
    assert y.tolist() == [[2, 0, 1, 1][int(i)] for i in k]  # written: zebra, Bee, ant, ant/more
    assert dm.report["class_counts"]["train"] == {"Bee": 6, "ant": 8, "zebra": 6}


def test_carved_splits_are_stratified_and_seeded(tmp_path: Path) -> None:
    write_root(tmp_path)

    def split_ids(seed: int) -> dict[str, list[int]]:
        dm = module(tmp_path, seed=seed, val_fraction=0.2, test_fraction=0.2)
        assert dm.split_sizes() == {"train": 18, "val": 6, "test": 6}
        for _, y in dm.splits.values():
            assert torch.bincount(y).tolist() in ([6, 6, 6], [2, 2, 2])
        return {s: sorted(ids(x)) for s, (x, _) in dm.splits.items()}

    first = split_ids(1)
    assert sorted(sum(first.values(), [])) == [20 + 50 * k + i for k in range(3) for i in range(10)]
    assert split_ids(1) == first != split_ids(2)


def test_train_val_test_folders_are_used_and_test_carved_when_absent(
    tmp_path: Path, monkeypatch
) -> None:
    write_root(tmp_path / "train", ("a", "b"), n=10)
    for k, name in enumerate(("a", "b")):
        write_class(tmp_path / "val" / name, k + 3, 2)
    monkeypatch.chdir(tmp_path.parent)  # a relative data.path: from the launch directory
    dm = module(Path(tmp_path.name), test_fraction=0.2)
    assert dm.split_sizes() == {"train": 16, "val": 4, "test": 4}
    assert sorted(ids(dm.splits["val"][0])) == [170, 171, 220, 221]
    assert dm.splits["val"][1].tolist() == [0, 0, 1, 1]
    for k, name in enumerate(("a", "b")):
        write_class(tmp_path / "test" / name, k, 3)
    assert module(tmp_path).split_sizes() == {"train": 20, "val": 4, "test": 6}


def test_channels_detected_or_set(tmp_path: Path) -> None:
    write_root(tmp_path)
    assert module(tmp_path).dims["input_shape"] == [1, 8, 8]  # every file grey
    write_class(tmp_path / "cat", 2, 1, "RGB")  # one colour file among grey ones
    colour = module(tmp_path)
    assert colour.dims["input_shape"] == [3, 8, 8]
    x = torch.cat([x for x, _ in colour.splits.values()])
    grey = x[(x[:, 0] == x[:, 1]).flatten(1).all(1)]
    assert len(grey) == 29 and (grey[:, 2] == grey[:, 0]).all()  # grey images as R = G = B
    forced = module(tmp_path, channels=1)
    assert forced.dims["input_shape"] == [1, 8, 8]
    rgb = Image.new("RGB", (1, 1), (120, 135, 7)).convert("L").getpixel((0, 0))
    assert rgb in ids(torch.cat([x for x, _ in forced.splits.values()]))
    assert module(tmp_path, channels=3).dims["input_shape"] == [3, 8, 8]
    with pytest.raises(ConfigError, match="data.channels must be 1"):
        module(tmp_path, channels=2)


def test_normalisation_from_the_training_split_only(tmp_path: Path) -> None:
    write_root(tmp_path)
    dm = module(tmp_path)
    (mean,), (std,) = channel_stats(dm.splits["train"][0])
    assert dm.fitted["mean"] == [mean] and dm.fitted["std"] == [std]
    everything = torch.cat([x for x, _ in dm.splits.values()])
    assert channel_stats(everything)[0][0] != pytest.approx(mean, abs=1e-4)
    z = dm.preprocess(dm.splits["train"][0])
    assert z.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert z.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-3)


def test_streaming_and_cached_give_the_same_batches(tmp_path: Path, caplog) -> None:
    write_root(tmp_path, mode="RGB")
    caplog.set_level(logging.INFO, "trainkit.data.image_folder")
    cached = module(tmp_path, seed=3, max_memory_gb=1)
    streamed = module(tmp_path, seed=3, max_memory_gb=1e-6)
    assert "<= data.max_memory_gb=1: decoded once now by the main process" in caplog.text
    assert "> data.max_memory_gb=1e-06: not cached but decoded batch by batch" in caplog.text
    assert (cached.report["storage"], streamed.report["storage"]) == ("cached", "streaming")
    assert streamed.splits["train"][0].dtype == torch.long  # file rows, not images
    assert streamed.dims == cached.dims and streamed.fitted == cached.fitted
    assert streamed.split_sizes() == cached.split_sizes() and streamed.num_train_samples == 22
    for get, epoch in [("train_dataloader", 0), ("train_dataloader", 1), ("val_dataloader", 0)]:
        a, b = getattr(cached, get)(), getattr(streamed, get)()
        a.sampler.set_epoch(epoch), b.sampler.set_epoch(epoch)
        a, b = batches(a), batches(b)
        assert len(a) == len(b) > 0
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_streaming_workers_and_mid_epoch_resume(tmp_path: Path) -> None:
    write_root(tmp_path, mode="RGB")
    dm = module(tmp_path, max_memory_gb=0, num_workers=2, seed=5)
    full = batches(dm.train_dataloader())
    assert len(full) == 6  # 21 training images in batches of 4
    # a checkpoint written after 2 batches of the epoch: the next epoch goes on from the third
    resumed = module(tmp_path, max_memory_gb=0, num_workers=2, seed=5)
    resumed.load_state_dict(
        {"fitted": dm.fitted, "position": {"batches_done": 2, "epoch_batches": 6}}
    )
    rest = batches(resumed.train_dataloader())
    assert len(rest) == 4
    for (xa, ya), (xb, yb) in zip(full[2:], rest, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_distributed_evaluation_covers_every_file_once(tmp_path: Path) -> None:
    write_root(tmp_path, n=12)
    dm = module(tmp_path, max_memory_gb=0, test_fraction=0.25)
    seen = []
    for rank in range(3):
        loader = dm.loader("test")
        loader.sampler.set_distributed(rank, 3, pad=False)
        seen += [i for x, _ in loader for i in ids(x)]
    expected = ids(module(tmp_path, test_fraction=0.25).splits["test"][0])  # cached: images
    assert len(seen) == 9 and sorted(seen) == sorted(expected)


@pytest.mark.parametrize(
    ("damage", "name"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated.jpeg"),
        (lambda p: p.write_bytes(b"not an image at all"), "garbage.png"),
        (lambda p: p.write_bytes(b""), "empty.webp"),
    ],
)
def test_unreadable_image_is_named(tmp_path: Path, damage, name: str) -> None:
    write_root(tmp_path, mode="RGB")
    path = tmp_path / "bee" / name
    Image.new("RGB", (40, 40), (1, 2, 3)).save(path)
    damage(path)
    for memory in (1, 0):
        with pytest.raises(DataError, match="is not a readable image") as err:
            module(tmp_path, max_memory_gb=memory)
        assert "data.skip_bad_files=true" in one_sentence(err, path)


def test_skip_bad_files_lists_them(tmp_path: Path, caplog) -> None:
    write_root(tmp_path, mode="RGB")
    bad = [tmp_path / "ant" / "00.png", tmp_path / "cat" / "03.png"]
    for path in bad:
        path.write_bytes(path.read_bytes()[:40])  # the PNG header, not the pixels
    dms = [module(tmp_path, skip_bad_files=True, max_memory_gb=m) for m in (1, 0)]
    for dm in dms:
        assert dm.report["skipped_files"] == [str(p) for p in bad]
        assert sum(dm.split_sizes().values()) == 28
    assert f"left out 2 unreadable image files: {bad[0]}, {bad[1]}" in caplog.text
    for (xa, ya), (xb, yb) in zip(*(batches(dm.train_dataloader()) for dm in dms), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_bad_layouts_are_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as err:
        module(tmp_path / "nowhere")
    one_sentence(err, tmp_path / "nowhere")
    write_class(tmp_path / "only", 0, 2)
    with pytest.raises(DataError, match=r"has 1 class folder\(s\) \(only\) but a classifier"):
        module(tmp_path)
    (tmp_path / "hollow").mkdir()
    with pytest.raises(DataError, match="has no images") as err:
        module(tmp_path)
    one_sentence(err, tmp_path / "hollow")
    split = tmp_path / "split"
    write_root(split / "train", ("a", "b"))
    write_class(split / "val" / "a", 0, 2)
    with pytest.raises(DataError, match="val has no folder for class 'b', which .* has") as err:
        module(split)
    one_sentence(err, split / "train")
    write_class(split / "extra", 0, 2)  # neither a split folder nor inside one
    with pytest.raises(DataError, match="holds extra/, train/, val/: either only class folders"):
        module(split)
    with pytest.raises(ConfigError, match="data.path is required"):
        ImageFolderDataModule().setup()
    with pytest.raises(ConfigError, match="data.image_size must be"):
        module(split, image_size=[0, 4])


def test_checkpoint_class_map_is_kept(tmp_path: Path) -> None:
    write_root(tmp_path)
    trained = module(tmp_path)
    # the checkpoint knew "bee"; its folder is gone now: the other classes keep their ids
    shutil.rmtree(tmp_path / "bee")
    write_class(tmp_path / "dog", 3, 10)  # and a class the checkpoint never saw
    restored = ImageFolderDataModule(path=str(tmp_path), image_size=8)
    restored.load_state_dict({"fitted": dict(trained.fitted)})
    with pytest.raises(DataError, match="not one of the 3 classes the checkpoint") as err:
        restored.setup()
    one_sentence(err, tmp_path / "dog")
    shutil.rmtree(tmp_path / "dog")
    restored.setup()
    assert restored.class_names == ["ant", "bee", "cat"] and restored.dims["num_classes"] == 3
    assert restored.fitted == trained.fitted  # mean / std not recomputed
    assert sorted(set(torch.cat([y for _, y in restored.splits.values()]).tolist())) == [0, 2]


def test_fit_and_resume_with_the_cnn(tmp_path: Path, run_train) -> None:
    root = write_root(tmp_path / "images", n=8, mode="RGB")
    args = [
        "model=cnn",
        "data=image_folder",
        f"data.path={root}",
        "data.image_size=8",
        "data.batch_size=8",
        "data.max_memory_gb=0",  # the streaming path, end to end
        "model.channels=[4]",
        "model.hidden=8",
        "logger=none",
        "callbacks.early_stopping=null",
        "data.skip_bad_files=true",
    ]
    (root / "bee" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # the signature alone
    summary, run_dir = run_train([*args, "trainer.max_epochs=1"], run_dir="first")
    assert summary["status"] == "ok" and "acc" in summary["test"]
    report = json.loads((run_dir / "metrics.json").read_text())["data_report"]
    assert report["class_names"] == ["ant", "bee", "cat"] and report["storage"] == "streaming"
    assert report["skipped_files"] == [str(root / "bee" / "broken.png")]
    assert sorted(report["class_counts"]["train"].values()) == [5, 5, 6]  # stratified
    # resume: a new class folder is refused (the checkpoint's class map is restored first)
    write_class(root / "dog", 3, 8, "RGB")
    with pytest.raises(DataError, match=r"dog is not one of the 3 classes"):
        run_train([*args, "trainer.max_epochs=2", f"ckpt_path={run_dir}"], run_dir="bad")
    shutil.rmtree(root / "dog")
    resumed, _ = run_train([*args, "trainer.max_epochs=2", f"ckpt_path={run_dir}"], "resumed")
    assert resumed["status"] == "ok" and resumed["epochs"] == 2
    assert resumed["data_report"]["class_names"] == ["ant", "bee", "cat"]
    # eval.py from the checkpoint: uint8 batches normalised by the DataModule, class names in
    # the predictions (the run's test split, then another split)
    from helpers import make_cfg

    from trainkit.evaluation import evaluate

    tested = evaluate(make_cfg([f"ckpt_path={run_dir}"], tmp_path / "eval", "eval"))
    assert tested["metrics"]["test/acc"] == pytest.approx(summary["test"]["acc"], abs=1e-6)
    cfg = make_cfg([f"ckpt_path={run_dir}", "predict=true", "split=val"], tmp_path / "p", "eval")
    with open(evaluate(cfg)["predictions"]) as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"index", "target", "prediction", "p_ant", "p_bee", "p_cat"}
    assert {r["target"] for r in rows} == {"ant", "bee", "cat"}
