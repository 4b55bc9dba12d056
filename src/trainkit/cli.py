"""What train.py and eval.py share: run one job, turn failures into one line or a recorded,
failed multirun job, a fast `--help`, and a hint for a mistyped key. Imports nothing heavy until
the job runs."""

from __future__ import annotations

import errno
import logging
import math
import multiprocessing
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from trainkit.command_line import mistyped_key, print_help, unquoted_space
from trainkit.errors import ConfigError, TrainkitError
from trainkit.mistakes import no_gpu, target_error
from trainkit.run_names import run_name

log = logging.getLogger("trainkit")


def run_job(
    job: Callable[[DictConfig], float], cfg: DictConfig, record: str | None = "metrics.json"
) -> float:
    """Run `job(cfg)` and return its metric.

    A job that fails is recorded as failed in its run directory's `record` file (status, the
    error in one line). A single run then ends a user error (TrainkitError) with
    `error: <one sentence>` (on the console and in the run's log file) and exit code 1; any
    other exception keeps its traceback. In a multirun, a failed job returns NaN, so the sweep
    goes on to the next job (and exits 1 at its end, see hydra_callbacks.SweepReport). Ctrl-C
    still stops the whole sweep; SIGTERM exits with 143, as a shell reports a process it ended.
    """
    from trainkit.config import check_config

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    sigterm = signal.getsignal(signal.SIGTERM) if _main_thread() else None
    try:
        check_config(cfg)
        if record == "metrics.json":
            resume_own_folder(cfg, multirun)
        return job(cfg)
    except SystemExit as stop:
        if type(stop).__name__ == "SIGTERMException":  # Lightning's; its exit code would be 0
            if multiprocessing.parent_process() is not None:  # a joblib worker: end it, do not
                os._exit(143)  # take the next job (its files are written; the sweep is stopping)
            sys.exit(143)
        raise
    except KeyboardInterrupt:  # outside fit and test (data loading, tuning, writing results)
        fail(interrupted_message(record), 130)
    except Exception as raw:
        err = user_error(raw)
        if record:
            record_failure(err, record, log_it=multirun)
        if not multirun:
            if isinstance(err, TrainkitError):
                fail(f"error: {err}", 1)
            raise
        return math.nan
    finally:
        # Lightning leaves its SIGTERM handler installed after a fit (its own teardown runs
        # before the callbacks' teardown, where LastCheckpoint puts it back): the next job of a
        # sweep, and the time between jobs, must find the handler this job found.
        if sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)


def interrupted_message(record: str | None) -> str:
    """What a Ctrl-C outside fit and test left: nothing, or the run's finished record (it
    came after the run wrote metrics.json, e.g. between two jobs of a sweep)."""
    from trainkit.checkpoints import read_metrics

    out = Path(HydraConfig.get().runtime.output_dir)
    if record and read_metrics(out).get("status") in ("ok", "pruned"):
        return f"interrupted: the run had finished and written {out / record}"
    return "interrupted before training started: nothing was trained or written"


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def resume_own_folder(cfg: DictConfig, multirun: bool) -> None:
    """A job of a resumed sweep that was interrupted goes on from the last.ckpt in its own folder
    (trainkit's sweepers announce it; a DDP worker of that job does the same as its main
    process). A single run resumes only with ckpt_path (trainkit.run_dirs refuses the rest)."""
    from trainkit.run_dirs import job_state, secondary_process

    if not (multirun or secondary_process()) or cfg.get("ckpt_path") is not None:
        return
    out = Path(HydraConfig.get().runtime.output_dir)
    if "ckpt_path" in cfg and job_state(out) == "interrupted":
        log.info("resuming this job from %s", out / "checkpoints" / "last.ckpt")
        cfg.ckpt_path = str(out)


def fail(message: str, code: int) -> None:
    """End the process with `message` on stderr (one line) and in the run's log file."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    print(message, file=sys.stderr)
    sys.exit(code)


def user_error(err: Exception) -> Exception:
    """The error to report: a `_target_` that cannot be imported as one sentence naming the
    module and the fix; the TrainkitError behind Hydra's wrapping of errors raised while
    instantiating; or one sentence naming the config group whose object could not be built."""
    from hydra.errors import InstantiationException

    unimportable = target_error(err)
    if unimportable is not None:
        return unimportable
    cause: BaseException = err
    while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
        return TrainkitError(
            f"the disk is full: could not write {cause.filename or 'a file of the run'}; free "
            "some space, then resume the run (ckpt_path=<its run dir>) or run it again."
        )
    if isinstance(cause, TrainkitError) or not isinstance(err, InstantiationException):
        return cause if isinstance(cause, Exception) else err
    key = str(err).rpartition("full_key: ")[2].strip() or "?"
    return build_error(key.split(".")[0], cause)


def build_error(group: str, cause: BaseException) -> ConfigError:
    """One sentence for an object that could not be built from config group `group`: its
    error and what the command line set in that group. A Trainer that asks for a GPU where there
    is none: say so, and what runs here instead (trainer=ddp: that alone, since the GPU, not the
    devices or sync_batchnorm the command line set, is what is missing)."""
    reason = one_line(cause)
    if group == "trainer" and no_gpu(cause):
        choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
        if choices.get("trainer") == "ddp":
            return ConfigError(
                "no GPU here; trainer=ddp_cpu runs DDP on the CPU (trainer=ddp runs one process "
                "per GPU)."
            )
        reason = (
            "no GPU here, and trainer.accelerator asks for one: trainer.accelerator=auto or cpu "
            "runs here, trainer=ddp_cpu runs DDP on the CPU"
        )
    mine = [o for o in overrides() if o.lstrip("+~").startswith(f"{group}.")]
    given = f"; the command line set {' '.join(mine)}" if mine else ""
    return ConfigError(f"could not build the {group} from its config ({reason}){given}.")


def overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())[:300]
    return text if isinstance(err, TrainkitError) else f"{type(err).__name__}: {text}"


def record_failure(err: Exception, record: str, log_it: bool) -> None:
    """Write the run's `record` (metrics.json) with status "failed" and the error in one line;
    `log_it`: also log it (a multirun job; the full traceback goes to the job's log)."""
    from trainkit.run_files import write_json

    message = one_line(err)
    if log_it and isinstance(err, TrainkitError):
        log.error("job failed: %s", message)
    elif log_it:
        log.exception("job failed: %s", message)
    if os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) != "0":
        return  # a DDP worker: the run's main process (rank 0) records the run
    summary = {"status": "failed", "error": message, "overrides": overrides()}
    summary.update(train={}, val={}, test={})
    try:
        write_json(Path(HydraConfig.get().runtime.output_dir) / record, summary)
    except (OSError, TrainkitError) as write_err:  # a full disk, a folder in its place: the
        log.warning("could not write %s (%s)", record, write_err)  # job's own error still shows


# -- sweep job folders ----------------------------------------------------------------------
def job_label() -> str:
    """The resolver `${job_label:}` of hydra.sweep.subdir: a job's swept values, e.g.
    `batch_size=64,max_epochs=4` (keys shortened to their last part; no `/`; at most 60
    characters), so that a job's folder, and TensorBoard's run name, say what the job was."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hc = HydraConfig.get()
    parser = OverridesParser.create()
    given = [a for a in sys.argv[1:] if "=" in a and not a.startswith("-")]
    try:
        swept = {o.key_or_group for o in parser.parse_overrides(given) if o.is_sweep_override()}
    except Exception:  # the sweep itself reports a bad override; a label must not fail first
        swept = set()
    swept |= set((hc.sweeper.get("params") or {}).keys())  # an Optuna search's parameters
    if (hc.sweeper.get("repeats") or 1) > 1:  # an Optuna trial's repeats, one per seed
        swept.add("seed")
    pairs = [o.lstrip("+~").partition("=")[::2] for o in hc.overrides.task]
    pairs = [(k, v) for k, v in pairs if k in swept] or pairs
    names = [k.rpartition(".")[2] for k, _ in pairs]
    if len(set(names)) < len(names):  # two keys ending alike: keep them whole
        names = [k for k, _ in pairs]
    label = ",".join(f"{n}={short(v)}" for n, (_, v) in zip(names, pairs, strict=True))
    return re.sub(r"[/\\\s'\"]+", "-", label)[:60] or "job"


def short(value: str) -> str:
    """A float as Optuna samples it (0.008468008575248327) to 4 significant digits: 0.008468."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if re.fullmatch(r"[-+]?\d*\.\d{5,}(e[-+]?\d+)?", value) else value


OmegaConf.register_new_resolver("job_label", job_label, replace=True)
OmegaConf.register_new_resolver("run_name", run_name, replace=True)  # trainkit.run_names


def compose_config(
    config_dir: Path, overrides: list[str], output_dir: Path | None = None, name: str = "train"
) -> DictConfig:
    """The config `python train.py <overrides>` runs (`name="eval"`: eval.py's), composed
    in-process for scripts, notebooks and tests; with `output_dir`, that is its run folder."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(Path(config_dir).resolve())):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
    return cfg


# -- the entry points' __main__ ------------------------------------------------------------
def start(main: Callable[[], Any], conf_dir: Path, config_name: str) -> None:
    """The entry points' `__main__`: a fast `--help`, a hint for mistyped keys, then Hydra."""
    args = sys.argv[1:]
    if {"--help", "-h"} & set(args):
        print_help(conf_dir, config_name)
        sys.exit(0)
    hint = unquoted_space(args) or mistyped_key(args, conf_dir, config_name)
    if hint:
        print(f"error: {hint}", file=sys.stderr)
        sys.exit(1)
    try:
        main()
    except KeyboardInterrupt:  # a Ctrl-C while the run was already ending (after the first)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
