"""Search trials: one configuration trained and scored on the validation split, as a sub-run.

A :class:`TrialRunner` is what ``RunContext.run_trial`` calls. It is picklable (the pipeline
pickles as its raw table, see ``Pipeline.__reduce__``), so a searcher's process, Ray or MPI
evaluator can send it to workers. The run's prepared data is kept in a per-process cache:
trials in the process that prepared it reuse it as is, and a worker process prepares it once
(reading ``[data] store`` memory-mapped when the pipeline has one) and reuses it for every
later trial. A trial neither explains nor simulates: those stages run once, on the final model.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from molplat.errors import RunError
from molplat.pipeline.config import Pipeline
from molplat.pipeline.prepare import PreparedData, prepare
from molplat.rundir import SUMMARY_FILE, RunDirectory

TRIALS_DIR = "trials"
#: prepared data of this process, by the data key of the pipelines it serves
_PREPARED: dict[str, PreparedData] = {}


def data_key(pipeline: Pipeline) -> str:
    """What the data stage depends on: two pipelines with one key share their prepared data."""
    trainer = pipeline.components["trainer"].settings
    parts = {
        "dataset": pipeline.resolved().get("dataset"),
        "representation": pipeline.resolved().get("representation"),
        "data": {k: v for k, v in pipeline.data.items() if k != "num_workers"},
        "targets": pipeline.target_options,
        "trainer": {k: trainer.get(k) for k in ("task", "loss", "active_pool", "seed")},
        "model": pipeline.model_common,
    }
    return json.dumps(parts, sort_keys=True, default=str)


def remember(pipeline: Pipeline, data: PreparedData) -> None:
    """Let trials of this process reuse ``data``, prepared for ``pipeline``."""
    _PREPARED[data_key(pipeline)] = data


def data_for(pipeline: Pipeline, echo: Any = None) -> PreparedData:
    """The prepared data of ``pipeline``: from this process's cache, or prepared (once) and cached."""
    key = data_key(pipeline)
    if key not in _PREPARED:
        _PREPARED[key] = prepare(pipeline, echo or (lambda message: None), False)
    return _PREPARED[key]


def trial_metrics(summary: dict[str, Any], best_val_loss: float | None) -> dict[str, float]:
    """The validation numbers of an evaluated trial, by the names ``molplat.search_space.metric_names`` gives."""
    metrics: dict[str, float] = {}
    if best_val_loss is not None:
        metrics["val_loss"] = float(best_val_loss)
    for name, entry in summary.get("tasks", {}).items():
        metrics.update({f"val.{name}.{k}": float(v) for k, v in entry.get("val", {}).items() if v is not None})
    if len(summary.get("tasks", {})) == 1:
        (entry,) = summary["tasks"].values()
        metrics.update({f"val.{k}": float(v) for k, v in entry.get("val", {}).items() if v is not None})
    if "forces" in summary:
        metrics.update({f"val.forces.{k}": float(v) for k, v in summary["forces"]["val"].items() if v is not None})
    return metrics


class TrialRunner:
    """``runner(changes, directory) -> metrics``: train ``pipeline.variant(changes)`` into ``directory`` (inside
    the run directory) and return its validation metrics (see :func:`trial_metrics`) and ``seconds``."""

    def __init__(self, pipeline: Pipeline, run_dir: str | Path) -> None:
        self.pipeline = pipeline
        self.run_dir = Path(run_dir).resolve()

    def __call__(self, changes: dict[str, Any], directory: str | Path) -> dict[str, float]:
        from molplat.pipeline.evaluate import evaluate
        from molplat.pipeline.runner import fit_checked
        from molplat.predict import TrainedModel

        folder = self._inside(directory)
        variant = self.pipeline.variant(dict(changes))
        data = data_for(variant)
        if folder.exists():  # a trial in flight when a search was killed starts again
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        run = RunDirectory(folder)
        run.write_pipeline(variant.resolved())
        start = time.perf_counter()
        backend = variant.components["trainer"].build()
        fit = fit_checked(variant.components["trainer"], backend, training_job(variant, data, run))
        model = TrainedModel.from_run(run.path, pipeline=variant)
        summary = evaluate(model, data.samples, data.statistics, run, plots=False,
                           num_workers=int(variant.data.get("num_workers") or 0))
        summary["training"] = {"epochs": fit.epochs, "best_val_loss": fit.best_val_loss}
        summary["changes"] = dict(changes)
        run.write_json(SUMMARY_FILE, summary)
        metrics = trial_metrics(summary, fit.best_val_loss)
        metrics["seconds"] = time.perf_counter() - start
        return metrics

    def _inside(self, directory: str | Path) -> Path:
        folder = Path(directory)
        folder = (folder if folder.is_absolute() else self.run_dir / folder).resolve()
        if folder == self.run_dir or self.run_dir not in folder.parents:
            raise RunError(f"a trial's directory must be a folder inside the run directory {self.run_dir}, "
                           f"such as {TRIALS_DIR}/000; got {directory}")
        return folder


def training_job(pipeline: Pipeline, data: PreparedData, run: RunDirectory, resuming: bool = False,
                 epoch_listener: Any = None) -> Any:
    """The TrainingJob of ``pipeline`` on ``data``, written into ``run``."""
    from functools import partial

    from molplat.data.samples import SampleCollator
    from molplat.rundir import TrainingJob

    build_model: Any = partial(pipeline.components["model"].build_model, data.heads, data.statistics)
    if data.initial is not None:  # [model] init: every model built starts from the other run's weights
        from molplat.training.initial import InitialisedModel

        build_model = InitialisedModel(build_model, data.initial)
    return TrainingJob(train=data.samples["train"], val=data.samples["val"],
                       collator=SampleCollator(data.representation), build_model=build_model,
                       run_dir=run.path, heads=data.heads, statistics=data.statistics, resume=resuming,
                       num_workers=int(pipeline.data.get("num_workers") or 0), epoch_listener=epoch_listener,
                       reserve=data.reserve)
