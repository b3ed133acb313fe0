"""Checks across a pipeline's components, and building them so a broken one fails validation."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from molplat.errors import ValidationError
from molplat.models.heads import Heads
from molplat.specs import ComponentSpec

if TYPE_CHECKING:  # pragma: no cover
    from molplat.pipeline.config import ComponentChoice

LIST_TABLES = ("explain", "simulate")  # [[explain]] and [[simulate]] may appear several times
#: components built during validation; datasets are built by the run (building reads data)
BUILT_WHILE_VALIDATING = ("representation", "model", "trainer", "search", "explain", "simulate")


def one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return text if len(text) <= 300 else text[:297] + "..."


def cross_checks(components: dict[str, ComponentChoice], dataset_common: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    model, rep = components.get("model"), components.get("representation")
    if model and rep and model.spec.accepts and not set(layouts_of(rep.spec)) & set(model.spec.accepts):
        problems.append(
            f"[model] {model.spec.name!r} does not accept representation {rep.spec.name!r} "
            f"set in [representation] name; it accepts: {', '.join(model.spec.accepts)}"
        )
    if model and rep:
        problems += cutoff_problems(model.settings.get("cutoff"), rep.settings.get("cutoff"))
    trainer = components.get("trainer")
    forces = bool(trainer and trainer.settings.get("task") == "energy_forces")
    if model and forces and model.spec.outputs and "forces" not in model.spec.outputs:
        problems.append(f"[trainer] task = 'energy_forces' but model {model.spec.name!r} does not predict forces "
                        f"(outputs: {', '.join(model.spec.outputs)}); use task = 'property'")
    if rep and forces and rep.settings.get("max_neighbors") is not None:
        problems.append(f"[representation] max_neighbors: keeping only the {rep.settings['max_neighbors']} nearest "
                        f"neighbours makes the energy jump when the ranking changes, so forces are wrong; remove "
                        f"max_neighbors for task = 'energy_forces'")
    split = dataset_common.get("split")
    if isinstance(split, list) and (len(split) != 3 or any(f < 0 for f in split) or abs(sum(split) - 1) > 1e-6):
        problems.append(f"[dataset] split: {split!r} must be three non-negative fractions (train, val, test) "
                        f"that sum to 1, such as [0.8, 0.1, 0.1]")
    target = dataset_common.get("target")
    if target is not None and not isinstance(target, str) and not (
            isinstance(target, list) and target and all(isinstance(t, str) for t in target)):
        problems.append(f"[dataset] target: expected a target name or a list of names, got {str(target)[:60]}")
    return problems


def cutoff_problems(model_cutoff: Any, rep_cutoff: Any, what: str = "[model] cutoff") -> list[str]:
    if isinstance(model_cutoff, (int, float)) and isinstance(rep_cutoff, (int, float)) \
            and model_cutoff > rep_cutoff + 1e-9:
        return [f"{what}: {model_cutoff} Å is beyond [representation] cutoff {rep_cutoff} Å, "
                f"so pairs in between would be missing; set [representation] cutoff = {model_cutoff}"]
    return []


def build_checks(components: dict[str, ComponentChoice], listed: list[ComponentChoice], heads: Heads | None,
                  for_model: bool) -> list[str]:
    """Build every component but the dataset, so one that raises is a validation error, not a traceback
    (``listed``: the entries of the array tables, [[explain]] and [[simulate]])."""
    problems: list[str] = []
    choices = [c for t, c in components.items() if t in BUILT_WHILE_VALIDATING] + ([] if for_model else listed)
    if for_model:
        choices = [c for c in choices if c.table in ("representation", "model", "trainer")]
    for choice in choices:
        where = f"[{choice.table}]" if choice.table not in LIST_TABLES else f"[[{choice.table}]]"
        where = "[simulate]" if choice.where == "[simulate]" else where
        try:
            if choice.table == "model":
                built = choice.build_model(heads or Heads.single())
            else:
                built = choice.build()
        except ValidationError as exc:
            problems += exc.problems
            continue
        except Exception as exc:
            problems.append(f"{where}: {choice.spec.kind} {choice.spec.name!r} of plugin {choice.spec.plugin!r} "
                            f"fails to build with these settings: {one_line(exc)}")
            continue
        if choice.table == "model" and "representation" in components:
            rep_cutoff = components["representation"].settings.get("cutoff")
            problems += cutoff_problems(getattr(built, "cutoff", None), rep_cutoff,
                                         f"[model] {choice.spec.name!r} uses a cutoff of")
    return problems


def duplicate_problems(table: str, choices: list[ComponentChoice]) -> list[str]:
    """Entries of an array table are keyed by component name in summary.json and the run directory,
    so one component may appear once."""
    names = [c.spec.name for c in choices]
    return [f"[[{table}]]: {name!r} appears {names.count(name)} times; each component may appear once "
            f"(its results are stored under its name)" for name in sorted(set(names)) if names.count(name) > 1]


def stage_requirements(pipeline: Any) -> list[str]:
    """What the optional stages say about the rest of the pipeline, before anything runs.

    A searcher, explainer or simulator may define ``check_pipeline(pipeline) -> list[str]``:
    each string is a problem (one line with the fix), such as dynamics asked of a model that
    is not trained on forces. Each problem is prefixed with where the component is named.
    """
    stages = [choice for table, choice in pipeline.components.items()
              if table in BUILT_WHILE_VALIDATING and table not in ("representation", "model", "trainer")]
    problems: list[str] = []
    for choice in stages + pipeline.explainers + pipeline.simulators:
        where = choice.where or f"[{choice.table}]"
        component = choice.build()
        hook = getattr(component, "check_pipeline", None)
        if not callable(hook):
            continue
        try:
            found = hook(pipeline)
        except ValidationError as exc:
            found = exc.problems
        except Exception as exc:
            found = [f"check_pipeline failed: {one_line(exc)}"]
        if not isinstance(found, (list, tuple)) or not all(isinstance(p, str) for p in found):
            found = [f"check_pipeline returned {type(found).__name__}, not a list of problem strings"]
        problems += [f"{where} {choice.spec.name!r}: {problem}" for problem in found]
    return problems


def layouts_of(representation: ComponentSpec) -> tuple[str, ...]:
    """The batch layouts a representation produces: its own name plus those it declares in ``outputs``.

    A new representation that fills the same batch fields as ``adjacency_list`` says
    ``outputs=("adjacency_list",)`` and every model accepting adjacency lists takes it.
    """
    return (representation.name, *representation.outputs)
