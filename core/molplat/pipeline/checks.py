"""Checks across a pipeline's components, and building them so a broken one fails validation."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from molplat.errors import ValidationError
from molplat.models.heads import Heads
from molplat.specs import ComponentSpec

if TYPE_CHECKING:  # pragma: no cover
    from molplat.pipeline.config import ComponentChoice

LIST_TABLES = ("explain",)  # [[explain]] may appear several times
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


def build_checks(components: dict[str, ComponentChoice], explainers: list[ComponentChoice], heads: Heads | None,
                  for_model: bool) -> list[str]:
    """Build every component but the dataset, so one that raises is a validation error, not a traceback."""
    problems: list[str] = []
    choices = [c for t, c in components.items() if t in BUILT_WHILE_VALIDATING] + ([] if for_model else explainers)
    if for_model:
        choices = [c for c in choices if c.table in ("representation", "model", "trainer")]
    for choice in choices:
        where = f"[{choice.table}]" if choice.table not in LIST_TABLES else f"[[{choice.table}]]"
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


def layouts_of(representation: ComponentSpec) -> tuple[str, ...]:
    """The batch layouts a representation produces: its own name plus those it declares in ``outputs``.

    A new representation that fills the same batch fields as ``adjacency_list`` says
    ``outputs=("adjacency_list",)`` and every model accepting adjacency lists takes it.
    """
    return (representation.name, *representation.outputs)
