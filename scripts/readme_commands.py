"""Run every command that README.md and the guides in docs/ show and that a CPU without internet
can run; fail if one fails.

    python scripts/readme_commands.py              # all of them, in README order (minutes)
    python scripts/readme_commands.py --list       # how each command is handled; runs nothing
    python scripts/readme_commands.py --only eval.py --keep /tmp/readme-runs
    python scripts/readme_commands.py --clone       # all of them in a fresh clone of HEAD

Commands are the lines of the ```bash blocks and the inline spans that start with `python `,
`tensorboard `, `pytest` or `pip `. RULES (first match wins) says what happens to each: skipped,
with the reason, or run from the repo root in bash, shortened to seconds, with placeholders
(<time>, <sweep dir>, my_images, reviews.csv, ...) replaced by folders of earlier commands or by
small files in the format the README asks for. A command that no rule covers is an error: a new
README command needs a rule. Runs, data and fixtures go to one temporary folder
(TRAINKIT_LOG_DIR, TRAINKIT_DATA_DIR), never to the repo's logs/. Each process gets one torch
thread unless OMP_NUM_THREADS says otherwise, as in the tests: on a busy 2-core machine two
spinning threads per process make these tiny runs 20 times slower.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import NamedTuple

from docs_pages import pages

from trainkit.checkpoints import read_metrics

ROOT = Path(__file__).resolve().parents[1]
SPAN = re.compile(r"(python |tensorboard |pytest|pip )")
QUIET = "trainer.enable_progress_bar=false"
LIMITS = "trainer.limit_train_batches=2 trainer.limit_val_batches=2 trainer.limit_test_batches=2"
SWEEP = f"{LIMITS} {QUIET}"  # sweeps and resumes keep their epochs: they are what they vary
SINGLE = f"{LIMITS} trainer.max_epochs=1 {QUIET}"


# -- what the README and the guides show ----------------------------------------------------------
def markdown() -> str:
    """README.md and the guides of docs/, in reading order, as one text."""
    return "\n\n".join(page.read_text() for page in pages())


def fenced_blocks(markdown: str) -> list[tuple[int, int, str, str]]:
    """(start, end, language, body) of each ``` block."""
    found = re.finditer(r"^```(\w*)\n(.*?)^```", markdown, re.S | re.M)
    return [(m.start(), m.end(), m[1], m[2]) for m in found]


def strip_comment(line: str) -> str:
    """The line without its `# comment` (a # outside quotes, at the start or after a space)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip()
    return line.strip()


def extract_commands(markdown: str) -> list[str]:
    """The commands of the ```bash blocks (continuations joined, comments dropped) and the
    inline code spans of the prose that start like a command, in order, each once."""
    commands: list[str] = []
    pos = 0
    for start, end, language, body in [*fenced_blocks(markdown), (len(markdown), 0, "", "")]:
        for span in re.findall(r"`([^`\n]+(?:\n[^`\n]+)*)`", markdown[pos:start]):
            span = " ".join(span.split())  # a span may wrap onto the next line
            commands += [span] if SPAN.match(span) else []
        if language == "bash":
            lines = re.sub(r"\s*\\\n\s*", " ", body).splitlines()
            commands += [strip_comment(line) for line in lines]
        pos = end
    return list(dict.fromkeys(c for c in commands if c))


def readme_block(markdown: str, text: str) -> str:
    """The one fenced block that contains `text` (the README's own model and own dataset)."""
    (body,) = [body for _, _, _, body in fenced_blocks(markdown) if text in body]
    return body


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


# -- what to do with each command ----------------------------------------------------------------
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


def no_browser(cmd: str) -> str | None:
    if shutil.which("chromium") and find_spec("selenium"):
        return None
    return "needs Chromium and selenium (apt-get install chromium chromium-driver; .[docs])"


class Rule(NamedTuple):
    pattern: str
    action: str  # "skip" (note: why), "run", "fails" (on purpose) or "tensorboard" (serve it)
    note: str = ""
    extra: str = ""  # appended (the shortening); {tmp} and {logs} become folders
    insert: str = ""  # inserted after `python <script>`, for scripts whose options come last
    unless: Callable[[str], str | None] | None = None  # a reason to skip after all
    prepare: Callable[[str, Context], str] | None = None  # fixtures; returns the command
    expect: str = ""  # "fails": a line of its stderr that says why (regex)


BENCH = "--workloads cnn --rounds 1 --iterations 5 --startup-repeats 1 --json {tmp}/bench.json"
BUDGET = f"{LIMITS.replace('train_batches=2', 'train_batches=10')} {QUIET}"
# fmt: off
RULES = [
    Rule(r"^(python -m venv|pip install|pytest)", "skip", "CI runs it itself (.ci/run)"),
    Rule(r"^python scripts/readme_figures\.py$", "skip", "rewrites README.md; CI runs its --check"),
    Rule(r"^python train\.py .*(data=sentiment_sentences|data/sentiment labelled)", "run",
         "the local copy, placed as the zip unpacks", SINGLE, unless=sentences_absent,
         prepare=place_sentences),
    Rule(r"data\.download=true", "skip", "needs internet (downloads the dataset)"),
    Rule(r"\bdata=mnist\b", "skip", "needs the MNIST files (data.download=true: internet)"),
    Rule(r"submitit_slurm", "skip", "needs a SLURM cluster"),
    Rule(r"^sbatch ", "skip", "needs a SLURM cluster (an array of Optuna workers)"),
    Rule(r"trainer=ddp( |$)", "skip", "needs GPUs (trainer=ddp: one process per GPU, NCCL)"),
    Rule(r"<job overrides>", "skip", "the DDP worker command trainkit builds; ddp_cpu runs it"),
    Rule(r"^python train\.py model=mlp$", "skip", "needs mlp.yaml in conf/ (run above by path)"),
    Rule(r"^tensorboard --logdir ", "tensorboard", "until /data/runs lists runs, then stopped"),
    Rule(r"^python scripts/tensorboard_screenshot\.py$", "run", "into the temp folder",
         "--logdir {logs} --tabs timeseries --wait 1 --out {tmp}/shots", unless=no_browser),
    Rule(r"^python scripts/benchmark\.py( --rounds \d+)?$", "run", "one small round", BENCH),
    Rule(r"^python scripts/benchmark\.py .*--compile", "run", "one short round",
         "--compile-iterations 9 --rounds 1"),
    Rule(r"^python scripts/gpu_check\.py$", "skip", "needs a GPU (--device cpu --tiny: the tests)"),
    Rule(r"^python scripts/benchmark_loader\.py$", "run", "one epoch", "--repeats 1"),
    Rule(r"^python scripts/benchmark_image_folder\.py$", "run", "100 small images",
         "--n-images 100 --size 16 --workers 1 --out {tmp}/jpegs"),
    Rule(r"^python scripts/lr_find_check\.py$", "run", "its quickest model, one seed",
         "--models regression --seeds 42"),
    Rule(r"^python scripts/reference_results\.py$", "run", "its quickest run",
         "--only 'python train.py model=regression'"),
    Rule(r"^python scripts/\w+_baseline\.py .*--seeds", "run", "one seed, short training",
         "--seeds 42", insert=SINGLE, unless=sentences_absent, prepare=place_sentences),
    Rule(r"^python scripts/(sweep_report|plot_curves)\.py <", "run", "on the newest sweep"),
    Rule(r"^python train\.py (--help|--cfg job)$", "run"),
    Rule(r"^python -c ", "run"),
    Rule(r"^python train\.py -m hparams_search=", "run", "2 trials",
         f"hydra.sweeper.n_trials=2 {SWEEP}"),
    Rule(r"^python train\.py -m ", "run", "every job, 2 batches each", SWEEP),
    Rule(r"^python train\.py model=cnn data=my_images$", "run", "README's MyImages, by path",
         SINGLE, prepare=own_dataset),
    Rule(r"ckpt_path=last$", "fails", "every run finished: README says it stops", SWEEP,
         expect=r"ckpt_path=last: every run in .* finished"),
    Rule(r"^python train\.py .*ckpt_path=", "run", "resumes to its max_epochs", SWEEP),
    Rule(r"^python train\.py .*val_check_interval=", "run", "50 iterations", BUDGET),
    Rule(r"^python train\.py .*debug=fast_dev_run", "run", "as shown", QUIET),
    Rule(r"data=mnist_plain", "run", "the guide's MNIST DataModule on small IDX files", SINGLE,
         prepare=mnist_files),
    Rule(r"^((PYTHONPATH|WANDB_MODE)=\S+ )?python train\.py( |$)", "run", "2 batches, 1 epoch",
         SINGLE),
    Rule(r"^python eval\.py ", "run", "", QUIET),
]
# fmt: on


def classify(cmd: str) -> tuple[Rule | None, str | None]:
    """The first rule that matches `cmd`, and a reason to skip it (None: run it)."""
    rule = next((r for r in RULES if re.search(r.pattern, cmd)), None)
    if rule is None or rule.action == "skip":
        return rule, rule and rule.note
    return rule, rule.unless(cmd) if rule.unless else None


# -- running them --------------------------------------------------------------------------------
def command_to_run(cmd: str, rule: Rule, ctx: Context) -> str:
    for pattern, replace in PLACEHOLDERS:
        cmd = re.sub(pattern, lambda m, c=cmd, r=replace: r(m, c, ctx), cmd)
    if rule.prepare:
        cmd = rule.prepare(cmd, ctx)
    if rule.insert:
        cmd = re.sub(r"^(python \S+)", rf"\1 {rule.insert}", cmd)
    return f"{cmd} {rule.extra.format(tmp=ctx.tmp, logs=ctx.logs)}".strip()


def execute(cmd: str, ctx: Context, timeout: float) -> tuple[int, str]:
    """(exit status, stderr) of `cmd` in bash from the repo root; past `timeout` its process
    group (DDP workers, joblib processes) is killed."""
    proc = subprocess.Popen(["bash", "-c", cmd], cwd=ROOT, env=ctx.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    try:
        err = proc.communicate(timeout=timeout)[1]
        return proc.returncode, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return 124, proc.communicate()[1] + f"\ntimed out after {timeout:.0f} s"


def serve_tensorboard(cmd: str, ctx: Context, timeout: float) -> tuple[int, str]:
    """TensorBoard on a free port until http://127.0.0.1:<port>/data/runs lists runs; stopped."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(ctx.tmp / f"tensorboard-{port}.log", "w+") as log:
        proc = subprocess.Popen(["bash", "-c", f"exec {cmd} --host 127.0.0.1 --port {port}"],
                                cwd=ROOT, env=ctx.env, stdout=log, stderr=log,
                                start_new_session=True)  # fmt: skip
        deadline, runs = time.monotonic() + timeout, []
        while not runs and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            with contextlib.suppress(OSError, ValueError):
                runs = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs"))
        rc = proc.poll()
        if rc is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        log.seek(0)
        return (0, "") if runs else (rc or 1, log.read() + "\nit listed no runs")


def run_in_clone(args: list[str]) -> int:
    """This script, with `args`, in a fresh `git clone` of the repository's HEAD (committed work
    only: what CI checks out) in a temporary folder: it finds what only this workspace has
    (untracked files, ignored folders, paths outside the repo). The clone gets a virtual
    environment of its own whose `python` imports the clone's trainkit and this environment's
    packages, as `pip install -e .` in the clone would (also where a command sets PYTHONPATH)."""
    import sysconfig

    begin = time.time()
    with tempfile.TemporaryDirectory(prefix="trainkit-clone-") as tmp:
        clone, venv = Path(tmp) / "trainkit", Path(tmp) / "venv"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, text=True,
                              capture_output=True, check=True).stdout.strip()  # fmt: skip
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        python = venv / "bin" / "python"
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        site = venv / "lib" / version / "site-packages"
        packages = sysconfig.get_path("purelib")  # torch, Lightning, ...: this environment's
        (site / "trainkit-clone.pth").write_text(f"{clone / 'src'}\n{packages}\n")
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        paths = [p for p in paths if not Path(p).resolve().is_relative_to(ROOT)]
        env = {**os.environ, "TRAINKIT_SENTENCES_COPY": str(SENTENCES_COPY),
               "PYTHONPATH": os.pathsep.join(paths),
               "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
        where = subprocess.run([python, "-c", "import trainkit; print(trainkit.__file__)"],
                               env=env, text=True, capture_output=True).stdout.strip()  # fmt: skip
        print(f"clone of HEAD {head} in {clone}; trainkit from {where}", flush=True)
        if not Path(where).is_relative_to(clone):
            print(f"error: the clone's trainkit is not the one imported ({where})")
            return 1
        script = [str(python), "scripts/readme_commands.py", *args]
        rc = subprocess.run(script, cwd=clone, env=env).returncode
    print(f"clone, commands and clean-up took {time.time() - begin:.0f} s")
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="classify only; run nothing")
    parser.add_argument("--only", help="only the commands containing this text (a command that "
                        "uses earlier runs finds them in the --keep folder)")  # fmt: skip
    parser.add_argument("--keep", type=Path, help="keep runs and fixtures in this folder")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per command")
    parser.add_argument("--clone", action="store_true", help="in a git clone of HEAD in a "
                        "temporary folder outside the workspace, as CI checks out")  # fmt: skip
    args = parser.parse_args(argv)
    if args.clone:
        return run_in_clone(
            [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--clone"]
        )
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="readme-commands-"))
    ctx, begin = Context(tmp), time.time()
    commands = [c for c in extract_commands(ctx.markdown) if not args.only or args.only in c]
    counts = dict.fromkeys(["to run" if args.list else "ok", "failed", "skipped", "no rule"], 0)
    for cmd in commands:
        rule, skip = classify(cmd)
        if rule is None or skip:
            counts["no rule" if rule is None else "skipped"] += 1
            print(f"no rule for: {cmd}" if rule is None else f"skipped: {skip:58s} {cmd}")
            continue
        if args.list:
            counts["to run"] += 1
            more = " ... ".join(x for x in (rule.insert, rule.extra) if x)
            print(f"{rule.action:12s} {rule.note or 'as shown':53s} {cmd}")
            if more:
                print(f"{'':66s} + {more}")
            continue
        start, actual = time.time(), cmd
        try:
            actual = command_to_run(cmd, rule, ctx)
            run = serve_tensorboard if rule.action == "tensorboard" else execute
            rc, err = run(actual, ctx, args.timeout)
            if rule.action == "fails":  # as the README says: non-zero, with its one sentence
                said = re.search(rule.expect, err, re.M)
                rc, err = (0, err) if rc and said else (1, f"expected: {rule.expect}\n{err}")
        except (LookupError, ValueError, OSError) as e:  # e.g. no earlier run fits
            rc, err = 1, f"{type(e).__name__}: {e}"
        counts["ok" if rc == 0 else "failed"] += 1
        status = "ok" if rc == 0 else f"FAILED rc={rc}"
        print(f"{status:14s} {time.time() - start:6.1f}s  {cmd}", flush=True)
        if actual != cmd:
            print(f"{'':23s}ran: {actual}", flush=True)
        if rc:
            print("\n".join(f"{'':23s}| {line}" for line in err.splitlines()[-20:]), flush=True)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print(", ".join(f"{n} {what}" for what, n in counts.items()), f"in {time.time() - begin:.0f} s")
    return int(counts["failed"] > 0 or counts["no rule"] > 0)


if __name__ == "__main__":
    sys.exit(main())
