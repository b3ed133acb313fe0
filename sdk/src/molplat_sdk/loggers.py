"""A two-epoch run to replay through a logger plugin's hooks, for testing what the logger wrote.

The run directory holds a resolved pipeline and a parity PNG (60 x 40 pixels); HOME and
the working folder move to empty folders beside it, so a test can show that the logger
wrote nothing outside the run::

    PIPELINE = logger_pipeline("mylogger")

    def test_read_back(tmp_path, monkeypatch):
        run_dir = logger_run_dir(tmp_path, monkeypatch, PIPELINE)
        replay_run(plugin, run_dir, PIPELINE)
        ...                                   # read back EPOCH_ROWS and SUMMARY
        assert written_outside(tmp_path) == []
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

from molplat.rundir import RunDirectory

__all__ = ["EPOCH_ROWS", "SUMMARY", "logger_pipeline", "logger_run_dir", "replay_run", "written_outside"]

#: metrics.csv rows of two epochs, as the core hands them to ``molplat_epoch_finished``
EPOCH_ROWS: list[dict[str, float]] = [
    {"epoch": 0, "train_loss": 2.0, "val_loss": 1.5, "val_mae": 1.1, "lr": 1e-3, "seconds": 1.0},
    {"epoch": 1, "train_loss": 1.0, "val_loss": 0.75, "val_mae": 0.6, "lr": 5e-4, "seconds": 1.0},
]

#: an evaluation summary: one target in eV, an undefined R² (None) a logger must leave out
SUMMARY: dict[str, Any] = {
    "tasks": {"gap": {"units": "eV", "val": {"mae": 0.6, "rmse": 0.8, "r2": 0.5},
                      "test": {"mae": 0.55, "rmse": 0.7, "r2": None}, "baseline_mae": 1.1}},
    "training": {"epochs": 2, "best_val_loss": 0.75},
}


def logger_pipeline(logger: str) -> dict[str, Any]:
    """A resolved pipeline whose ``[output] loggers`` turns ``logger`` on."""
    return {"dataset": {"name": "molplat-qm9:qm9", "target": "gap"},
            "model": {"name": "molplat-schnet:schnet", "hidden_channels": 16},
            "trainer": {"name": "molplat:cpu", "lr": 0.001}, "output": {"loggers": [logger]}}


def logger_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: dict[str, Any]) -> Path:
    """``tmp_path/run`` with ``pipeline`` and ``parity.png``; HOME and the working folder empty beside it."""
    folder = tmp_path / "run"
    folder.mkdir()
    RunDirectory(folder).write_pipeline(pipeline)
    pixels = np.zeros((40, 60, 3), dtype=np.uint8)
    pixels[:, :30] = (200, 30, 30)
    Image.fromarray(pixels).save(folder / "parity.png")
    for name in ("home", "cwd"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "cwd")
    return folder


def written_outside(tmp_path: Path) -> list[Path]:
    """Whatever a logger wrote in HOME or the working folder that ``logger_run_dir`` set up."""
    return sorted(p for name in ("home", "cwd") for p in (tmp_path / name).rglob("*"))


def replay_run(plugin: ModuleType, run_dir: Path, pipeline: dict[str, Any]) -> None:
    """The events of a finished two-epoch run, in the order the core sends them."""
    plugin.molplat_run_started(str(run_dir), pipeline)
    for row in EPOCH_ROWS:
        plugin.molplat_epoch_finished(str(run_dir), int(row["epoch"]), dict(row))
    plugin.molplat_stage_finished(str(run_dir), "evaluate", SUMMARY)
    plugin.molplat_run_finished(str(run_dir), SUMMARY)
