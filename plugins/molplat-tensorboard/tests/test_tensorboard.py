"""The TensorBoard logger, read back with TensorBoard's own EventAccumulator."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from molplat.rundir import RunDirectory
from molplat_sdk.checks.common import check_logger_plugin
from molplat_tensorboard import plugin

PIPELINE = {"dataset": {"name": "molplat-qm9:qm9", "target": "gap"},
            "model": {"name": "molplat-schnet:schnet", "hidden_channels": 16},
            "trainer": {"name": "molplat:cpu", "lr": 0.001}, "output": {"loggers": ["tensorboard"]}}
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


def test_listing_imports_neither_torch_nor_tensorboard():
    check_logger_plugin("molplat-tensorboard", "molplat_tensorboard.plugin", "tensorboard")


def test_names_its_logger():
    assert plugin.molplat_loggers() == ["tensorboard"]


def test_events_are_read_back_from_the_run_directory(run_dir, tmp_path):
    replay(plugin, run_dir)
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0}).Reload()
    for name in ("train_loss", "val_loss", "val_mae", "lr"):
        scalars = events.Scalars(f"epoch/{name}")
        assert [s.step for s in scalars] == [0, 1]
        assert [s.value for s in scalars] == pytest.approx([row[name] for row in ROWS])
    assert "epoch/epoch" not in events.Tags()["scalars"]
    assert events.Scalars("test/gap/mae")[0].value == pytest.approx(0.55)
    assert events.Scalars("gap/baseline_mae")[0].value == pytest.approx(1.1)
    assert "test/gap/r2" not in events.Tags()["scalars"]  # undefined metrics are left out, not logged as NaN
    (image,) = events.Images("parity")
    assert (image.width, image.height) == (60, 40)
    text = events.Tensors("pipeline/text_summary")[0].tensor_proto.string_val[0].decode()
    assert 'name = "molplat-schnet:schnet"' in text
    assert not plugin.logs.open and outside(tmp_path) == []
    assert not np.isnan([s.value for s in events.Scalars("epoch/val_loss")]).any()


def test_a_failed_run_keeps_its_epochs_and_says_why(run_dir, tmp_path):
    plugin.molplat_run_started(str(run_dir), PIPELINE)
    plugin.molplat_epoch_finished(str(run_dir), 0, dict(ROWS[0]))
    plugin.molplat_run_failed(str(run_dir), "training stopped: the loss became nan in epoch 1")
    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    assert [s.step for s in events.Scalars("epoch/val_loss")] == [0]
    text = events.Tensors("error/text_summary")[0].tensor_proto.string_val[0].decode()
    assert text == "training stopped: the loss became nan in epoch 1"
    assert not plugin.logs.open and outside(tmp_path) == []
