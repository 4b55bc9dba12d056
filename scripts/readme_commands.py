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
import json
import os
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

from docs_pages import ROOT, extract_commands, markdown
from readme_fixtures import (
    PLACEHOLDERS,
    SENTENCES,
    SENTENCES_COPY,
    Context,
    mnist_files,
    own_dataset,
    place_sentences,
    sentences_absent,
)

__all__ = ["Context", "SENTENCES", "extract_commands", "markdown"]  # the tests use them here
QUIET = "trainer.enable_progress_bar=false"
LIMITS = "trainer.limit_train_batches=2 trainer.limit_val_batches=2 trainer.limit_test_batches=2"
SWEEP = f"{LIMITS} {QUIET}"  # sweeps and resumes keep their epochs: they are what they vary
SINGLE = f"{LIMITS} trainer.max_epochs=1 {QUIET}"


# -- what to do with each command ----------------------------------------------------------------
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
    Rule(r"^python scripts/benchmark\.py( --rounds \d+| --workloads [\w ]+| --skip-startup)*$",
         "run", "one small round", BENCH),
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
