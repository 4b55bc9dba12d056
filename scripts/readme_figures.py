"""Regenerate the figures of the README and its guides (docs/*.md) from the code as it is:
`python scripts/readme_figures.py`.

Each figure a page shows between `<!-- figures:NAME -->` and `<!-- /figures:NAME -->` is
produced here by running the command the page names, in a temporary log folder:

- budget: the two budget tables of `python train.py model=cnn trainer.max_epochs=5
  trainer.accumulate_grad_batches=4 trainer.val_check_interval=25
  trainer.check_val_every_n_epoch=null` (from its train.log);
- reference: "What they reach", from scripts/reference_results.py (seed 42, default configs);
- sweep: the sweep table of `python train.py -m model=cnn data.batch_size=16,64,256
  trainer.max_epochs=2,4` (from its report.md), with docs/images/heatmap.png (the sweep's own)
  and docs/images/curves_by_epoch.png (`python scripts/plot_curves.py <sweep dir>`);
- sweep_resume: `python train.py -m model=cnn optimizer.lr=0.002,0.001,0.0005 ...` stopped by
  SIGTERM while its job 1 validates (as a cluster's pre-emption), then the same command with
  `hydra.sweep.dir=<that sweep>`: what the resumed sweep said, and its report's table;
- sweep_seeds: the configurations table of `python train.py -m model=cnn data.batch_size=32,128
  seed=1,2,3 trainer.max_epochs=2` (mean ± std over the seeds), with docs/images/seeds_line.png.

Without options it rewrites those blocks and copies the pictures into docs/images/.
`--check` changes nothing: it regenerates everything and exits 1 when a block differs from what
the code produces now. Timings are left out of the figures on purpose: they are not
reproducible; the benchmarks report them. `--only NAME` does one figure.

What --check compares. Structure exactly: every line, column, row, status, and every integer
(iterations, optimizer steps, batch sizes, epochs). Numbers with decimals (accuracies, losses,
slopes) within the tolerance the page states next to the block ("within ±0.02"): a CPU's float
sums depend on its vector instructions and on how many threads split them, and over a few
hundred steps that moves a table's second or third digit. A figure that is a claim is checked as
that claim (the sweep's ranks may swap only between jobs whose scores lie within the tolerance,
and batches of 256 must lag the others at the same epochs).

The figures are made with one torch thread (`--threads 1`, the default, set as OMP_NUM_THREADS in
this process and the runs it starts); the slow test checks them with two, so that a figure
that only holds for one thread count cannot pass unseen.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from docs_pages import pages

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
QUIET = ["trainer.enable_progress_bar=false"]
BUDGET_RUN = [
    "model=cnn", "trainer.max_epochs=5", "trainer.accumulate_grad_batches=4",
    "trainer.val_check_interval=25", "trainer.check_val_every_n_epoch=null",
]  # fmt: skip
SWEEP_RUN = ["-m", "model=cnn", "data.batch_size=16,64,256", "trainer.max_epochs=2,4"]
SWEEP_COLUMNS = (  # of the sweep report's table (report.md)
    "job", "data.batch_size", "trainer.max_epochs", "status", "rank", "**objective**", "val/acc",
    "test/acc", "iters/epoch", "optimizer steps",
)  # fmt: skip


def table_lines(lines: list[str]) -> list[str]:
    """The lines of the table `lines` begin with: up to the first that does not start with |."""
    return list(itertools.takewhile(lambda line: line.startswith("|"), lines))


def train(args: list[str], logs: Path) -> None:
    """`python train.py <args>` as a user runs it, its runs under `logs`."""
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(logs)}
    proc = subprocess.run(
        [sys.executable, "train.py", *args, *QUIET], cwd=ROOT, env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"error: python train.py {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def budget(tmp: Path, pictures: dict[str, Path]) -> dict[str, str]:
    train(BUDGET_RUN, tmp / "logs")
    (log,) = (tmp / "logs" / "train" / "runs").glob("*/train.log")
    text = log.read_text()
    blocks = {}
    for name, title in (
        ("plan", "Training budget\n"),
        ("actual", "Training budget: plan vs actual\n"),
    ):
        lines = [title.strip(), *table_lines(text[text.index(title) + len(title) :].splitlines())]
        blocks[f"budget_{name}"] = "```\n" + "\n".join(lines) + "\n```"
    return blocks


def reference(tmp: Path, pictures: dict[str, Path]) -> dict[str, str]:
    import reference_results as module  # scripts/ is on sys.path

    rows = ["| command | result |", "|---|---|"]
    for i, (command, overrides) in enumerate(module.RUNS.items()):
        result = module.describe(module.run(overrides, tmp / str(i)))
        rows.append(f"| `{command}` | {result} |")
    return {"reference": "\n".join(rows)}


def sweep(tmp: Path, pictures: dict[str, Path]) -> dict[str, str]:
    train(SWEEP_RUN, tmp / "logs")
    (sweep_dir,) = (tmp / "logs" / "train" / "multiruns").iterdir()
    plot = [sys.executable, "scripts/plot_curves.py", str(sweep_dir)]
    subprocess.run(plot, cwd=ROOT, check=True, capture_output=True)
    pictures["heatmap"] = sweep_dir / "heatmap.png"
    pictures["curves_by_epoch"] = sweep_dir / "curves_by_epoch.png"
    lines = (sweep_dir / "report.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| job |"))
    table = [
        [cell.strip() for cell in line.strip("|").split("|")] for line in table_lines(lines[start:])
    ]
    keep = [table[0].index(c) for c in SWEEP_COLUMNS]
    rows = [[row[i] for i in keep] for row in table]
    return {"sweep": "\n".join("| " + " | ".join(row) + " |" for row in rows)}


# -- sweeps that stop and resume, seeds as a dimension (docs/sweeps.md) -----------------------
RESUME_RUN = ["-m", "model=cnn", "optimizer.lr=0.002,0.001,0.0005", "trainer.max_epochs=3",
              "trainer.limit_train_batches=10"]  # fmt: skip
SEEDS_RUN = ["-m", "model=cnn", "data.batch_size=32,128", "seed=1,2,3", "trainer.max_epochs=2"]
# train.py, sent SIGTERM (as a cluster's pre-emption) while job 1 validates its second epoch
PREEMPTED = """import os, signal, sys
from hydra.core.hydra_config import HydraConfig
from trainkit.models.classifier import ClassifierModule
step = ClassifierModule.validation_step
def validation_step(self, batch, batch_idx):
    if batch_idx == 0 and self.current_epoch == 1 and HydraConfig.get().job.num == 1:
        os.kill(os.getpid(), signal.SIGTERM)
    return step(self, batch, batch_idx)
ClassifierModule.validation_step = validation_step
sys.argv[0] = TRAIN = {train!r}
exec(compile(open(TRAIN).read(), TRAIN, "exec"), {{"__name__": "__main__", "__file__": TRAIN}})
"""


def run_train(script: str, args: list[str], logs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRAINKIT_LOG_DIR": str(logs)}
    return subprocess.run([sys.executable, script, *args, *QUIET], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip


def report_table(report_md: Path, header: str, columns: tuple[str, ...] | None = None) -> str:
    """The table of report.md whose header line starts with `header` (only `columns`)."""
    lines = report_md.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    table = [[c.strip() for c in line.strip("|").split("|")] for line in table_lines(lines[start:])]
    table = [table[0], ["---"] * len(table[0]), *table[2:]]
    keep = [table[0].index(c) for c in columns] if columns else range(len(table[0]))
    return "\n".join("| " + " | ".join(row[i] for i in keep) + " |" for row in table)


def sweep_resume(tmp: Path, pictures: dict[str, Path]) -> dict[str, str]:
    """A sweep stopped by SIGTERM in job 1, then the same command into its folder."""
    script = tmp / "preempted.py"
    script.write_text(PREEMPTED.format(train=str(ROOT / "train.py")))
    stopped = run_train(str(script), RESUME_RUN, tmp / "logs")
    if stopped.returncode != 143:
        sys.exit(f"error: the pre-empted sweep ended with {stopped.returncode}, not 143")
    (sweep_dir,) = (tmp / "logs" / "train" / "multiruns").iterdir()
    resumed = run_train("train.py", [*RESUME_RUN, f"hydra.sweep.dir={sweep_dir}"], tmp / "logs")
    if resumed.returncode != 0:
        sys.exit(f"error: the resumed sweep failed:\n{resumed.stderr[-3000:]}")
    said = re.findall(r"^\[[^]]+\]\[HYDRA\] ((?:job \d+ |sweep done).*)$",
                      resumed.stdout + resumed.stderr, re.M)  # fmt: skip
    columns = ("job", "optimizer.lr", "status", "**objective**", "test/acc", "epochs",
               "iterations")  # fmt: skip
    return {
        "sweep_resume_console": "```\n" + "\n".join(said) + "\n```",
        "sweep_resume": report_table(sweep_dir / "report.md", "| job |", columns),
    }


def sweep_seeds(tmp: Path, pictures: dict[str, Path]) -> dict[str, str]:
    """Two batch sizes, three seeds each: configurations ranked by their mean."""
    train(SEEDS_RUN, tmp / "logs")
    (sweep_dir,) = (tmp / "logs" / "train" / "multiruns").iterdir()
    pictures["seeds_line"] = sweep_dir / "line.png"
    return {"sweep_seeds": report_table(sweep_dir / "report.md", "| rank |")}


# -- comparing a block with what the code gives now -------------------------------------------
DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+(?![\w.])")  # 0.981, 2.000, 0.1092; not 1,257 or 5
TOLERANCE = re.compile(r"within ±(\d+(?:\.\d+)?)")


def stated_tolerance(text: str, name: str) -> float | None:
    """The tolerance the page states next to block `name`: "within ±X" in the paragraph just
    before the block or just after it (None: the page states none)."""
    found = block(name).search(text)
    before = text[: found.start()].rsplit("\n\n", 2)[-2:]
    after = text[found.end() :].lstrip("\n").split("\n\n", 1)[:1]
    stated = [float(m[1]) for part in [*before, *after] for m in TOLERANCE.finditer(part)]
    return stated[-1] if stated else None


def numbers_differ(old: str, new: str, tolerance: float) -> tuple[list[str], float]:
    """(lines of `old` that `new` does not match, the largest difference of a decimal number).
    A line matches when its text with the decimals taken out is the same and each decimal is
    within `tolerance`; the lines must be as many."""
    old_lines, new_lines = old.strip().splitlines(), new.strip().splitlines()
    if len(old_lines) != len(new_lines):
        return [f"{len(old_lines)} lines on the page, {len(new_lines)} now"], math.inf
    problems, largest = [], 0.0
    for a, b in zip(old_lines, new_lines, strict=True):
        xs, ys = [float(x) for x in DECIMAL.findall(a)], [float(y) for y in DECIMAL.findall(b)]
        if DECIMAL.sub("#", a) != DECIMAL.sub("#", b) or len(xs) != len(ys):
            problems.append(f"structure: {a!r} is now {b!r}")
            continue
        gaps = [abs(x - y) for x, y in zip(xs, ys, strict=True)]
        largest = max([largest, *gaps])
        if any(g > tolerance + 1e-9 for g in gaps):
            problems.append(f"beyond ±{tolerance:g}: {a!r} is now {b!r}")
    return problems, largest


def cells(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines()]


def sweep_differs(old: str, new: str, tolerance: float) -> tuple[list[str], float]:
    """The sweep table: numbers_differ on everything but the ranks; the page's ranks hold when
    every pair of jobs they order has scores now that are ordered so, or within the tolerance;
    and the claim: at each max_epochs, the jobs with batches of 256 score lowest."""
    old_rows, new_rows = cells(old.strip()), cells(new.strip())
    at = {name: i for i, name in enumerate(old_rows[0])}
    rank, score = at["rank"], at["**objective**"]

    def without_rank(rows: list[list[str]]) -> str:
        return "\n".join("|".join(r[:rank] + ["#"] + r[rank + 1 :]) for r in rows)

    problems, largest = numbers_differ(without_rank(old_rows), without_rank(new_rows), tolerance)
    if problems or len(old_rows) != len(new_rows):
        return problems, largest
    jobs = list(zip(old_rows[2:], new_rows[2:], strict=True))
    for (a_old, a_new), (b_old, b_new) in itertools.combinations(jobs, 2):
        if int(a_old[rank]) > int(b_old[rank]):
            (a_old, a_new), (b_old, b_new) = (b_old, b_new), (a_old, a_new)
        if float(a_new[score]) < float(b_new[score]) - tolerance:  # maximised (val/acc)
            problems.append(f"rank: job {a_old[0]} above job {b_old[0]} no longer holds")
    for epochs in {row[at["trainer.max_epochs"]] for _, row in jobs}:
        same = [row for _, row in jobs if row[at["trainer.max_epochs"]] == epochs]
        big = [float(r[score]) for r in same if r[at["data.batch_size"]] == "256"]
        rest = [float(r[score]) for r in same if r[at["data.batch_size"]] != "256"]
        if big and rest and max(big) >= min(rest):
            problems.append(f"claim: batches of 256 no longer lag at max_epochs={epochs}")
    return problems, largest


CHECKS: dict[str, Callable[[str, str, float], tuple[list[str], float]]] = {"sweep": sweep_differs}


FIGURES: dict[str, Callable[[Path, dict[str, Path]], dict[str, str]]] = {
    "budget": budget, "reference": reference, "sweep": sweep, "sweep_resume": sweep_resume,
    "sweep_seeds": sweep_seeds,
}  # fmt: skip


def block(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- figures:{name} -->\n)(.*?)(\n<!-- /figures:{name} -->)", re.S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, change nothing")
    parser.add_argument("--only", choices=list(FIGURES), help="one figure")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 made the figures; default 1)"
    )
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch is imported; runs inherit it
    logging.basicConfig(level=logging.WARNING)  # the in-process runs: results, not their logs
    for name in ("lightning", "lightning.pytorch", "trainkit"):
        logging.getLogger(name).setLevel(logging.WARNING)
    texts = {page: page.read_text() for page in pages()}
    differ = []
    with tempfile.TemporaryDirectory() as tmp:
        for figure, make in FIGURES.items():
            if args.only and figure != args.only:
                continue
            pictures: dict[str, Path] = {}
            (Path(tmp) / figure).mkdir()
            for name, new in make(Path(tmp) / figure, pictures).items():
                page = next((p for p, text in texts.items() if block(name).search(text)), None)
                if page is None:
                    sys.exit(f"error: no page has a <!-- figures:{name} --> block")
                where = page.relative_to(ROOT)
                old = block(name).search(texts[page]).group(2).strip()
                if new.strip() == old:
                    print(f"{name}: {where} matches")
                    continue
                tolerance = stated_tolerance(texts[page], name) or 0.0
                check = CHECKS.get(name, numbers_differ)
                problems, largest = check(old, new, tolerance) if args.check else ([""], 0.0)
                if not problems:
                    print(f"{name}: {where} matches (numbers within ±{tolerance:g}: the largest "
                          f"difference is {largest:.4g})")  # fmt: skip
                    continue
                differ.append(name)
                diff = difflib.unified_diff(
                    old.splitlines(), new.strip().splitlines(), str(where), "now", lineterm=""
                )
                print(f"{name}: {where} differs from what the code gives now:", *diff, sep="\n")
                print(*(p for p in problems if p), sep="\n")
                texts[page] = block(name).sub(
                    lambda m, new=new: m.group(1) + new + m.group(3), texts[page]
                )
            if not args.check:
                for picture, path in pictures.items():
                    shutil.copyfile(path, IMAGES / f"{picture}.png")
                    print(f"wrote docs/images/{picture}.png")
    if args.check:
        return 1 if differ else 0
    for page, text in texts.items():
        if text != page.read_text():
            page.write_text(text)
            print(f"{page.relative_to(ROOT)} updated")
    print("every page matched" if not differ else f"{len(differ)} figure(s) rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
