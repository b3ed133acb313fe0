"""The MLflow logger, read back with MlflowClient from the SQLite store in the run directory."""
from __future__ import annotations

from pathlib import Path

import pytest

from molplat_mlflow import plugin
from molplat_sdk.checks.common import check_logger_plugin
from molplat_sdk.loggers import EPOCH_ROWS, logger_pipeline, logger_run_dir, replay_run, written_outside

PIPELINE = logger_pipeline("mlflow")
ROWS = EPOCH_ROWS


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run directory, with HOME and the working folder elsewhere in tmp_path (they must stay empty)."""
    return logger_run_dir(tmp_path, monkeypatch, PIPELINE)


def test_listing_imports_neither_torch_nor_mlflow():
    check_logger_plugin("molplat-mlflow", "molplat_mlflow.plugin", "mlflow")


def test_names_its_logger():
    assert plugin.molplat_loggers() == ["mlflow"]


def test_runs_are_read_back_from_the_run_directory(run_dir, tmp_path):
    from mlflow.tracking import MlflowClient

    from molplat_mlflow.log import tracking_uri

    replay_run(plugin, run_dir, PIPELINE)
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
    assert not plugin.logs.open and written_outside(tmp_path) == []



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
