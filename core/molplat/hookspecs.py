"""The hooks a plugin may implement: one per component kind, plus run events."""
from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "molplat"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def molplat_datasets() -> list:
    """Return the ComponentSpecs of the datasets this plugin provides."""


@hookspec
def molplat_representations() -> list:
    """Return the ComponentSpecs of the representations this plugin provides."""


@hookspec
def molplat_models() -> list:
    """Return the ComponentSpecs of the models this plugin provides."""


@hookspec
def molplat_trainer_backends() -> list:
    """Return the ComponentSpecs of the trainer backends this plugin provides."""


@hookspec
def molplat_searchers() -> list:
    """Return the ComponentSpecs of the searchers this plugin provides."""


@hookspec
def molplat_explainers() -> list:
    """Return the ComponentSpecs of the explainers this plugin provides."""


@hookspec
def molplat_simulators() -> list:
    """Return the ComponentSpecs of the simulators this plugin provides."""


@hookspec
def molplat_store_backends() -> list:
    """Return the ComponentSpecs of the preprocessed-store formats this plugin provides.

    ``[data] store_format`` names one; its factory returns a backend with ``build`` and
    ``open`` (see docs/contracts.md, "Store backends"). The core's own is ``molplat``.
    """


@hookspec
def molplat_commands() -> list:
    """Return the CommandSpecs of the ``molplat NAME`` subcommands this plugin adds.

    Each names a ``click.Command`` by import path; the CLI imports it only when it runs.
    A name the core or another plugin already uses is refused and reported by
    ``molplat list-plugins`` (see docs/contracts.md, "Plugin commands").
    """


@hookspec
def molplat_run_started(run_dir: str, pipeline: dict[str, Any]) -> None:
    """A run has validated its pipeline and created its directory."""


@hookspec
def molplat_epoch_finished(run_dir: str, epoch: int, metrics: dict[str, float]) -> None:
    """A training epoch has finished; ``metrics`` is its metrics.csv row (train_loss, val_loss, lr, ...).

    Called on rank 0 only, after the row is written, by every trainer backend
    (``TrainingJob.epoch_finished``), so loggers see the curves while a run trains.
    """


@hookspec
def molplat_stage_finished(run_dir: str, stage: str, result: dict[str, Any]) -> None:
    """A stage (data, train, evaluate, search, explain, simulate) has finished."""


@hookspec
def molplat_run_finished(run_dir: str, summary: dict[str, Any]) -> None:
    """A run has finished and written its summary."""


@hookspec
def molplat_run_failed(run_dir: str, error: str) -> None:
    """A run that had started stopped with an error (``error``: its one-line message, as the user saw it).

    After ``molplat_run_started``, a run ends with exactly one of ``molplat_run_finished``
    and this hook, so a logger can mark its record failed instead of leaving it open.
    """


@hookspec
def molplat_loggers() -> list:
    """Return the names of the loggers this plugin provides (``[output] loggers`` names them).

    A plugin that provides a logger is an observer the user turns on: its event hooks
    run only in runs whose ``[output] loggers`` names one of its loggers.
    """


KIND_HOOKS: dict[str, str] = {
    "dataset": "molplat_datasets",
    "representation": "molplat_representations",
    "model": "molplat_models",
    "trainer_backend": "molplat_trainer_backends",
    "searcher": "molplat_searchers",
    "explainer": "molplat_explainers",
    "simulator": "molplat_simulators",
    "store_backend": "molplat_store_backends",
}
