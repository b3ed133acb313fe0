"""The MLflow logger, read back with MlflowClient from the SQLite store in the run directory."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from molplat.rundir import RunDirectory
from molplat_mlflow import plugin
from molplat_sdk.checks.common import check_logger_plugin

PIPELINE = {"dataset": {"name": "molplat-qm9:qm9", "target": "gap"},
            "model": {"name": "molplat-schnet:schnet", "hidden_channels": 16},
            "trainer": {"name": "molplat:cpu", "lr": 0.001}, "output": {"loggers": ["mlflow"]}}
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


def test_listing_imports_neither_torch_nor_mlflow():
    check_logger_plugin("molplat-mlflow", "molplat_mlflow.plugin", "mlflow")


def test_names_its_logger():
    assert plugin.molplat_loggers() == ["mlflow"]


def test_runs_are_read_back_from_the_run_directory(run_dir, tmp_path):
    from mlflow.tracking import MlflowClient

    from molplat_mlflow.log import tracking_uri

    replay(plugin, run_dir)
    client = MlflowClient(tracking_uri=tracking_uri(run_dir))
    experiment = client.get_experiment_by_name("molplat")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.tags["molplat.run_dir"] == str(run_dir.resolve())
    assert run.data.params["model.name"] == "molplat-schnet:schnet"
    assert run.data.params["model.hidden_channels"] == "16"
    assert run.data.params["output.loggers"] == "['mlflow']"
    for name in ("train_loss", "val_loss", "val_mae", "lr"):
        history = client.get_metric_history(run.info.run_id, name)
        history = sorted(history, key=lambda m: m.step)
        assert [m.step for m in history] == [0, 1]
        assert [m.value for m in history] == pytest.approx([r[name] for r in ROWS])
    assert "epoch" not in run.data.metrics and "test/gap/r2" not in run.data.metrics
    assert run.data.metrics["test/gap/mae"] == pytest.approx(0.55)
    assert run.data.metrics["training/best_val_loss"] == pytest.approx(0.75)
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"pipeline.toml", "plots"}
    (plot,) = client.list_artifacts(run.info.run_id, "plots")
    assert plot.path == "plots/parity.png" and plot.file_size == (run_dir / "parity.png").stat().st_size
    assert (run_dir / "mlflow.db").is_file() and (run_dir / "mlartifacts").is_dir()
    assert not plugin.logs.open and outside(tmp_path) == []



def test_a_failed_run_is_marked_failed_with_its_error(run_dir, tmp_path):
    from mlflow.tracking import MlflowClient

    from molplat_mlflow.log import tracking_uri

    plugin.molplat_run_started(str(run_dir), PIPELINE)
    plugin.molplat_epoch_finished(str(run_dir), 0, dict(ROWS[0]))
    plugin.molplat_run_failed(str(run_dir), "training stopped: the loss became nan in epoch 1")
    client = MlflowClient(tracking_uri=tracking_uri(run_dir))
    (run,) = client.search_runs([client.get_experiment_by_name("molplat").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["molplat.error"] == "training stopped: the loss became nan in epoch 1"
    assert not plugin.logs.open
