"""Every logger records the same quantities on the same axes as TensorBoard: step-wise values by
iteration, epoch-wise values by epoch from 1, the same names, and the run's settings and outcome
where the logger keeps such things. Each test reads back what its logger wrote."""

from __future__ import annotations

import csv
import struct
import time
from pathlib import Path

import pytest
from helpers import QUIET, make_cfg, tb_dir
from lightning_utilities.core.imports import RequirementCache

from trainkit.building import build_all, missing_package
from trainkit.errors import ConfigError
from trainkit.training import train

# 2 epochs of 5 iterations, a validation at the end of each: the axes every logger must show
RUN = [*QUIET, "trainer.max_epochs=2", "trainer.limit_train_batches=5"]
ITERATIONS, EPOCHS, VALIDATED = list(range(1, 11)), [1, 2], [5, 10]


def run(tmp_path: Path, logger: str, *more: str) -> tuple[dict, Path]:
    cfg = make_cfg([f"logger={logger}", f"paths.log_dir={tmp_path / 'logs'}", *RUN, *more],
                   tmp_path / "run")  # fmt: skip
    return train(cfg), Path(cfg.paths.output_dir)


def test_csv(tmp_path: Path):
    summary, run_dir = run(tmp_path, "csv")
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))

    def steps(name: str, axis: str = "step") -> list[int]:
        return [int(r[axis]) for r in rows if r.get(name)]

    assert steps("train/loss") == ITERATIONS and steps("val/acc") == VALIDATED
    assert steps("epoch/val_acc", "epoch") == EPOCHS == steps("epoch/train_loss", "epoch")
    assert steps("test/acc") == [10]
    assert not any(k.endswith(("_step", "_epoch")) for k in rows[0])  # trainkit's names
    settings = (run_dir / "csv" / "hparams.yaml").read_text()
    assert "model: cnn" in settings and "batch_size: 32" in settings
    assert summary["iterations"] == 10


def test_mlflow_needs_no_server(tmp_path: Path):
    mlflow = pytest.importorskip("mlflow")
    summary, _ = run(tmp_path, "mlflow")
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'logs' / 'mlflow.db'}")
    (found,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])

    def steps(name: str) -> list[int]:
        return [m.step for m in client.get_metric_history(found.info.run_id, name)]

    assert steps("train/loss") == ITERATIONS and steps("val/acc") == VALIDATED
    assert steps("epoch/val_acc") == EPOCHS and steps("test/acc") == [10]
    assert "train/loss_step" not in found.data.metrics and "epoch" not in found.data.metrics
    assert found.data.params["model"] == "cnn" and found.data.params["max_epochs"] == "2"
    assert found.data.tags["trainkit.status"] == "ok"
    assert float(found.data.tags["trainkit.best_score"]) == pytest.approx(summary["best_score"])
    assert found.info.run_name == "cnn·digits run"  # model·data and the run folder's name


def wandb_records(run_dir: Path) -> list:
    """The records of an offline W&B run written so far (its .wandb file: LevelDB's log format
    behind a 7-byte header, protobuf records inside); a record still being written is left out."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data, pos, block, records, part = path.read_bytes(), 7, 32768, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if pos + 7 + length > len(data):  # W&B's process is still writing this record
            break
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        part = chunk if kind in (1, 2) else part + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(part)
            records.append(record)
    return records


def test_wandb_offline_without_an_account(tmp_path: Path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    summary, run_dir = run(tmp_path, "wandb")
    # W&B's own process writes the file after the run has finished: wait for its last record
    deadline = time.monotonic() + 60
    while not any(r.WhichOneof("record_type") == "exit" for r in wandb_records(run_dir)):
        assert time.monotonic() < deadline, "the W&B run file was not completed in 60 s"
        time.sleep(0.5)
    records = wandb_records(run_dir)
    rows = [
        {item.key or "/".join(item.nested_key): item.value_json for item in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]

    def steps(name: str, axis: str) -> list[int]:
        return [int(float(r[axis])) for r in rows if name in r]

    assert steps("train/loss", "iteration") == ITERATIONS
    assert steps("val/acc", "iteration") == VALIDATED
    assert steps("epoch/val_acc", "epoch") == EPOCHS
    axes = {
        r.metric.glob_name or r.metric.name: r.metric.step_metric
        for r in records
        if r.WhichOneof("record_type") == "metric"
    }
    assert axes["epoch/*"] == "epoch" and axes["train/*"] == axes["val/*"] == "iteration"
    config = {
        item.key: item.value_json
        for r in records
        if r.WhichOneof("record_type") == "config"
        for item in r.config.update
    }
    assert config["model"] == '"cnn"' and config["max_epochs"] == "2"
    summaries = {
        item.key: item.value_json
        for r in records
        if r.WhichOneof("record_type") == "summary"
        for item in r.summary.update
    }
    assert summaries["status"] == '"ok"' and int(summaries["iterations"]) == 10


def test_many_and_a_list_of_loggers(tmp_path: Path):
    _, run_dir = run(tmp_path, "many")
    assert (run_dir / "csv" / "metrics.csv").is_file()
    assert list(tb_dir(run_dir).glob("events.out.tfevents.*"))
    cfg = make_cfg(["logger=[tensorboard,csv]", *RUN], tmp_path / "listed")
    assert sorted(cfg.logger) == ["csv", "tensorboard"]


def test_a_missing_optional_package_is_one_sentence_with_the_pip_command():
    lightnings = ModuleNotFoundError(str(RequirementCache("wandb>=99.0")))  # as its loggers say
    assert missing_package(lightnings) == "wandb"
    cfg = make_cfg([f"+logger.needs._target_={__name__}.NeedsWandb"], Path("/tmp/unused"))
    with pytest.raises(ConfigError) as err:
        build_all(cfg, "logger")
    assert str(err.value) == (
        "logger.needs needs the wandb package, which is not installed: pip install -e '.[wandb]'."
    )


class NeedsWandb:
    def __init__(self):
        raise ModuleNotFoundError(str(RequirementCache("wandb>=99.0")))
