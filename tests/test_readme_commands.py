"""scripts/readme_commands.py: every command README.md and the guides in docs/ show has a rule,
the commands are read from the markdown as a shell reads them, earlier runs stand in for <time>
and friends, and (slow) every command that can run here does what it says."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

SCRIPT = ROOT / "scripts" / "readme_commands.py"


def load_script():
    sys.path.insert(0, str(SCRIPT.parent))  # its siblings (docs_pages.py, ...), as when run
    spec = importlib.util.spec_from_file_location("readme_commands", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rc = load_script()
fixtures = sys.modules["readme_fixtures"]  # the runs and files the commands are given

MARKDOWN = """Intro: `python train.py model=cnn
trainer.max_epochs=5` wraps onto a second line, `model=text` is no command, `pytest -m slow` is.

```bash
# a comment line
python train.py model=text \\
    'data.path=a # b' data.header=false   # a comment after a quoted #

python train.py model=cnn trainer.max_epochs=5
tensorboard --logdir logs
```

```python
python not_a_command.py
```

Then `python eval.py ckpt_path=<run dir>`, and again `pytest -m slow`.
"""


def test_extraction_joins_continuations_drops_comments_reads_spans():
    assert rc.extract_commands(MARKDOWN) == [
        "python train.py model=cnn trainer.max_epochs=5",  # the span; the block's copy dropped
        "pytest -m slow",
        "python train.py model=text 'data.path=a # b' data.header=false",
        "tensorboard --logdir logs",
        "python eval.py ckpt_path=<run dir>",
    ]


def test_every_readme_command_has_a_rule_and_most_of_them_run(capsys):
    commands = rc.extract_commands(rc.markdown())
    plan = {cmd: rc.classify(cmd) for cmd in commands}
    assert [cmd for cmd, (rule, _) in plan.items() if rule is None] == []
    runs = [cmd for cmd, (_, skip) in plan.items() if not skip]
    assert len(runs) >= 45, runs  # 52 when this test was written, 16 skipped
    assert rc.main(["--list"]) == 0  # the CLI: classification only, nothing run
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"{len(runs)} to run, 0 failed, {len(commands) - len(runs)} skipped")


@pytest.mark.parametrize(
    ("cmd", "action", "why"),
    [
        ("python train.py model=cnn data=mnist data.download=true", "skip", "internet"),
        ("python train.py trainer=ddp trainer.devices=2", "skip", "GPUs"),
        ("python train.py -m hydra/launcher=submitit_slurm trainer=ddp", "skip", "SLURM"),
        ("pip install -e .[dev]", "skip", "CI"),
        ("tensorboard --logdir logs", "tensorboard", None),
        ("python train.py trainer=ddp_cpu model=cnn", "run", None),
        ("python train.py model=cnn trainer.max_epochs=4 ckpt_path=last", "fails", None),
    ],
)
def test_rules(cmd: str, action: str, why: str | None):
    rule, skip = rc.classify(cmd)
    assert rule.action == action
    assert (skip is None) if why is None else (why in skip)


def test_no_rule_for_a_new_kind_of_command():
    assert rc.classify("python scripts/something_new.py") == (None, None)


def fake_run(logs: Path, name: str, overrides: list[str], epochs: int) -> Path:
    run = logs / "train" / "runs" / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (run / "metrics.json").write_text(json.dumps({"status": "ok", "epochs": epochs}))
    return run


def test_placeholders_are_runs_of_earlier_commands(tmp_path: Path):
    ctx = rc.Context(tmp_path)
    cnn = fake_run(ctx.logs, "2026-01-01_00-00-01_000000", ["model=cnn", "trainer.max_epochs=1"], 1)
    fake_run(ctx.logs, "2026-01-01_00-00-02_000000", ["model=cnn", "trainer.max_epochs=4"], 4)
    text = fake_run(ctx.logs, "2026-01-01_00-00-03_000000", ["model=text"], 1)
    sweep = ctx.logs / "train" / "multiruns" / "2026-01-01_00-00-04_000000"
    sweep.mkdir(parents=True)

    def ran(cmd: str) -> str:
        return rc.command_to_run(cmd, rc.classify(cmd)[0], ctx)

    # a resume to 4 epochs: the newest cnn run with fewer than 4 epochs, not the text run
    resume = "python train.py model=cnn trainer.max_epochs=4 ckpt_path=logs/train/runs/<time>"
    assert ran(resume).startswith(
        f"python train.py model=cnn trainer.max_epochs=4 ckpt_path={cnn} "
    )
    assert ran("python eval.py ckpt_path=<run dir>").startswith(f"python eval.py ckpt_path={text} ")
    report = "python scripts/sweep_report.py <sweep dir> [--metric test/acc] [--mode max]"
    assert ran(report) == f"python scripts/sweep_report.py {sweep} --metric test/acc --mode max"
    with pytest.raises(LookupError, match="no earlier run"):
        ran("python train.py model=regression trainer.max_epochs=4 ckpt_path=path/to/file.ckpt")


@pytest.mark.slow
def test_every_readme_command_that_can_run_here_succeeds(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--keep", str(tmp_path / "runs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_no_command_uses_data_outside_the_repo_and_the_real_sentences_run(monkeypatch, tmp_path):
    """Commands name datasets by config (data=sentiment_sentences), never a workspace folder;
    they run on the local copy where there is one and are skipped, saying why, where not."""
    commands = rc.extract_commands(rc.markdown())
    assert [c for c in commands if "../" in c] == []
    real = [c for c in commands if rc.SENTENCES.search(c)]
    assert len(real) >= 3, real  # train.py (config, CSV reader) and text_baseline.py
    monkeypatch.setattr(fixtures, "SENTENCES_COPY", tmp_path / "none")
    for cmd in real:
        rule, skip = rc.classify(cmd)
        assert rule.action == "run" and "needs the UCI sentences" in skip, cmd
    for name in ("amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"):
        (tmp_path / name).write_text("a\t1\n")
    monkeypatch.setattr(fixtures, "SENTENCES_COPY", tmp_path)
    ctx = rc.Context(tmp_path / "ctx")
    for cmd in real:
        rule, skip = rc.classify(cmd)
        assert skip is None, cmd
        ran = rc.command_to_run(cmd, rule, ctx)
        assert "data.path=data/" not in ran
    placed = tmp_path / "ctx" / "data" / "sentiment labelled sentences" / "imdb_labelled.txt"
    assert placed.resolve() == tmp_path / "imdb_labelled.txt"


def test_clone_runs_the_script_in_a_fresh_checkout_with_its_own_code(capfd):
    """--clone: a `git clone` of HEAD in a temporary folder, the script and trainkit taken from
    there (a workspace-only file or path shows up as a failed command)."""
    assert rc.main(["--clone", "--list"]) == 0
    out = capfd.readouterr().out
    found = re.search(r"^clone of HEAD \w+ in (\S+); trainkit from (\S+)$", out, re.M)
    assert found and found[2] == f"{found[1]}/src/trainkit/__init__.py"
    assert not Path(found[1]).exists()  # removed afterwards
    assert re.search(r"^\d+ to run, 0 failed, \d+ skipped, 0 no rule", out, re.M)
    assert re.search(r"^clone, commands and clean-up took \d+ s$", out, re.M)
