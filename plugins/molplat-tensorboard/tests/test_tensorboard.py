"""The TensorBoard logger, read back with TensorBoard's own EventAccumulator."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from molplat_sdk.checks.common import check_logger_plugin
from molplat_sdk.loggers import EPOCH_ROWS, logger_pipeline, logger_run_dir, replay_run, written_outside
from molplat_tensorboard import plugin

PIPELINE = logger_pipeline("tensorboard")
ROWS = EPOCH_ROWS


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run directory, with HOME and the working folder elsewhere in tmp_path (they must stay empty)."""
    return logger_run_dir(tmp_path, monkeypatch, PIPELINE)


def test_listing_imports_neither_torch_nor_tensorboard():
    check_logger_plugin("molplat-tensorboard", "molplat_tensorboard.plugin", "tensorboard")


def test_names_its_logger():
    assert plugin.molplat_loggers() == ["tensorboard"]


def test_events_are_read_back_from_the_run_directory(run_dir, tmp_path):
    replay_run(plugin, run_dir, PIPELINE)
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
    assert not plugin.logs.open and written_outside(tmp_path) == []
    assert not np.isnan([s.value for s in events.Scalars("epoch/val_loss")]).any()


def test_a_failed_run_keeps_its_epochs_and_says_why(run_dir, tmp_path):
    plugin.molplat_run_started(str(run_dir), PIPELINE)
    plugin.molplat_epoch_finished(str(run_dir), 0, dict(ROWS[0]))
    plugin.molplat_run_failed(str(run_dir), "training stopped: the loss became nan in epoch 1")
    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    assert [s.step for s in events.Scalars("epoch/val_loss")] == [0]
    text = events.Tensors("error/text_summary")[0].tensor_proto.string_val[0].decode()
    assert text == "training stopped: the loss became nan in epoch 1"
    assert not plugin.logs.open and written_outside(tmp_path) == []
