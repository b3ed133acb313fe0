"""Training, as trainer backends see it.

Public: ``TrainingJob`` and ``FitResult`` (the contract of ``fit(job)``, from
``molplat.rundir``), ``TRAINER_SETTINGS`` (the settings every Lightning-based backend
shares), ``fit_with_lightning`` (the shared loop: scaling, heads, forces, early stopping,
checkpoints in the run-directory format) and ``AtomisticTask`` (the function being
trained, without Lightning). The submodules are internal. Names load on first use, so
``from molplat.training import TrainingJob`` imports no Lightning.
"""
from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "TrainingJob": "molplat.rundir",
    "FitResult": "molplat.rundir",
    "TRAINER_SETTINGS": "molplat.builtin",
    "AtomisticTask": "molplat.training.task",
    "TargetScaler": "molplat.training.task",
    "build_task": "molplat.training.task",
    "fit_with_lightning": "molplat.training.lightning",
    "LightningTask": "molplat.training.lightning",
}

__all__ = list(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'molplat.training' has no attribute {name!r}")
