"""The wandb logger, offline: read back from the run's transaction log, and nothing written elsewhere."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from molplat.rundir import RunDirectory
from molplat_sdk.checks.common import check_logger_plugin
from molplat_wandb import plugin
from molplat_wandb.transaction_log import payloads, read_offline_run

PIPELINE = {"dataset": {"name": "molplat-qm9:qm9", "target": "gap"},
            "model": {"name": "molplat-schnet:schnet", "hidden_channels": 16},
            "trainer": {"name": "molplat:cpu", "lr": 0.001}, "output": {"loggers": ["wandb"]}}
ROWS = [{"epoch": 0, "train_loss": 2.0, "val_loss": 1.5, "val_mae": 1.1, "lr": 1e-3, "seconds": 1.0},
        {"epoch": 1, "train_loss": 1.0, "val_loss": 0.75, "val_mae": 0.6, "lr": 5e-4, "seconds": 1.0}]
SUMMARY = {"tasks": {"gap": {"units": "eV", "val": {"mae": 0.6, "rmse": 0.8, "r2": 0.5},
                             "test": {"mae": 0.55, "rmse": 0.7, "r2": None}, "baseline_mae": 1.1}},
           "training": {"epochs": 2, "best_val_loss": 0.75}}


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run directory, with HOME and the working folder elsewhere in tmp_path (they must stay empty)."""
    folder = tmp_path / "run"
    folder.mkdir()
    RunDirectory(folder).write_pipeline(PIPELINE)
    pixels = np.zeros((40, 60, 3), dtype=np.uint8)
    pixels[:, :30] = (200, 30, 30)
    Image.fromarray(pixels).save(folder / "parity.png")
    for name in ("home", "cwd"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "cwd")
    return folder


def outside(tmp_path: Path) -> list[Path]:
    """Whatever a logger wrote in HOME or the working folder."""
    return sorted(p for name in ("home", "cwd") for p in (tmp_path / name).rglob("*"))


def replay(plugin, run_dir: Path) -> None:
    """The events of a two-epoch run, as the core sends them."""
    plugin.molplat_run_started(str(run_dir), PIPELINE)
    for row in ROWS:
        plugin.molplat_epoch_finished(str(run_dir), row["epoch"], dict(row))
    plugin.molplat_stage_finished(str(run_dir), "evaluate", SUMMARY)
    plugin.molplat_run_finished(str(run_dir), SUMMARY)


def test_listing_imports_neither_torch_nor_wandb():
    check_logger_plugin("molplat-wandb", "molplat_wandb.plugin", "wandb")


def test_names_its_logger():
    assert plugin.molplat_loggers() == ["wandb"]


def test_an_offline_run_is_read_back_from_the_run_directory(run_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")  # a user's setting for their other projects is overridden
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    replay(plugin, run_dir)
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
    assert not plugin.logs.open and outside(tmp_path) == [] and list((tmp_path / "tmp").iterdir()) == []


def test_a_failed_run_finishes_with_exit_code_1_and_its_error(run_dir, tmp_path):
    plugin.molplat_run_started(str(run_dir), PIPELINE)
    plugin.molplat_epoch_finished(str(run_dir), 0, dict(ROWS[0]))
    plugin.molplat_run_failed(str(run_dir), "training stopped: the loss became nan in epoch 1")
    (log,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    run = read_offline_run(log)
    assert run.exit_code == 1
    assert run.summary["molplat_error"] == "training stopped: the loss became nan in epoch 1"
    assert [row["val_loss"] for row in run.history if "val_loss" in row] == [ROWS[0]["val_loss"]]
    assert not plugin.logs.open and outside(tmp_path) == []


def test_a_file_that_is_no_transaction_log_is_refused(tmp_path):
    path = tmp_path / "run-x.wandb"
    path.write_bytes(b"not wandb")
    with pytest.raises(ValueError, match="not a wandb transaction log"):
        list(payloads(path))
