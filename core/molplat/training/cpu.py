"""The built-in CPU trainer backend."""
from __future__ import annotations

from typing import Any

from molplat.rundir import FitResult, TrainingJob


class CPUBackend:
    """Trains on the CPU with PyTorch Lightning; settings are the ``[trainer]`` table."""

    name = "cpu"

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def fit(self, job: TrainingJob) -> FitResult:
        from molplat.training.lightning import fit_with_lightning

        return fit_with_lightning(job, self.settings)
