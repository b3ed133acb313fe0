"""A molplat search space as a DeepHyper problem, and DeepHyper's sampled values back as plain settings."""
from __future__ import annotations

from typing import Any

from molplat.search_space import Dimension


def hp_problem(dimensions: list[Dimension]) -> Any:
    """One DeepHyper hyperparameter per searched key: ranges (log-uniform when asked), integers, choices."""
    from deephyper.hpo import HpProblem

    problem = HpProblem()
    for dimension in dimensions:
        if dimension.choices is not None:
            problem.add_hyperparameter(list(dimension.choices), dimension.key)
        elif dimension.log:
            problem.add_hyperparameter((dimension.low, dimension.high, "log-uniform"), dimension.key)
        else:
            problem.add_hyperparameter((dimension.low, dimension.high), dimension.key)
    return problem


def plain_settings(parameters: dict[str, Any], dimensions: list[Dimension]) -> dict[str, Any]:
    """``{"trainer.lr": 0.001, ...}`` with Python numbers of the type each key takes (DeepHyper hands back
    numpy scalars, and a resumed search's values come from a CSV)."""
    settings: dict[str, Any] = {}
    for dimension in dimensions:
        value = parameters[dimension.key]
        if hasattr(value, "item"):
            value = value.item()
        if dimension.choices is not None:
            value = _the_choice(value, dimension.choices)
        elif dimension.integer:
            value = int(round(float(value)))
        else:
            value = float(value)
        settings[dimension.key] = value
    return settings


def _the_choice(value: Any, choices: tuple[Any, ...]) -> Any:
    for choice in choices:
        if value == choice or str(value) == str(choice):
            return choice
    raise ValueError(f"{value!r} is none of the choices {choices}")
