"""The wandb logger, offline: read back from the run's transaction log, and nothing written elsewhere."""
from __future__ import annotations

from pathlib import Path

import pytest

from molplat_sdk.checks.common import check_logger_plugin
from molplat_sdk.loggers import EPOCH_ROWS, logger_pipeline, logger_run_dir, replay_run, written_outside
from molplat_wandb import plugin
from molplat_wandb.transaction_log import payloads, read_offline_run

PIPELINE = logger_pipeline("wandb")
ROWS = EPOCH_ROWS


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run directory, with HOME and the working folder elsewhere in tmp_path (they must stay empty)."""
    return logger_run_dir(tmp_path, monkeypatch, PIPELINE)


def test_listing_imports_neither_torch_nor_wandb():
    check_logger_plugin("molplat-wandb", "molplat_wandb.plugin", "wandb")


def test_names_its_logger():
    assert plugin.molplat_loggers() == ["wandb"]


def test_an_offline_run_is_read_back_from_the_run_directory(run_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")  # a user's setting for their other projects is overridden
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    replay_run(plugin, run_dir, PIPELINE)
    (log,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    run = read_offline_run(log)
    assert run.config["model"] == PIPELINE["model"] and run.config["output"] == {"loggers": ["wandb"]}
    epochs = [row for row in run.history if "val_loss" in row]
    assert [row["_step"] for row in epochs] == [0, 1]
    for name in ("train_loss", "val_loss", "val_mae", "lr"):
        assert [row[name] for row in epochs] == pytest.approx([r[name] for r in ROWS])
    assert run.summary["test/gap/mae"] == pytest.approx(0.55) and "test/gap/r2" not in run.summary
    images = [row["parity"] for row in run.history if "parity" in row] or \
        [{k.split("/", 1)[1]: v for k, v in row.items() if k.startswith("parity/")} for row in run.history
         if "parity/path" in row]
    (image,) = images
    assert (image["width"], image["height"]) == (60, 40)
    assert (log.parent / "files" / image["path"]).is_file()
    assert run.exit_code == 0
    assert not plugin.logs.open and written_outside(tmp_path) == [] and list((tmp_path / "tmp").iterdir()) == []


def test_a_failed_run_finishes_with_exit_code_1_and_its_error(run_dir, tmp_path):
    plugin.molplat_run_started(str(run_dir), PIPELINE)
    plugin.molplat_epoch_finished(str(run_dir), 0, dict(ROWS[0]))
    plugin.molplat_run_failed(str(run_dir), "training stopped: the loss became nan in epoch 1")
    (log,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    run = read_offline_run(log)
    assert run.exit_code == 1
    assert run.summary["molplat_error"] == "training stopped: the loss became nan in epoch 1"
    assert [row["val_loss"] for row in run.history if "val_loss" in row] == [ROWS[0]["val_loss"]]
    assert not plugin.logs.open and written_outside(tmp_path) == []


def test_a_file_that_is_no_transaction_log_is_refused(tmp_path):
    path = tmp_path / "run-x.wandb"
    path.write_bytes(b"not wandb")
    with pytest.raises(ValueError, match="not a wandb transaction log"):
        list(payloads(path))
