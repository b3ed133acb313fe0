"""Which targets a run learns and how: ``[dataset] target``, ``[targets.NAME]``, and the heads they give."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from molplat.models.heads import LOSSES, Head, Heads
from molplat.pipeline.reading import check_settings
from molplat.plugins import close_match
from molplat.specs import ComponentSpec, Setting
from molplat.structure import Target

if TYPE_CHECKING:  # pragma: no cover
    from molplat.pipeline.config import ComponentChoice

TARGET_SETTINGS = (
    Setting("loss", "str", None, "loss of this target: mse, l1, huber (regression) or bce (binary classification, "
            "values 0 and 1); default: [trainer] loss", choices=LOSSES),
    Setting("weight", "float", 1.0, "weight of this target's loss; weights are normalised to sum to 1",
            minimum=0.0, maximum=1e6, exclusive_minimum=True),
)
def target_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def target_tables(table: Any, dataset_common: dict[str, Any], base: Path) -> tuple[dict[str, dict], list[str]]:
    """``[targets.NAME]`` tables: a loss and a weight per named target."""
    if not isinstance(table, dict):
        return {}, ["[targets] must hold one table per target, such as [targets.gap] with loss and weight"]
    options, problems = {}, []
    named = target_list(dataset_common.get("target"))
    for name, entry in table.items():
        where = f"[targets.{name}]"
        if not isinstance(entry, dict):
            problems.append(f"{where} must be a table with loss and/or weight")
            continue
        if named and name not in named:
            problems.append(f"{where}: {name!r} is not one of the targets in [dataset] target{close_match(name, named)} "
                            f"({', '.join(named)})")
        options[name], found = check_settings(where, entry, TARGET_SETTINGS, "a target", base)
        problems += found
    return options, problems


def declared_targets(spec: ComponentSpec) -> dict[str, Target]:
    """Class-level targets of a dataset, when it declares them (importing only its module)."""
    try:
        factory = spec.load()
    except Exception:
        return {}
    targets = getattr(factory, "targets", {}) or {}
    return {k: v for k, v in targets.items() if isinstance(v, Target)}


def target_problems(names: list[str], targets: dict[str, Target], dataset: str) -> list[str]:
    problems = []
    if len(names) != len(set(names)):
        problems.append(f"[dataset] target: {names} names a target twice")
    for name in names:
        if name not in targets:
            problems.append(f"[dataset] target: {name!r} is not a target of dataset {dataset!r}"
                            f"{close_match(name, list(targets))} (targets: {', '.join(targets)})")
        elif not targets[name].usable:
            problems.append(f"[dataset] target: {name!r} of dataset {dataset!r} cannot be learnt by an invariant "
                            f"model ({targets[name].description}); choose another target")
    return problems


def heads_for(names: list[str], targets: dict[str, Target], trainer: dict[str, Any],
               options: dict[str, dict[str, Any]]) -> Heads:
    forces = trainer.get("task") == "energy_forces"
    default_loss = trainer.get("loss", "mse")
    heads = []
    for position, name in enumerate(names):
        target = targets[name]
        chosen = options.get(name, {})
        extensive = target.extensive or (forces and position == 0)
        heads.append(Head(name, target.level, target.units, chosen.get("loss") or default_loss,
                          float(chosen.get("weight") or 1.0), extensive))
    graph = [h for h in heads if h.level == "graph"]
    return Heads(tuple(graph + [h for h in heads if h.level == "atom"]), forces)


def declared_heads(components: dict[str, ComponentChoice], dataset_common: dict[str, Any],
                    options: dict[str, dict[str, Any]]) -> tuple[Heads | None, list[str]]:
    """The heads, from the dataset's class-level targets (a dataset whose targets depend on
    its files is checked again when the run builds it)."""
    dataset, trainer = components.get("dataset"), components.get("trainer")
    if dataset is None or trainer is None:
        return None, []
    names = target_list(dataset_common.get("target"))
    targets = declared_targets(dataset.spec)
    default = getattr(_safe_factory(dataset.spec), "default_target", "")
    if not targets:
        return None, []
    names = names or ([default] if default in targets else [])
    if not names:
        return None, []
    problems = target_problems(names, targets, dataset.spec.name)
    if problems:
        return None, problems
    heads = heads_for(names, targets, trainer.settings, options)
    problems += head_problems(heads, components)
    return heads, problems


def _safe_factory(spec: ComponentSpec) -> Any:
    try:
        return spec.load()
    except Exception:
        return None


def head_problems(heads: Heads, components: dict[str, ComponentChoice]) -> list[str]:
    problems = []
    model = components.get("model")
    if heads.n_atom and model and "atom_property" not in model.spec.outputs:
        atom = ", ".join(h.name for h in heads.atom)
        problems.append(f"[dataset] target: {atom} are per-atom targets, and model {model.spec.name!r} predicts no "
                        f"per-atom properties (outputs: {', '.join(model.spec.outputs)}); choose a model with "
                        f"'atom_property' or graph-level targets")
    if heads.forces and heads.graph and heads.graph[0].classification:
        problems.append("[trainer] task: 'energy_forces' needs the first target to be an energy, not a "
                        "classification (loss = 'bce')")
    if heads.forces and not heads.graph:
        problems.append("[trainer] task: 'energy_forces' needs a graph-level energy as the first target")
    return problems
