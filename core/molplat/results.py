"""What the optional stages hand back: numbers for summary.json and the files they wrote.

A searcher, explainer or simulator returns one of these from ``run(context)``; the
runner stores ``as_dict()`` under its stage in ``summary.json``. Paths are relative to
the run directory so a run directory can be moved.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy and torch scalars
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@dataclass
class StageResult:
    """``metrics``: named numbers; ``files``: what the stage wrote, relative to the run directory."""

    metrics: dict[str, float] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass
class SearchResult(StageResult):
    """``trials`` ranked best first, each ``{"settings": {...}, "objective": float, ...}``; lower is better."""

    trials: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    objective: str = "val_mae"


@dataclass
class Explanation(StageResult):
    """``per_atom`` maps a structure id to one attribution per atom (in the structure's atom order)."""

    per_atom: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class SimulationResult(StageResult):
    """``trajectories`` are ASE-readable files (relative paths) of the simulated structures."""

    trajectories: list[str] = field(default_factory=list)


#: The result class each optional stage kind must return.
RESULT_TYPES: dict[str, type[StageResult]] = {
    "searcher": SearchResult,
    "explainer": Explanation,
    "simulator": SimulationResult,
}
