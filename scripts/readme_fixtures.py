"""The fixtures of scripts/readme_commands.py: the runs earlier commands left, the files the
commands of README.md and the guides expect (in the formats those pages ask for), and the
placeholders (<run dir>, my_images, reviews.csv, ...) those files and runs replace."""

from __future__ import annotations

import csv
import os
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path

from docs_pages import ROOT, markdown, readme_block

from trainkit.checkpoints import read_metrics


# -- what earlier commands left, and the files the README's commands expect ---------------------
class Context:
    """The temporary folder: runs of earlier commands, fixtures, the environment."""

    def __init__(self, tmp: Path):
        self.tmp, self.logs = tmp, tmp / "logs"
        (tmp / "data").mkdir(parents=True, exist_ok=True)
        self.markdown = markdown()
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self.env = {"OMP_NUM_THREADS": "1", **os.environ, "PATH": path,  # this venv's tools
                    "TRAINKIT_LOG_DIR": str(self.logs),
                    "TRAINKIT_DATA_DIR": str(tmp / "data")}  # fmt: skip

    def run_for(self, cmd: str) -> Path:
        """The newest finished run `cmd` can use: any for eval.py; else one with the same
        model=/data=/experiment=/trainer= choices and, for a resume to trainer.max_epochs=N,
        fewer than N epochs."""
        groups = r"(?<![\w.])(?:model|data|experiment|trainer)=[^\s']+"
        wanted = sorted(re.findall(groups, cmd.split(" ckpt_path")[0]))
        resume_to = re.search(r"trainer\.max_epochs=(\d+).* ckpt_path=", cmd)
        for run in sorted((self.logs / "train" / "runs").glob("*"), reverse=True):
            metrics = read_metrics(run)
            fits = metrics.get("status") == "ok" and (
                "eval.py" in cmd
                or sorted(re.findall(groups, (run / ".hydra/overrides.yaml").read_text())) == wanted
            )
            if fits and not (resume_to and metrics["epochs"] >= int(resume_to[1])):
                return run
        raise LookupError(f"no earlier run in {self.logs} fits: {cmd}")

    def newest_sweep(self) -> Path:
        return max(self.logs.glob("*/multiruns/*"), key=lambda p: p.name)

    def own_project(self) -> Path:
        """The README's own model and own dataset, code and configs, in a project folder."""
        files = {"my_project/models.py": "# my_project/models.py",
                 "my_project/data.py": "# my_project/data.py",
                 "my_project/callbacks.py": "# my_project/callbacks.py",
                 "my_project/loggers.py": "# my_project/loggers.py",
                 "my_conf/model/mlp.yaml": "# my_conf/model/mlp.yaml",
                 "my_conf/data/mnist_plain.yaml": "# my_conf/data/mnist_plain.yaml",
                 "my_package/__init__.py": "class MyImages(",
                 "my_conf/data/my_images.yaml": "_target_: my_package.MyImages"}  # fmt: skip
        for name, text in files.items():
            (self.tmp / "project" / name).parent.mkdir(parents=True, exist_ok=True)
            (self.tmp / "project" / name).write_text(readme_block(self.markdown, text))
        return self.tmp / "project"

    def data_file(self, name: str, cmd: str) -> str:
        """A small file or folder in the format the command asks for; its path."""
        rng, path = random.Random(0), self.tmp / name
        if name == "my_images":  # ImageFolder layout: a folder of PNGs per class
            from PIL import Image

            for label, colour in (("cat", (200, 60, 60)), ("dog", (60, 60, 200))):
                (path / label).mkdir(parents=True, exist_ok=True)
                for i in range(12):
                    pixels = bytes(c + rng.randrange(40) for _ in range(144) for c in colour)
                    Image.frombytes("RGB", (12, 12), pixels).save(path / label / f"{i}.png")
            return str(path)
        column = dict(re.findall(r"data\.(\w+_column)=(\S+)", cmd))
        with open(path, "w", newline="") as f:
            out = csv.writer(f)
            if name == "reviews.csv":  # the text and label columns the command names
                out.writerow([column["text_column"], column["label_column"]])
                words = {"pos": ["great", "fun", "moving"], "neg": ["dull", "boring", "weak"]}
                for i in range(120):
                    label = ("pos", "neg")[i % 2]
                    out.writerow([f"the film was {rng.choice(words[label])} and long", label])
            else:  # houses.csv: the target column the command names, two feature columns
                out.writerow(["area", "rooms", column["target_column"]])
                for _ in range(120):
                    area, rooms = rng.uniform(40, 200), rng.randint(1, 6)
                    out.writerow([f"{area:.1f}", rooms, f"{3000 * area + 1e4 * rooms:.0f}"])
        return str(path)


def own_dataset(cmd: str, ctx: Context) -> str:
    """`data=my_images` needs the README's MyImages and its yaml (found through PYTHONPATH and
    hydra.searchpath) and the file it reads, ${paths.data_dir}/my_images.pt: 3 classes of 8x8,
    float or uint8 as the README's code says."""
    import torch

    y = torch.arange(90) % 3
    x = torch.rand(90, 1, 8, 8, generator=torch.Generator().manual_seed(0)) + y.view(-1, 1, 1, 1)
    if "uint8" in readme_block(ctx.markdown, "class MyImages("):
        x = (x * 60).to(torch.uint8)
    torch.save((x, y), ctx.tmp / "data" / "my_images.pt")
    project = ctx.own_project()
    return f"PYTHONPATH={project} {cmd} hydra.searchpath=[file://{project}/my_conf]"


def mnist_files(cmd: str, ctx: Context) -> str:
    """The guide's plain MNIST DataModule reads MNIST's IDX files from ${paths.data_dir}/MNIST/raw
    (torchvision downloads them only when they are missing): 200 + 50 small random ones."""
    import struct

    raw = ctx.tmp / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for prefix, n in (("train", 200), ("t10k", 50)):
        pixels = bytes(rng.randrange(256) for _ in range(n * 28 * 28))
        labels = bytes(i % 10 for i in range(n))
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">4I", 2051, n, 28, 28) + pixels
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">2I", 2049, n) + labels)
    return cmd


# in every command that runs: pattern -> (match, command, context) -> what replaces it
PLACEHOLDERS: list[tuple[str, Callable[[re.Match, str, Context], str]]] = [
    (r"logs/train/runs/<time>|<run dir>|(?<=ckpt_path=)\.\.\.(?= |$)",
     lambda m, cmd, ctx: str(ctx.run_for(cmd))),
    (r"path/to/file\.ckpt", lambda m, cmd, ctx: f"{ctx.run_for(cmd)}/checkpoints/last.ckpt"),
    (r"<sweep dir>|<run or sweep dir>", lambda m, cmd, ctx: str(ctx.newest_sweep())),
    (r"\[(--[^\]]+)\]", lambda m, cmd, ctx: m[1]),  # optional arguments: give them
    (r"(?<=--logdir )logs\b", lambda m, cmd, ctx: str(ctx.logs)),
    (r"(?<=sqlite:///)optuna\.db", lambda m, cmd, ctx: f"{ctx.tmp}/optuna.db"),
    (r"(?<=journal:)optuna\.log", lambda m, cmd, ctx: f"{ctx.tmp}/optuna.log"),
    (r"(?<=data\.path=)(my_images|reviews\.csv|houses\.csv)\b",
     lambda m, cmd, ctx: ctx.data_file(m[1], cmd)),
    (r"/path/to/project", lambda m, cmd, ctx: str(ctx.own_project())),
]  # fmt: skip


# The real sentences, outside the repository: the workspace's copy (CI has one beside its clone)
SENTENCES_COPY = Path(
    os.environ.get("TRAINKIT_SENTENCES_COPY", ROOT.parent / "shared/data/sentiment_sentences")
)
SENTENCES = re.compile(
    r"data=sentiment_sentences|(?<=data\.path=)data/sentiment labelled sentences"
)


def sentences_absent(cmd: str) -> str | None:
    if not SENTENCES.search(cmd) or (SENTENCES_COPY / "imdb_labelled.txt").is_file():
        return None
    return f"needs the UCI sentences (no copy in {SENTENCES_COPY}; the download needs internet)"


def place_sentences(cmd: str, ctx: Context) -> str:
    """The local copy placed where the UCI zip unpacks (data.download=true then finds it and
    downloads nothing); the docs' `data/` folder is the temporary one."""
    folder = ctx.tmp / "data" / "sentiment labelled sentences"
    if SENTENCES.search(cmd) and not folder.exists():
        folder.mkdir(parents=True)
        for name in ("amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"):
            (folder / name).symlink_to(SENTENCES_COPY / name)
    return cmd.replace("data.path=data/sentiment labelled sentences", f"data.path={folder}")
