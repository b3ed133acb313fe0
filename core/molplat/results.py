"""What the optional stages receive and hand back.

A searcher, explainer or simulator is called as ``run(context)`` with a
:class:`RunContext` and returns one of the result classes below; the runner stores
``as_dict()`` under its stage in ``summary.json``. Paths are relative to the run
directory so a run directory can be moved.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from molplat.pipeline.config import Pipeline
    from molplat.predict import TrainedModel
    from molplat.search_space import Dimension
    from molplat.structure import Structure


@dataclass
class RunContext:
    """What the optional stages (search, explain, simulate) receive.

    ``pipeline``: the validated pipeline; ``run_dir``: where the run lives; ``model``: the
    trained model (``predict``, ``calculator()``, ``heads``), or None for a searcher, which
    runs before the run's model is trained; ``splits``: train/val/test sequences of
    Structures, read on access; ``summary``: the metrics so far (``summary["data"]`` for a
    searcher). A searcher scores configurations with :meth:`run_trial` (or, in worker
    processes, the picklable :meth:`trial_runner`) and reads its space with :meth:`search_space`.
    """

    pipeline: "Pipeline"
    run_dir: Path
    model: "TrainedModel | None"
    splits: dict[str, Sequence["Structure"]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    trials: Callable[[dict[str, Any], "str | Path"], dict[str, float]] | None = field(default=None, repr=False)

    def trial_runner(self) -> Callable[[dict[str, Any], "str | Path"], dict[str, float]]:
        """``runner(changes, directory) -> metrics``, picklable for process, Ray or MPI evaluators.

        It trains ``pipeline.variant(changes)`` (changes as ``{"trainer.lr": 1e-3}``; every other
        setting, the seed included, as in the pipeline) into ``directory``, a folder inside the run
        directory such as ``trials/000``, on the data the run prepared once, and returns its
        validation metrics by the names of ``molplat.search_space.metric_names`` plus ``seconds``.
        """
        if self.trials is None:
            from molplat.pipeline.trials import TrialRunner

            self.trials = TrialRunner(self.pipeline, self.run_dir)
        return self.trials

    def run_trial(self, changes: dict[str, Any], directory: str | Path) -> dict[str, float]:
        """Train and score one configuration in this process (see :meth:`trial_runner`)."""
        return self.trial_runner()(changes, directory)

    def search_space(self, space: Any) -> list["Dimension"]:
        """``space`` (a ``[search] space`` table) parsed and checked against this pipeline's components;
        raises ValidationError listing every problem (the core already checked a pipeline's own space)."""
        from molplat.errors import ValidationError
        from molplat.pipeline.config import searched_dimensions

        dimensions, problems = searched_dimensions(self.pipeline.components, space)
        if problems:
            raise ValidationError(problems, source=self.pipeline.source)
        return dimensions

    def directory(self, stage: str, name: str) -> Path:
        """A folder of the run directory for one component's files, such as ``explain/saliency``."""
        path = self.run_dir / stage / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def sample(self, splits: Sequence[str], limit: int, seed: int) -> list["Structure"]:
        """The structures of ``splits`` pooled in order, or a seeded sample of ``limit`` of them (in order).

        Stages that look at part of the data (UMAP, ROGI) draw the same structures every run.
        """
        pool = [s for name in splits for s in (self.splits.get(name) or [])]
        if len(pool) <= limit:
            return pool
        import numpy as np

        chosen = np.sort(np.random.default_rng(seed).choice(len(pool), size=limit, replace=False))
        return [pool[int(i)] for i in chosen]

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
    """``trials`` ranked best first, each ``{"settings": {...}, "objective": float, ...}``; lower is better
    (a searcher that maximises a metric ranks by it and says so in ``objective``). ``best``: the first
    trial's settings, ``{"table.key": value}``: the runner trains that configuration as the run's model."""

    trials: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    objective: str = "val_mae"
    #: True when a larger objective is better (trials are then ranked largest first)
    maximize: bool = False


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
