"""What the optional stages receive and hand back.

A searcher, explainer or simulator is called as ``run(context)`` with a
:class:`RunContext` and returns one of the result classes below; the runner stores
``as_dict()`` under its stage in ``summary.json``. Paths are relative to the run
directory so a run directory can be moved.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from molplat.pipeline.config import Pipeline
    from molplat.predict import TrainedModel
    from molplat.structure import Structure


@dataclass
class RunContext:
    """What the optional stages (search, explain, simulate) receive.

    ``pipeline``: the validated pipeline (``pipeline.variant(...)`` makes trials);
    ``run_dir``: where the run lives; ``model``: the trained model (``predict``,
    ``calculator()``, ``heads``); ``splits``: train/val/test sequences of Structures,
    read on access; ``summary``: the metrics so far.
    """

    pipeline: "Pipeline"
    run_dir: Path
    model: "TrainedModel"
    splits: dict[str, Sequence["Structure"]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def directory(self, stage: str, name: str) -> Path:
        """A folder of the run directory for one component's files, such as ``explain/saliency``."""
        path = self.run_dir / stage / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def relative(self, path: Path) -> str:
        """``path`` relative to the run directory, as results record it."""
        return str(Path(path).resolve().relative_to(Path(self.run_dir).resolve()))


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


def run_stage_component(component: Any, kind: str, name: str, context: RunContext) -> StageResult:
    """Call ``component.run(context)`` and insist on the documented result class of its kind."""
    from molplat.errors import RunError

    result = component.run(context)
    expected = RESULT_TYPES[kind]
    if not isinstance(result, expected):
        raise RunError(f"{kind} {name!r} returned {type(result).__name__}, not molplat.results.{expected.__name__}; "
                       f"return a {expected.__name__} from its run(context)")
    return result
