"""A hyperparameter search space written plainly in a pipeline's ``[search] space`` table.

Each key is a pipeline key, ``"table.setting"``; each value is one of::

    "trainer.lr"       = {low = 1e-4, high = 1e-2, log = true}   # a range, sampled on a log scale
    "model.num_layers" = {low = 1, high = 4}                      # integers when low and high are
    "model.hidden"     = [32, 64, 128]                            # a choice (numbers, strings, booleans)

The core parses and checks the space against each component's schema when a pipeline is
validated (a searcher whose spec declares a ``space`` setting), so a bad space exits 2 before
anything runs; searcher plugins turn the parsed :class:`Dimension` list into their library's
own problem description.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Dimension", "TRIAL_TABLES", "parse_space", "metric_names", "maximised"]

#: the tables a search may vary; the others (output, data, plugins, targets, search, explain) are not
TRIAL_TABLES = ("dataset", "representation", "model", "trainer")
#: validation metrics where larger is better (the rest are errors or losses: smaller is better)
_LARGER_IS_BETTER = ("r2", "accuracy", "roc_auc")


@dataclass(frozen=True)
class Dimension:
    """One searched key: a range ``[low, high]`` (``log``: sampled log-uniformly; integers when both
    ends are) or a tuple of ``choices``."""

    key: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    @property
    def integer(self) -> bool:
        return self.choices is None and _is_int(self.low) and _is_int(self.high)

    @property
    def table(self) -> str:
        return self.key.partition(".")[0]

    @property
    def setting(self) -> str:
        return self.key.partition(".")[2]

    def values_to_check(self) -> list[Any]:
        """The values a schema must accept: every choice, or both ends of the range."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]

    def contains(self, value: Any) -> bool:
        if self.choices is not None:
            return any(value == c and type(value) is type(c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return self.low <= value <= self.high and (not self.integer or _is_int(value))  # type: ignore[operator]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_space(space: Any, where: str = "[search] space") -> tuple[list[Dimension], list[str]]:
    """The dimensions of ``space`` and one line per problem (empty when it is well formed)."""
    if not isinstance(space, dict) or not space:
        return [], [f"{where}: expected a table of pipeline keys, such as "
                    f"\"trainer.lr\" = {{low = 1e-4, high = 1e-2, log = true}} or \"model.hidden\" = [32, 64]"]
    dimensions: list[Dimension] = []
    problems: list[str] = []
    for key, value in space.items():
        table, dot, setting = str(key).partition(".")
        if not dot or not setting or "." in setting:
            problems.append(f"{where}: key {key!r} must name one pipeline key as \"table.setting\", such as "
                            f"\"trainer.lr\"")
            continue
        if table not in TRIAL_TABLES:
            problems.append(f"{where} {key}: [{table}] is not searched; vary keys of {', '.join(TRIAL_TABLES)}")
            continue
        dimension, problem = _dimension(str(key), value)
        if problem:
            problems.append(f"{where} {key}: {problem}")
        else:
            dimensions.append(dimension)  # type: ignore[arg-type]
    return dimensions, problems


def _dimension(key: str, value: Any) -> tuple[Dimension | None, str | None]:
    if isinstance(value, list):
        if len(value) < 2:
            return None, "a choice needs at least two values, such as [32, 64]"
        if any(isinstance(v, (dict, list)) for v in value) or any(isinstance(v, float) and not math.isfinite(v)
                                                                   for v in value):
            return None, "choices must be plain numbers, strings or booleans"
        if len({(type(v), v) for v in value}) != len(value):
            return None, f"the choices {value!r} repeat a value"
        return Dimension(key, choices=tuple(value)), None
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"low", "high", "log"})
        if unknown:
            return None, f"unknown key {unknown[0]!r} in a range (allowed: low, high, log)"
        low, high, log = value.get("low"), value.get("high"), value.get("log", False)
        if not _is_number(low) or not _is_number(high):
            return None, "a range needs numbers low and high, such as {low = 1e-4, high = 1e-2}"
        if not low < high:
            return None, f"low ({low}) must be below high ({high})"
        if not isinstance(log, bool):
            return None, "log must be true or false"
        if log and low <= 0:
            return None, f"a log-scale range must start above 0 (low = {low})"
        return Dimension(key, low=low, high=high, log=log), None
    return None, (f"expected a range {{low = ..., high = ...}} or a list of choices, got {str(value)[:60]!r}; "
                  f"to fix a value for every trial, set it in its table instead")


def metric_names(heads: Any) -> list[str]:
    """The validation metrics a trial reports for these heads (``molplat.models.Heads``), any of which a
    search may optimise: ``val_loss`` (the training's best), ``val.TARGET.METRIC`` for each target,
    ``val.forces.mae``/``rmse`` with forces, and ``val.METRIC`` when there is one target."""
    names = ["val_loss"]
    for head in heads.heads:
        metrics = ("accuracy", "roc_auc") if head.classification else ("mae", "rmse", "r2")
        names += [f"val.{head.name}.{m}" for m in metrics]
        if len(heads.heads) == 1:
            names += [f"val.{m}" for m in metrics]
    if heads.forces:
        names += ["val.forces.mae", "val.forces.rmse"]
    return names


def maximised(objective: str) -> bool:
    """Whether a larger value of this metric is better."""
    return objective.rpartition(".")[2] in _LARGER_IS_BETTER
