"""One run's MLflow record: a SQLite tracking store and its artifacts, both inside the run directory.

Read it with ``MlflowClient(tracking_uri="sqlite:///RUN/mlflow.db")`` or
``mlflow ui --backend-store-uri sqlite:///RUN/mlflow.db``.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# MLflow's usage telemetry writes ~/.config/mlflow/telemetry.json and calls home when the client
# starts; a run writes nothing outside its directory and reaches no network. Before the import.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from mlflow.entities import Metric, Param, RunStatus  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from molplat.metrics import summary_metrics  # noqa: E402
from molplat.rundir import PIPELINE_FILE  # noqa: E402

DATABASE = "mlflow.db"
ARTIFACTS = "mlartifacts"
EXPERIMENT = "molplat"
#: MLflow's limits: parameters per log_batch call and characters per parameter value
BATCH = 100
MAX_VALUE = 6000


def tracking_uri(run_dir: str | Path) -> str:
    """The SQLite store of a run directory (MLflow 3's local store; its file store is refused from 3.13)."""
    return f"sqlite:///{Path(run_dir).resolve() / DATABASE}"


def flat_params(table: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """``model.hidden_channels = "64"``: MLflow parameters are flat strings."""
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flat_params(value, f"{name}.")
        else:
            yield name, str(value)[:MAX_VALUE]


class MlflowLog:
    """One MLflow run per molplat run: parameters from the resolved pipeline, metrics per epoch
    (step = epoch), final metrics, pipeline.toml and the parity plots as artifacts."""

    def __init__(self, run_dir: str | Path, pipeline: dict[str, Any]) -> None:
        for name in ("mlflow", "alembic"):  # "Creating initial MLflow database tables..." on every run
            logging.getLogger(name).setLevel(logging.WARNING)
        self.run_dir = Path(run_dir).resolve()
        self.client = MlflowClient(tracking_uri=tracking_uri(self.run_dir))
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment is not None else self.client.create_experiment(
            EXPERIMENT, artifact_location=(self.run_dir / ARTIFACTS).as_uri())
        run = self.client.create_run(experiment_id, run_name=self.run_dir.name,
                                     tags={"molplat.run_dir": str(self.run_dir)})
        self.run_id = run.info.run_id
        params = [Param(k, v) for k, v in flat_params(pipeline)]
        for start in range(0, len(params), BATCH):
            self.client.log_batch(self.run_id, params=params[start:start + BATCH])
        self.client.log_artifact(self.run_id, str(self.run_dir / PIPELINE_FILE))

    def _metrics(self, values: dict[str, Any], step: int) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric(name, float(value), now, step) for name, value in values.items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self._metrics({k: v for k, v in metrics.items() if k != "epoch"}, step=epoch)

    def evaluated(self, summary: dict[str, Any]) -> None:
        self._metrics(summary_metrics(summary), step=0)
        for plot in sorted(self.run_dir.glob("parity*.png")):
            self.client.log_artifact(self.run_id, str(plot), artifact_path="plots")

    def close(self, summary: dict[str, Any] | None = None, error: str | None = None) -> None:
        """Marks the MLflow run FINISHED, FAILED (the molplat run stopped with ``error``, kept as a tag),
        or KILLED (dropped unfinished: resumed in this process, or this logger failed)."""
        if error is not None:
            self.client.set_tag(self.run_id, "molplat.error", error)
            status = RunStatus.FAILED
        else:
            status = RunStatus.FINISHED if summary is not None else RunStatus.KILLED
        self.client.set_terminated(self.run_id, RunStatus.to_string(status))
